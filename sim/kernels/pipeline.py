"""The join pipeline of one tick: admission, placement, join queues and retries, attempt by attempt.

For the tick ``[t0, t_end)`` the kernel merges two time-ordered streams, the new listeners' first
attempts (sorted) and the retry heap, and handles every attempt at its own timestamp:

1. the admission policy admits it or rejects it (``bucket``);
2. the placement policy picks a node; the node rejects it when it holds its connection cap
   (``full``) or when its waiting room is full (``queue``);
3. otherwise it takes a connection and enters the node's FIFO join queue (``sim.kernels.queue``): it
   joins at the end of its service, or gives up after the join timeout (``timeout``) and hands its
   connection back;
4. a joined listener keeps its connection for an exponential session and then leaves;
5. a failed attempt asks the retry policy for its next attempt time, which goes into the retry heap
   (and is handled in this same tick when it falls before ``t_end``), or the listener abandons.

Nothing in the result depends on where the tick boundaries fall: the per-node state (worker-free
times, waiting-room exits, connection releases), the bucket and the retry heap carry across ticks,
and each random stream is drawn in event order (retries due at the very same instant leave the heap
in heap order, which is deterministic too). Joins and departures are recorded and counted per
tick (``advance``); ``peak`` finds the exact peak of concurrent listeners from the records.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels import admission, heap, placement, queue, retry

REJECT_BUCKET = admission.REJECT_BUCKET
REJECT_FULL = 1
REJECT_QUEUE = 2
REJECT_TIMEOUT = 3
REASONS = ("bucket", "full", "queue", "timeout")

# per-tick counters written by ``step`` and ``advance``
C_ARRIVALS = 0  # new listeners (first attempts)
C_ATTEMPTS = 1  # all attempts, first and retries
C_ADMITTED = 2  # attempts that passed admission
C_JOINING = 3  # attempts that will join (they got a worker within the join timeout)
C_ABANDONED = 4  # listeners who gave up after a failed attempt in this tick
C_JOINED = 5  # joins completed in this tick
C_LEFT = 6  # listeners who left in this tick
C_REJECT = 7  # C_REJECT + reason: rejections by reason, in the tick of the attempt
N_COUNTERS = C_REJECT + len(REASONS)

# integer state: sizes of the global heaps and the listener count
S_RETRY_N = 0  # retries pending
S_JOIN_N = 1  # joins pending (attempts in service that will join)
S_CONCURRENT = 2  # listeners connected (each with a departure pending)
S_RECORDED = 3  # join records written by ``step``
S_BIN = 4  # the first departure bin not yet counted
N_ISTATE = 5


@njit(cache=True)
def step(
    t_end: float,
    arrivals: np.ndarray,
    adm_kind: int,
    adm_params: np.ndarray,
    adm_state: np.ndarray,
    plc_kind: int,
    rty_kind: int,
    rty_params: np.ndarray,
    service_mean_s: float,
    join_timeout_s: float,
    session_mean_s: float,
    free: np.ndarray,
    wroom: np.ndarray,
    wn: np.ndarray,
    conn: np.ndarray,
    cn: np.ndarray,
    rh: np.ndarray,
    jr: np.ndarray,
    bins: np.ndarray,
    bin_s: float,
    istate: np.ndarray,
    counts: np.ndarray,
    latency: np.ndarray,
    rng_place: np.random.Generator,
    rng_service: np.random.Generator,
    rng_retry: np.random.Generator,
    rng_session: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Handle every attempt before ``t_end``; return the (possibly grown) arrays.

    Returns ``(rh, jr, bins, latency, n_latency)``: the retry record heap (time, first-attempt
    time, failed attempts so far), the join records (join time, departure time; appended, in
    ``jr[:istate[S_RECORDED]]``), the bins of ``bin_s`` seconds counting joins and departures
    (columns 0 and 1) and the join latencies of this tick's joining attempts in
    ``latency[:n_latency]``.
    """
    wcap = wroom.shape[1]
    conncap = conn.shape[1]
    rn = istate[S_RETRY_N]
    nrec = istate[S_RECORDED]
    nlat = 0
    ia = 0
    na = arrivals.shape[0]
    counts[C_ARRIVALS] += na
    while True:
        # the next attempt: a new listener or a due retry, whichever comes first
        if ia < na and (rn == 0 or arrivals[ia] <= rh[0, 0]):
            t = arrivals[ia]
            first = t
            k = 1
            ia += 1
        elif rn > 0 and rh[0, 0] < t_end:
            t = rh[0, 0]
            first = rh[0, 1]
            k = int(rh[0, 2]) + 1
            rn = heap.pop_record(rh, rn)
        else:
            break
        counts[C_ATTEMPTS] += 1
        fail_t = t
        reason = admission.admit(adm_kind, adm_params, adm_state, t)
        if reason < 0:
            counts[C_ADMITTED] += 1
            node = placement.choose(plc_kind, conn, cn, t, rng_place)
            if placement.held(conn, cn, node, t) >= conncap:
                reason = REJECT_FULL
            else:
                patience = join_timeout_s
                service = rng_service.exponential(service_mean_s)
                outcome, _start, end, wn[node] = queue.offer(
                    t, patience, service, free[node], wroom[node], wn[node], wcap
                )
                if outcome == queue.QUEUE_FULL:
                    reason = REJECT_QUEUE
                elif outcome == queue.TIMEOUT:
                    reason = REJECT_TIMEOUT
                    fail_t = end
                    cn[node] = heap.push(conn[node], cn[node], end)
                else:
                    leave = end + rng_session.exponential(session_mean_s)
                    cn[node] = heap.push(conn[node], cn[node], leave)
                    if nrec == jr.shape[0]:
                        jr = heap.grow_records(jr)
                    jr[nrec, 0] = end
                    jr[nrec, 1] = leave
                    nrec += 1
                    bj = int(end // bin_s)
                    bl = int(leave // bin_s)
                    if bl >= bins.shape[0]:
                        bins = _grow_zeros(bins, bl + 1)
                    bins[bj, 0] += 1
                    bins[bl, 1] += 1
                    if nlat == latency.shape[0]:
                        latency = heap.grow(latency)
                    latency[nlat] = end - first
                    nlat += 1
                    counts[C_JOINING] += 1
        if reason >= 0:
            counts[C_REJECT + reason] += 1
            wait = retry.delay(rty_kind, rty_params, k, rng_retry)
            if wait < 0.0:
                counts[C_ABANDONED] += 1
            else:
                if rn == rh.shape[0]:
                    rh = heap.grow_records(rh)
                rn = heap.push_record(rh, rn, (fail_t + wait, first, float(k)))
    istate[S_RETRY_N] = rn
    istate[S_JOIN_N] += nrec - istate[S_RECORDED]
    istate[S_RECORDED] = nrec
    return rh, jr, bins, latency, nlat


@njit(cache=True)
def _grow_zeros(a: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((max(rows, 2 * a.shape[0]), a.shape[1]), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


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


@njit(cache=True)
def fleet_snapshot(
    t: float, wroom: np.ndarray, wn: np.ndarray, conn: np.ndarray, cn: np.ndarray
) -> tuple[int, int]:
    """``(waiting, held)`` at ``t``: attempts in waiting rooms, connections held (all nodes)."""
    waiting = 0
    held = 0
    for i in range(wn.shape[0]):
        wn[i] = heap.drain(wroom[i], wn[i], t)
        cn[i] = heap.drain(conn[i], cn[i], t)
        waiting += wn[i]
        held += cn[i]
    return waiting, held
