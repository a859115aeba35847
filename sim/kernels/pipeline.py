"""The join pipeline of one tick: admission, placement, join queues and retries, attempt by attempt.

For the tick ``[t0, t_end)`` the kernel merges two time-ordered streams, the new listeners' first
attempts (sorted) and the retry calendar, and handles every attempt at its own timestamp:

1. the admission policy admits it or rejects it (``bucket``);
2. the placement policy picks a node; the node rejects it when it holds its connection cap
   (``full``) or when its waiting room is full (``queue``);
3. otherwise it takes a connection and enters the node's FIFO join queue (``sim.kernels.queue``): it
   joins at the end of its service, or gives up after the join timeout (``timeout``) and hands its
   connection back;
4. a joined listener keeps its connection for an exponential session and then leaves;
5. a failed attempt asks the retry policy for its next attempt time, which goes into the retry
   calendar (and is handled in this same tick when it falls before ``t_end``), or the listener
   abandons.

The two big schedules are calendar queues (``sim.kernels.calendar``): the retries, and the release
of every held connection ``(time, node)``, which the kernel hands back (``cn[node] -= 1``) before
each attempt at a later or equal time. A node is therefore a count of held connections, and
placement compares two counts without touching any per-node heap.

Nothing in the result depends on where the tick boundaries fall: the per-node state (worker-free
times, waiting-room exits, connection counts), the bucket and both calendars carry across ticks,
and each random stream is drawn in event order (retries due at the very same instant leave in the
order they were scheduled). Joins and departures are recorded and counted per tick
(``sim.kernels.tally``), which also finds the exact peak of concurrent listeners from the records.

Speed notes (measured, see docs/performance.md): helpers called per attempt are compiled with
``_nrt=False`` (no reference counting, so LLVM inlines them; an array argument of a helper with
reference counting costs ~4 ns per call), and the per-attempt loop ``_run`` never rebinds an array
(a loop that may rebind arrays pays reference counting on each iteration); growth and bucket loads
happen in ``step``, between calls of ``_run``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from sim.kernels import admission, calendar, heap, hot, placement, queue, retry
from sim.kernels import rows as rw

REJECT_BUCKET = admission.REJECT_BUCKET
REJECT_FULL = 1
REJECT_QUEUE = 2
REJECT_TIMEOUT = 3
REASONS = ("bucket", "full", "queue", "timeout")

# per-tick counters written by ``step`` and ``tally.advance``
C_ARRIVALS = 0  # new listeners (first attempts)
C_ATTEMPTS = 1  # all attempts, first and retries
C_ADMITTED = 2  # attempts that passed admission
C_JOINING = 3  # attempts that will join (they got a worker within the join timeout)
C_ABANDONED = 4  # listeners who gave up after a failed attempt in this tick
C_JOINED = 5  # joins completed in this tick
C_LEFT = 6  # listeners who left in this tick
C_REJECT = 7  # C_REJECT + reason: rejections by reason, in the tick of the attempt
N_COUNTERS = C_REJECT + len(REASONS)

# integer state: pending retries and joins, the listener count, the join records, the bin cursor
S_RETRY_N = 0  # retries pending
S_JOIN_N = 1  # joins pending (attempts in service that will join)
S_CONCURRENT = 2  # listeners connected (each with a departure pending)
S_RECORDED = 3  # join records written by ``step``
S_BIN = 4  # the first departure bin not yet counted
N_ISTATE = 5


# why ``_run`` stopped: the tick is done, or ``step`` must load or grow something first
DONE = 0
LOAD_RETRIES = 1
ROOM_RETRIES = 2
LOAD_RELEASES = 3
ROOM_RELEASES = 4
GROW_RECORDS = 5
GROW_LATENCY = 6
GROW_BINS = 7

# ``_run``'s progress across its calls within a ``step``
P_ARRIVAL = 0  # the next new listener
P_LATENCY = 1  # latencies written
P_JOIN_BIN = 2  # a join's and a departure's bin that did not fit into ``bins`` yet
P_LEAVE_BIN = 3
N_PROGRESS = 4


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
    conncap: int,
    free: np.ndarray,
    wroom: np.ndarray,
    wn: np.ndarray,
    cn: np.ndarray,
    rel: Any,
    ret: Any,
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
) -> tuple[Any, Any, np.ndarray, np.ndarray, np.ndarray, int]:
    """Handle every attempt before ``t_end``; return the (possibly grown) structures.

    ``cn`` counts the connections each node holds and ``rel`` (a ``sim.kernels.calendar`` of
    ``(time, node)``) schedules their releases; ``ret`` is the retry calendar of ``(time,
    first-attempt time, failed attempts so far)``. Returns ``(rel, ret, jr, bins, latency,
    n_latency)``: the calendars, the join records (join time, departure time; appended, in
    ``jr[:istate[S_RECORDED]]``), the bins of ``bin_s`` seconds counting joins and departures
    (columns 0 and 1) and the join latencies of this tick's joining attempts in
    ``latency[:n_latency]``.

    The attempts are handled by ``_run``, which never replaces an array (a loop that may rebind
    arrays pays reference counting on every iteration): it stops before an attempt whenever a
    calendar needs its next bucket loaded or an array must grow, and this loop does that and
    calls it again.
    """
    progress = np.zeros(N_PROGRESS, dtype=np.int64)
    load_t = np.zeros(1)  # the time up to which a calendar must be loaded
    rec = np.empty(3)
    counts[C_ARRIVALS] += arrivals.shape[0]
    while True:
        why = _run(
            t_end, arrivals, adm_kind, adm_params, adm_state, plc_kind, rty_kind, rty_params,
            service_mean_s, join_timeout_s, session_mean_s, conncap, free, wroom, wn, cn,
            rel.bucket_s, rel.pool, rel.link, rel.ring, rel.free, rel.cur, rel.late, rel.far,
            rel.ist,
            ret.bucket_s, ret.pool, ret.link, ret.ring, ret.free, ret.cur, ret.late, ret.far,
            ret.ist,
            jr, bins, bin_s, istate, counts, latency, progress, load_t, rec,
            rng_place, rng_service, rng_retry, rng_session,
        )  # fmt: skip
        if why == DONE:
            break
        if why == LOAD_RETRIES:
            ret = calendar.load(ret, load_t[0])
        elif why == ROOM_RETRIES:
            ret = calendar.reserve(ret)
        elif why == LOAD_RELEASES:
            rel = calendar.load(rel, load_t[0])
        elif why == ROOM_RELEASES:
            rel = calendar.reserve(rel)
        elif why == GROW_RECORDS:
            jr = rw.grow_rows(jr, jr.shape[0] + 1, False)
        elif why == GROW_LATENCY:
            latency = heap.grow(latency)
        else:  # GROW_BINS: the last attempt's join and departure are counted here
            bins = rw.grow_rows(bins, progress[P_LEAVE_BIN] + 1, True)
            bins[progress[P_JOIN_BIN], 0] += 1
            bins[progress[P_LEAVE_BIN], 1] += 1
    istate[S_RETRY_N] = ret.ist[calendar.I_SIZE]
    return rel, ret, jr, bins, latency, int(progress[P_LATENCY])


@njit(cache=True)
def _run(
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
    conncap: int,
    free: np.ndarray,
    wroom: np.ndarray,
    wn: np.ndarray,
    cn: np.ndarray,
    c_bs: float,
    c_pool: np.ndarray,
    c_link: np.ndarray,
    c_ring: np.ndarray,
    c_free: np.ndarray,
    c_cur: np.ndarray,
    c_late: np.ndarray,
    c_far: np.ndarray,
    c_ist: np.ndarray,
    r_bs: float,
    r_pool: np.ndarray,
    r_link: np.ndarray,
    r_ring: np.ndarray,
    r_free: np.ndarray,
    r_cur: np.ndarray,
    r_late: np.ndarray,
    r_far: np.ndarray,
    r_ist: np.ndarray,
    jr: np.ndarray,
    bins: np.ndarray,
    bin_s: float,
    istate: np.ndarray,
    counts: np.ndarray,
    latency: np.ndarray,
    progress: np.ndarray,
    load_t: np.ndarray,
    rec: np.ndarray,
    rng_place: np.random.Generator,
    rng_service: np.random.Generator,
    rng_retry: np.random.Generator,
    rng_session: np.random.Generator,
) -> int:
    """The attempts of ``step`` until the tick is done or something must be loaded or grown.

    ``c_*`` are the release calendar's arrays, ``r_*`` the retry calendar's. Returns why it
    stopped: before an attempt is taken (it may have handed back connections released by then,
    which the next call would do the same way), or (``GROW_BINS``) after an attempt whose join or
    departure bin lies beyond ``bins`` (``step`` counts those two).
    """
    wcap = wroom.shape[1]
    nrec = istate[S_RECORDED]
    nlat = progress[P_LATENCY]
    ia = progress[P_ARRIVAL]
    na = arrivals.shape[0]
    why = DONE
    while True:
        # the next attempt: a new listener or a due retry, whichever comes first
        t_need = arrivals[ia] if ia < na else t_end
        if calendar.stale(r_ist, t_need, r_bs):
            load_t[0] = t_need
            why = LOAD_RETRIES
            break
        t_retry = calendar.peek(r_cur, r_late, r_ist)
        if ia < na and arrivals[ia] <= t_retry:
            t = arrivals[ia]
        elif t_retry < t_end:
            t = t_retry
        else:
            break
        # hand back the connections released by then
        if hand_back(c_cur, c_late, c_ist, c_bs, cn, t, rec):
            load_t[0] = t
            why = LOAD_RELEASES
            break
        # room for whatever this attempt may write
        if not calendar.room(r_late, r_far, r_link, r_ist):
            why = ROOM_RETRIES
        elif not calendar.room(c_late, c_far, c_link, c_ist):
            why = ROOM_RELEASES
        elif nrec == jr.shape[0]:
            why = GROW_RECORDS
        elif nlat == latency.shape[0]:
            why = GROW_LATENCY
        if why != DONE:
            break
        if ia < na and arrivals[ia] <= t_retry:
            first = t
            k = 1
            ia += 1
        else:
            calendar.take_from(r_cur, r_late, r_ist, rec)
            first = rec[1]
            k = int(rec[2]) + 1
        counts[C_ATTEMPTS] += 1
        fail_t = t
        reason = admission.admit(adm_kind, adm_params, adm_state, t)
        if reason < 0:
            counts[C_ADMITTED] += 1
            node = placement.choose(plc_kind, cn, rng_place)
            if cn[node] >= conncap:
                reason = REJECT_FULL
            else:
                patience = join_timeout_s
                service = rng_service.exponential(service_mean_s)
                outcome, _start, end, wn[node] = queue.offer(
                    t, patience, service, free[node], wroom[node], wn[node], wcap
                )
                release_t = end
                if outcome == queue.QUEUE_FULL:
                    reason = REJECT_QUEUE
                elif outcome == queue.TIMEOUT:
                    reason = REJECT_TIMEOUT
                    fail_t = end
                else:
                    leave = end + rng_session.exponential(session_mean_s)
                    release_t = leave
                    jr[nrec, 0] = end
                    jr[nrec, 1] = leave
                    nrec += 1
                    latency[nlat] = end - first
                    nlat += 1
                    counts[C_JOINING] += 1
                    bj = int(end // bin_s)
                    bl = int(leave // bin_s)
                    if bl < bins.shape[0]:
                        bins[bj, 0] += 1
                        bins[bl, 1] += 1
                    else:
                        progress[P_JOIN_BIN] = bj
                        progress[P_LEAVE_BIN] = bl
                        why = GROW_BINS
                if outcome != queue.QUEUE_FULL:
                    # it holds a connection until it leaves (or gives up)
                    calendar.put(
                        c_bs, c_pool, c_link, c_ring, c_free, c_late, c_far, c_ist,
                        release_t, float(node), 0.0,
                    )  # fmt: skip
                    cn[node] += 1
        if reason >= 0:
            counts[C_REJECT + reason] += 1
            wait = retry.delay(rty_kind, rty_params, k, rng_retry)
            if wait < 0.0:
                counts[C_ABANDONED] += 1
            else:
                calendar.put(
                    r_bs, r_pool, r_link, r_ring, r_free, r_late, r_far, r_ist,
                    fail_t + wait, first, float(k),
                )  # fmt: skip
        if why != DONE:
            break
    istate[S_JOIN_N] += nrec - istate[S_RECORDED]
    istate[S_RECORDED] = nrec
    progress[P_LATENCY] = nlat
    progress[P_ARRIVAL] = ia
    return why


@njit(cache=True)
def release(rel: Any, cn: np.ndarray, t: float) -> Any:
    """Hand back every connection whose release time is ``<= t``; return the calendar."""
    rec = np.empty(3)
    while hand_back(rel.cur, rel.late, rel.ist, rel.bucket_s, cn, t, rec):
        rel = calendar.load(rel, t)
    return rel


@hot
def hand_back(
    cur: np.ndarray,
    late: np.ndarray,
    ist: np.ndarray,
    bucket_s: float,
    cn: np.ndarray,
    t: float,
    rec: np.ndarray,
) -> bool:
    """Take the loaded releases ``<= t`` off the release calendar and off their nodes' counts.

    Returns ``True`` when the calendar must ``load(c, t)`` its next bucket before going on (then
    call again), ``False`` when every release due by ``t`` is handed back. ``rec``: 3 floats.
    """
    while True:
        if calendar.stale(ist, t, bucket_s):
            return True
        if calendar.peek(cur, late, ist) > t:
            return False
        calendar.take_from(cur, late, ist, rec)
        cn[int(rec[1])] -= 1


@njit(cache=True)
def fleet_snapshot(
    t: float, wroom: np.ndarray, wn: np.ndarray, cn: np.ndarray, rel: Any
) -> tuple[Any, int, int]:
    """``(rel, waiting, held)`` at ``t``: attempts in waiting rooms, connections held (fleet)."""
    rel = release(rel, cn, t)
    waiting = 0
    for i in range(wn.shape[0]):
        if wn[i] > 0:
            wn[i] = heap.drain(wroom[i], wn[i], t)
            waiting += wn[i]
    return rel, waiting, rel.ist[calendar.I_SIZE]
