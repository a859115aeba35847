"""Quantiles of many small samples at once (the join latencies of every tick).

``segment_quantiles(values, counts, qs)`` splits ``values`` into consecutive segments of
``counts[i]`` values and returns, for each segment, the quantiles ``qs`` with numpy's default
("linear") definition: sorted ``x``, position ``q·(n−1)``, linear interpolation between the two
neighbours. Empty segments give NaN. One compiled pass replaces a ``numpy.quantile`` call per tick,
and it selects the order statistics it needs (quickselect, O(n)) instead of sorting each segment.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SELECT_BUDGET = 64  # partitioning rounds before a quickselect sorts what is left


@njit(cache=True)
def _select(x: np.ndarray, k: int, budget: int) -> float:
    """The ``k``-th smallest of ``x`` (0-based); reorders ``x`` (quickselect, median of three).

    After the call ``x[:k] <= x[k] <= x[k + 1:]``. After ``budget`` partitioning rounds (an
    adversarial order) the range left is sorted instead, so the cost stays O(n log n) at worst.
    """
    lo = 0
    hi = x.shape[0]
    rounds = 0
    while hi - lo > 16:
        rounds += 1
        if rounds > budget:
            x[lo:hi] = np.sort(x[lo:hi])
            return x[k]
        mid = (lo + hi - 1) // 2
        a, b, c = x[lo], x[mid], x[hi - 1]
        pivot = max(min(a, b), min(max(a, b), c))
        i = lo
        j = hi - 1
        while i <= j:
            while x[i] < pivot:
                i += 1
            while x[j] > pivot:
                j -= 1
            if i <= j:
                x[i], x[j] = x[j], x[i]
                i += 1
                j -= 1
        # x[lo:j + 1] <= pivot, x[i:hi] >= pivot, and x[j + 1:i] == pivot
        if k <= j:
            hi = j + 1
        elif k >= i:
            lo = i
        else:
            return x[k]
    for i in range(lo + 1, hi):
        v = x[i]
        j = i - 1
        while j >= lo and x[j] > v:
            x[j + 1] = x[j]
            j -= 1
        x[j + 1] = v
    return x[k]


@njit(cache=True)
def _segment_quantiles(values: np.ndarray, counts: np.ndarray, qs: np.ndarray) -> np.ndarray:
    out = np.full((counts.shape[0], qs.shape[0]), np.nan)
    start = 0
    for i in range(counts.shape[0]):
        n = counts[i]
        if n > 0:
            x = values[start : start + n].copy()
            for j in range(qs.shape[0]):
                pos = qs[j] * (n - 1)
                lo = int(np.floor(pos))
                x_lo = _select(x, lo, SELECT_BUDGET)
                x_hi = x_lo
                if lo + 1 < n:  # the next order statistic: the least of what lies above
                    x_hi = x[lo + 1]
                    for m in range(lo + 2, n):
                        x_hi = min(x_hi, x[m])
                out[i, j] = x_lo + (pos - lo) * (x_hi - x_lo)
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


@njit(cache=True)
def _counts_up_to(times: np.ndarray, ends: np.ndarray, inclusive: bool) -> np.ndarray:
    m = ends.shape[0]
    hist = np.zeros(m + 1, dtype=np.int64)
    t0 = ends[0]
    step = (ends[m - 1] - t0) / (m - 1) if m > 1 else 1.0
    for i in range(times.shape[0]):
        r = times[i]
        # the first end that counts r (r < end, or r <= end when inclusive): a guess from the
        # spacing of the ends, then exact comparisons with the ends themselves
        g = (r - t0) / step if step > 0 else 0.0
        j = 0 if g < 0 else (m if g >= m else int(g))
        while j < m and (ends[j] < r if inclusive else ends[j] <= r):
            j += 1
        while j > 0 and (ends[j - 1] >= r if inclusive else ends[j - 1] > r):
            j -= 1
        hist[j] += 1
    out = np.empty(m, dtype=np.int64)
    total = 0
    for j in range(m):
        total += hist[j]
        out[j] = total
    return out


def counts_up_to(times: np.ndarray, ends: np.ndarray, inclusive: bool = False) -> np.ndarray:
    """For each of the sorted ``ends``, how many ``times`` lie before it (``<=`` if ``inclusive``).

    The same as ``np.searchsorted(np.sort(times), ends, side="right" if inclusive else "left")``
    in one O(n) pass without sorting ``times``: the engine's tail counts millions of departures
    per tick this way. Evenly spaced ends (tick ends) make the first guess exact.
    """
    times = np.ascontiguousarray(times, dtype=np.float64)
    ends = np.ascontiguousarray(ends, dtype=np.float64)
    if ends.ndim != 1 or np.any(np.diff(ends) < 0):
        raise ValueError("ends must be a sorted 1-D array")
    if np.isnan(times).any():
        raise ValueError("times must not be NaN")
    if ends.size == 0:
        return np.zeros(0, dtype=np.int64)
    return _counts_up_to(times, ends, bool(inclusive))
