"""Joins and departures counted per bin, and the exact peak of concurrent listeners.

The pipeline kernel (``sim.kernels.pipeline``) learns each join's time and its departure time the
moment the attempt is handled; it appends the pair to the join records and counts both into bins
of ``bin_s`` seconds (the tick). ``advance`` then turns a tick's bins into its joins, departures
and listener count with one addition per bin, not a heap of millions of future times, and ``peak``
finds the exact peak, and when it was first reached, from the records.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels.pipeline import C_JOINED, C_LEFT, S_BIN, S_CONCURRENT, S_JOIN_N


@njit(cache=True)
def advance(
    t_end: float, bin_s: float, bins: np.ndarray, istate: np.ndarray, counts: np.ndarray
) -> None:
    """Count the joins and departures of the bins that end by ``t_end`` (a multiple of ``bin_s``).

    ``step`` counts every join and departure into a bin of ``bin_s`` seconds (the tick) when it
    learns its time, so a tick's joins and departures cost one addition per bin here, not a heap
    of millions of future times; ``peak`` finds the exact peak from the join records.
    """
    first = istate[S_BIN]
    last = int(round(t_end / bin_s))  # noqa: RUF046  # explicit for numba typing
    joined = 0
    left = 0
    for b in range(first, min(last, bins.shape[0])):
        joined += bins[b, 0]
        left += bins[b, 1]
    istate[S_BIN] = max(first, last)
    istate[S_JOIN_N] -= joined
    istate[S_CONCURRENT] += joined - left
    counts[C_JOINED] += joined
    counts[C_LEFT] += left


@njit(cache=True)
def peak(records: np.ndarray, bins: np.ndarray, bin_s: float) -> tuple[int, float]:
    """``(peak, time)``: the most listeners connected at once, and the first join that reached it.

    ``records`` are (join time, departure time) rows and ``bins`` their counts per bin of
    ``bin_s`` seconds, as ``step`` wrote them; a join and a departure at the same instant count
    the join first. Only the bins whose start count plus joins can reach the largest bin-end count
    can hold the peak, so only their joins and departures are sorted and replayed.
    """
    nb = bins.shape[0]
    start = np.zeros(nb, dtype=np.int64)
    now = 0
    best_end = 0
    for b in range(nb):
        start[b] = now
        now += bins[b, 0] - bins[b, 1]
        best_end = max(best_end, now)
    cand = np.zeros(nb, dtype=np.bool_)
    nj = 0
    nl = 0
    for b in range(nb):
        if bins[b, 0] > 0 and start[b] + bins[b, 0] >= best_end:
            cand[b] = True
            nj += bins[b, 0]
            nl += bins[b, 1]
    joins = np.empty(nj)
    leaves = np.empty(nl)
    nj = 0
    nl = 0
    for i in range(records.shape[0]):
        if cand[int(records[i, 0] // bin_s)]:
            joins[nj] = records[i, 0]
            nj += 1
        bl = int(records[i, 1] // bin_s)
        if bl < nb and cand[bl]:
            leaves[nl] = records[i, 1]
            nl += 1
    joins.sort()
    leaves.sort()
    best = 0
    best_t = np.nan
    j = 0
    current = -1
    joined = 0
    left = 0
    for i in range(nj):
        tj = joins[i]
        b = int(tj // bin_s)
        if b != current:
            current = b
            joined = 0
            left = 0
            while j < nl and int(leaves[j] // bin_s) < b:
                j += 1
        while j < nl and leaves[j] < tj:
            left += 1
            j += 1
        joined += 1
        count = start[b] + joined - left
        if count > best:
            best = count
            best_t = tj
    return best, best_t
