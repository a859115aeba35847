"""Per-segment quantiles agree with numpy's own ``quantile`` (the obvious twin)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kernels.stats import segment_quantiles


@pytest.mark.parametrize("seed", range(5))
def test_segment_quantiles_equal_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 40, 200)
    counts[:3] = (0, 1, 2)
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
