"""Quantiles of many small samples at once (the join latencies of every tick).

``segment_quantiles(values, counts, qs)`` splits ``values`` into consecutive segments of
``counts[i]`` values and returns, for each segment, the quantiles ``qs`` with numpy's default
("linear") definition: sorted ``x``, position ``q·(n−1)``, linear interpolation between the two
neighbours. Empty segments give NaN. One compiled pass replaces a ``numpy.quantile`` call per tick.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _segment_quantiles(values: np.ndarray, counts: np.ndarray, qs: np.ndarray) -> np.ndarray:
    out = np.full((counts.shape[0], qs.shape[0]), np.nan)
    start = 0
    for i in range(counts.shape[0]):
        n = counts[i]
        if n > 0:
            x = np.sort(values[start : start + n])
            for j in range(qs.shape[0]):
                pos = qs[j] * (n - 1)
                lo = int(np.floor(pos))
                hi = min(lo + 1, n - 1)
                out[i, j] = x[lo] + (pos - lo) * (x[hi] - x[lo])
        start += n
    return out


def segment_quantiles(values: np.ndarray, counts: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Quantiles ``qs`` of each consecutive segment of ``values`` (``counts`` values each)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    qs = np.ascontiguousarray(qs, dtype=np.float64)
    if counts.sum() != values.shape[0] or np.any(counts < 0):
        raise ValueError(f"counts must be >= 0 and sum to len(values) = {values.shape[0]}")
    if np.any((qs < 0) | (qs > 1)):
        raise ValueError(f"qs must lie in [0, 1], got {qs}")
    return _segment_quantiles(values, counts, qs)
