"""Binary min-heaps on numpy arrays, for numba kernels.

A heap is an array ``h`` plus a size ``n``: ``h[:n]`` holds the entries, ``h[0]`` the smallest.
Functions return the new size; the caller owns the array and its capacity. ``push3``/``pop3`` keep
two payload arrays in step with the keys, so a heap of retries can carry (time, first try, attempt).
These are the data structures behind the join queues (server-free times, waiting-room exits,
connection releases), the retry schedule and the join/departure tracker.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def push(h: np.ndarray, n: int, x: float) -> int:
    """Insert ``x``; return the new size (the caller guarantees ``n < len(h)``)."""
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if h[parent] <= x:
            break
        h[i] = h[parent]
        i = parent
    h[i] = x
    return n + 1


@njit(cache=True, inline="always")
def _sift_down(h: np.ndarray, n: int, x: float) -> None:
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and h[child + 1] < h[child]:
            child += 1
        if h[child] >= x:
            break
        h[i] = h[child]
        i = child
    h[i] = x


@njit(cache=True, inline="always")
def pop(h: np.ndarray, n: int) -> int:
    """Remove the smallest entry (read it from ``h[0]`` first); return the new size."""
    n -= 1
    if n > 0:
        _sift_down(h, n, h[n])
    return n


@njit(cache=True, inline="always")
def replace_top(h: np.ndarray, n: int, x: float) -> None:
    """Replace the smallest entry by ``x`` (a pop and a push in one sift)."""
    _sift_down(h, n, x)


@njit(cache=True, inline="always")
def drain(h: np.ndarray, n: int, t: float) -> int:
    """Remove every entry ``<= t``; return the new size."""
    while n > 0 and h[0] <= t:
        n = pop(h, n)
    return n


@njit(cache=True)
def push3(k: np.ndarray, a: np.ndarray, b: np.ndarray, n: int, x: float, ax: float, bx: int) -> int:
    """Insert key ``x`` with payloads ``ax`` (float) and ``bx`` (int); return the new size."""
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if k[parent] <= x:
            break
        k[i] = k[parent]
        a[i] = a[parent]
        b[i] = b[parent]
        i = parent
    k[i] = x
    a[i] = ax
    b[i] = bx
    return n + 1


@njit(cache=True)
def pop3(k: np.ndarray, a: np.ndarray, b: np.ndarray, n: int) -> int:
    """Remove the smallest key and its payloads (read index 0 first); return the new size."""
    n -= 1
    if n <= 0:
        return 0
    x = k[n]
    ax = a[n]
    bx = b[n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and k[child + 1] < k[child]:
            child += 1
        if k[child] >= x:
            break
        k[i] = k[child]
        a[i] = a[child]
        b[i] = b[child]
        i = child
    k[i] = x
    a[i] = ax
    b[i] = bx
    return n


@njit(cache=True)
def grow(h: np.ndarray) -> np.ndarray:
    """A copy of ``h`` with twice the capacity (the first ``len(h)`` entries kept)."""
    out = np.empty(max(2 * h.shape[0], 16), dtype=h.dtype)
    out[: h.shape[0]] = h
    return out
