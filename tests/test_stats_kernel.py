"""Per-segment quantiles agree with numpy's own ``quantile`` (the obvious twin)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kernels.stats import _select, counts_up_to, segment_quantiles


@pytest.mark.parametrize("seed", range(5))
def test_segment_quantiles_equal_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 40, 200)
    counts[:3] = (0, 1, 2)
    counts[3:5] = (3001, 4096)  # segments as large as a busy tick's
    values = rng.exponential(1.0, counts.sum())
    if seed % 2:
        values = np.round(values, 1)  # ties
    qs = np.array([0.0, 0.5, 0.9, 0.99, 1.0])
    got = segment_quantiles(values, counts, qs)
    start = 0
    for i, n in enumerate(counts):
        seg = values[start : start + n]
        want = np.quantile(seg, qs) if n else np.full(qs.size, np.nan)
        np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=0)
        start += n


def test_bad_counts_and_quantiles_are_refused() -> None:
    with pytest.raises(ValueError, match="counts"):
        segment_quantiles(np.zeros(3), np.array([1, 1]), np.array([0.5]))
    with pytest.raises(ValueError, match="qs"):
        segment_quantiles(np.zeros(2), np.array([1, 1]), np.array([1.5]))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("inclusive", [False, True])
def test_counts_up_to_equal_searchsorted(seed: int, inclusive: bool) -> None:
    rng = np.random.default_rng(seed)
    dt = [1.0, 0.25, 0.1, 7.0][seed]
    ends = np.arange(3, 400, dtype=np.float64) * dt  # as the engine's tail builds them
    times = rng.uniform(-5.0, 450.0 * dt, 20_000)
    times[:500] = ends[rng.integers(0, ends.size, 500)]  # exactly on a tick end
    times[500:1000] = np.nextafter(times[:500], np.inf)  # just after
    times[1000:1500] = np.nextafter(times[:500], -np.inf)  # just before
    times[1500] = np.inf
    got = counts_up_to(times, ends, inclusive)
    want = np.searchsorted(np.sort(times), ends, side="right" if inclusive else "left")
    assert got.tolist() == want.tolist()


def test_counts_up_to_uneven_ends_and_bad_input() -> None:
    ends = np.array([0.0, 0.1, 5.0, 5.0, 100.0])
    times = np.array([5.0, 0.05, 99.0, 1e9, -1.0, 0.1])
    for inclusive in (False, True):
        want = np.searchsorted(np.sort(times), ends, side="right" if inclusive else "left")
        assert counts_up_to(times, ends, inclusive).tolist() == want.tolist()
    assert counts_up_to(times, np.zeros(0)).size == 0
    with pytest.raises(ValueError, match="sorted"):
        counts_up_to(times, np.array([2.0, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        counts_up_to(np.array([np.nan]), ends)


@pytest.mark.parametrize("order", ["sorted", "reversed", "constant", "organ_pipe", "two_values"])
def test_segment_quantiles_on_ordered_and_repeated_values(order: str) -> None:
    """Orders that trouble a quickselect (and its fallback to a sort) give numpy's quantiles."""
    n = 5_001
    x = np.random.default_rng(1).exponential(1.0, n)
    values = {
        "sorted": np.sort(x),
        "reversed": np.sort(x)[::-1].copy(),
        "constant": np.full(n, 0.25),
        "organ_pipe": np.concatenate([np.sort(x[: n // 2]), np.sort(x[n // 2 :])[::-1]]),
        "two_values": np.where(x > 1.0, 2.0, 1.0),
    }[order]
    qs = np.array([0.99, 0.0, 0.5, 0.5, 1.0, 0.37])  # unsorted, repeated
    counts = np.array([n, 0, 1], dtype=np.int64)
    got = segment_quantiles(np.concatenate([values, [3.0]]), counts, qs)
    np.testing.assert_allclose(got[0], np.quantile(values, qs), rtol=1e-12, atol=0)
    assert np.isnan(got[1]).all()
    assert got[2].tolist() == [3.0] * qs.size


@pytest.mark.parametrize("budget", [0, 1, 3, 64])
def test_select_finds_the_order_statistic_with_or_without_its_sorting_fallback(budget: int) -> None:
    rng = np.random.default_rng(budget)
    x = np.round(rng.exponential(1.0, 2_000), 2)  # with ties
    want = np.sort(x)
    for k in (0, 1, 999, 1_998, 1_999):
        y = x.copy()
        assert _select(y, k, budget) == want[k]
        assert (y[:k] <= y[k]).all() and (y[k + 1 :] >= y[k]).all()
        assert np.sort(y).tolist() == want.tolist()  # a permutation of the input
