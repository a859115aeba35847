"""Rows of time-stamped records, ordered by (time, sequence number), for numba kernels.

A record is one row of a 2-D float array: the time in column 0, a payload, and a sequence number
(the order it was pushed in) in the last column. Two records compare by time, then by sequence
number, so records with equal times keep the order they were pushed in. This module has what the
calendar queue (``sim.kernels.calendar``) does with such rows: compare, copy and grow them, keep
them in a 4-ary heap, and sort a bucket of them.

- ``sort_bucket`` sorts the records of one time bucket ``[lo, lo + width)``: their times spread
  evenly, so a counting sort into about ``n / 2`` sub-buckets (stable) followed by an insertion
  sort by (time, sequence) costs O(n); a crowded sub-bucket gets a Shell sort first.
- Copies are loops: a 2-D slice assignment costs seconds of compilation (numba builds its general
  broadcasting for it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels import hot


@hot
def less(a: np.ndarray, i: int, b: np.ndarray, j: int) -> bool:
    """Row ``a[i]`` before row ``b[j]``: earlier time, or the same time and pushed earlier."""
    if a[i, 0] != b[j, 0]:
        return a[i, 0] < b[j, 0]
    s = a.shape[1] - 1
    return a[i, s] < b[j, s]


@hot
def write(rows: np.ndarray, i: int, x: float, a: float, b: float, seq: float) -> None:
    """Row ``i`` = the record ``(x, a, b)`` with sequence number ``seq`` (payload columns beyond
    the width are ignored)."""
    m = rows.shape[1]
    rows[i, 0] = x
    if m > 2:
        rows[i, 1] = a
    if m > 3:
        rows[i, 2] = b
    rows[i, m - 1] = seq


@hot
def heap_push(h: np.ndarray, n: int, x: float, a: float, b: float, seq: float) -> None:
    """Insert the record ``(x, a, b)``, sequence number ``seq``, into the 4-ary heap ``h[:n]``."""
    m = h.shape[1]
    i = n
    while i > 0:
        p = (i - 1) >> 2
        if h[p, 0] < x or (h[p, 0] == x and h[p, m - 1] < seq):
            break
        for c in range(m):
            h[i, c] = h[p, c]
        i = p
    write(h, i, x, a, b, seq)


@hot
def heap_pop(h: np.ndarray, n: int) -> int:
    """Remove ``h[0]`` from the heap ``h[:n]``; return the new size."""
    n -= 1
    if n <= 0:
        return 0
    m = h.shape[1]
    i = 0
    while True:
        first = 4 * i + 1
        if first >= n:
            break
        best = first
        for c in range(first + 1, min(first + 4, n)):
            if less(h, c, h, best):
                best = c
        if not less(h, best, h, n):
            break
        for c in range(m):
            h[i, c] = h[best, c]
        i = best
    for c in range(m):
        h[i, c] = h[n, c]
    return n


@hot
def copy_rows(src: np.ndarray, i: int, dst: np.ndarray, j: int, rows: int) -> None:
    """``dst[j : j + rows] = src[i : i + rows]`` as loops (a 2-D slice assignment costs seconds of
    compilation: numba builds its general broadcasting for it)."""
    for r in range(rows):
        for col in range(src.shape[1]):
            dst[j + r, col] = src[i + r, col]


@njit(cache=True)
def grow_rows(a: np.ndarray, rows: int, zero: bool) -> np.ndarray:
    """A copy of the table ``a`` with at least ``rows`` rows and twice as many.

    The new rows are zeros when ``zero`` (counts), else left unset: ``np.empty`` does not touch
    the memory, so a table of records that doubles costs resident memory only as it fills.
    """
    out = np.empty((max(rows, 2 * a.shape[0]), a.shape[1]), dtype=a.dtype)
    copy_rows(a, 0, out, 0, a.shape[0])
    if zero:
        for r in range(a.shape[0], out.shape[0]):
            for c in range(a.shape[1]):
                out[r, c] = 0
    return out


@njit(cache=True)
def sort_bucket(src: np.ndarray, n: int, dst: np.ndarray, lo: float, width: float) -> None:
    """``dst[:n]`` = the rows of ``src[:n]`` in (time, sequence) order.

    The times of a bucket mostly lie in ``[lo, lo + width)`` and spread evenly, so a counting
    sort into about ``n / 2`` sub-buckets (which keeps the order of equal keys) followed by an
    insertion sort by (time, sequence) costs O(n); a crowded sub-bucket gets a Shell sort.
    """
    if n == 0:
        return
    m = src.shape[1]
    k = max(1, n // 2)
    scale = k / width
    key = np.empty(n, dtype=np.int64)
    start = np.zeros(k + 1, dtype=np.int64)
    for i in range(n):
        q = (src[i, 0] - lo) * scale
        j = 0 if q < 0 else (k - 1 if q >= k - 1 else int(q))
        key[i] = j
        start[j + 1] += 1
    for j in range(k):
        start[j + 1] += start[j]
    fill = np.empty(k, dtype=np.int64)
    for j in range(k):
        fill[j] = start[j]
    for i in range(n):
        j = key[i]
        copy_rows(src, i, dst, fill[j], 1)
        fill[j] += 1
    for j in range(k):
        a = start[j]
        b = start[j + 1]
        gap = 1
        if b - a > 32:  # a crowded sub-bucket: Shell sort first (gaps 1, 4, 13, 40, ...)
            while gap < (b - a) // 3:
                gap = 3 * gap + 1
        while gap >= 1:
            for i in range(a + gap, b):
                j2 = i
                while j2 - gap >= a and less(dst, j2, dst, j2 - gap):
                    for col in range(m):
                        tmp = dst[j2, col]
                        dst[j2, col] = dst[j2 - gap, col]
                        dst[j2 - gap, col] = tmp
                    j2 -= gap
            gap //= 3
