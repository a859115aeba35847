"""Per-segment quantiles agree with numpy's own ``quantile`` (the obvious twin)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kernels.stats import counts_up_to, segment_quantiles


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
