"""Four-ary min-heaps on numpy arrays, for numba kernels.

A heap is an array ``h`` plus a size ``n``: ``h[:n]`` holds the entries, ``h[0]`` the smallest.
Functions return the new size; the caller owns the array and its capacity. Each node has four
children (``4i+1 .. 4i+4``), which halves the depth of a binary heap and keeps the children on one
cache line: for heaps of millions of entries the pops that dominate cost half the cache misses.

These are the data structures behind the join queues (worker-free times, waiting-room exits) and
the M/M/c validation queue; ``grow`` doubles an array (tables of records grow with
``sim.kernels.rows.grow_rows``). The big schedules (retries, connection releases) are calendar
queues instead (``sim.kernels.calendar``), whose heaps order rows by (time, push order).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels import hot


@hot
def push(h: np.ndarray, n: int, x: float) -> int:
    """Insert ``x``; return the new size (the caller guarantees ``n < len(h)``)."""
    i = n
    while i > 0:
        parent = (i - 1) >> 2
        if h[parent] <= x:
            break
        h[i] = h[parent]
        i = parent
    h[i] = x
    return n + 1


@hot
def _sift_down(h: np.ndarray, n: int, x: float) -> None:
    i = 0
    while True:
        first = 4 * i + 1
        if first >= n:
            break
        best = first
        last = min(first + 4, n)
        for c in range(first + 1, last):
            if h[c] < h[best]:
                best = c
        if h[best] >= x:
            break
        h[i] = h[best]
        i = best
    h[i] = x


@hot
def pop(h: np.ndarray, n: int) -> int:
    """Remove the smallest entry (read it from ``h[0]`` first); return the new size."""
    n -= 1
    if n > 0:
        _sift_down(h, n, h[n])
    return n


@hot
def replace_top(h: np.ndarray, n: int, x: float) -> None:
    """Replace the smallest entry by ``x`` (a pop and a push in one sift)."""
    _sift_down(h, n, x)


@hot
def drain(h: np.ndarray, n: int, t: float) -> int:
    """Remove every entry ``<= t``; return the new size."""
    while n > 0 and h[0] <= t:
        n = pop(h, n)
    return n


@njit(cache=True)
def grow(h: np.ndarray) -> np.ndarray:
    """A copy of ``h`` with twice the capacity (the first ``len(h)`` entries kept)."""
    out = np.empty(max(2 * h.shape[0], 16), dtype=h.dtype)
    for i in range(h.shape[0]):  # a loop: a slice assignment compiles for seconds
        out[i] = h[i]
    return out
