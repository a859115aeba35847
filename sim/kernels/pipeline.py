"""The join pipeline of one tick: admission, placement, join queues and retries, attempt by attempt.

For the tick ``[t0, t_end)`` the kernel merges two time-ordered streams, the new listeners' first
attempts (sorted) and the retry calendar, and handles every attempt at its own timestamp:

1. a retry coming due may be denied by the client's retry budget (the person abandons), and the
   client's adaptive throttle may reject any attempt locally (``throttled``);
2. the admission policy (``sim.kernels.admission``) admits it, holds it in the waiting room until
   its release (it comes back through the calendar then, already admitted), or rejects it;
3. the placement policy picks a node; the node rejects it when it holds its connection cap
   (``full``) or when its waiting room is full (``queue``);
4. otherwise it takes a connection and enters the node's FIFO join queue (``sim.kernels.queue``): it
   joins at the end of its service, or gives up after the join timeout or the person's patience
   (``timeout``) and hands its connection back; adaptive admission observes the queueing delay;
5. a joined listener keeps its connection for an exponential session and then leaves;
6. a failed attempt asks the client's backoff for its next attempt time (``sim.kernels.retry``),
   which goes into the retry calendar (and is handled in this same tick when it falls before
   ``t_end``), or the listener abandons (out of attempts, or past their patience).

Attack traffic (``sim.config.AttackConfig``) meets the same pipeline:

- *Bots* of a join flood are new arrivals marked 1 in ``akind`` (``step``'s argument after
  ``arrivals``; empty when every arrival is a person). A bot has no client policy (no retry
  budget, no throttle, no patience: its deadline is infinite; the join timeout still applies)
  and goes through the gates below, the live cap, admission (it takes tokens or credits and is
  observed), the control plane, placement and the join queue like a person; served, it does not
  become a listener (no join record, no session, no latency) and hands its connection back at
  the end of its service; rejected for any reason, it tries again ``fp[F_BOT_RETRY_S]`` after the
  failure while its attempt number is below ``fp[F_BOT_MAX_ATTEMPTS]``, else it is gone. Bots
  count only in the ``C_ATTACK_*`` counters, never in the organic ones.
- *Gates*, per attempt (a bot's or a person's), after the client-side checks and before the live
  cap, each off at 0 (then no draw): ``fp[F_LOSS]`` the probability that the attempt is lost on
  a flooded ingress (``flooded``), ``fp[F_FILTER_BOT]``/``fp[F_FILTER_ORGANIC]`` the probability
  that the mitigation filters a bot's/a person's attempt (``filtered``), both drawn from the
  ``attack`` stream, and ``fp[F_GATE]`` 1 while the presence channel is saturated: every attempt
  is rejected (``presence``, no draw). The engine sets them between ticks. A person rejected by
  them retries as after any rejection (no retry-after hint).

What a person carries between attempts (first attempt time, attempt number, deadline, previous
wait, hash key, bot or not) sits in a row of the ``slots`` table while they have a retry or a
release pending; the retry calendar's records are ``(time, slot, stage)``. ``docs/policies.md`` is
the definition of every policy.

The two big schedules are calendar queues (``sim.kernels.calendar``): the retries, and the release
of every held connection ``(time, node)``, which the kernel hands back (``cn[node] -= 1``) before
each attempt at a later or equal time. A node is therefore a count of held connections, and
placement compares two counts without touching any per-node heap.

Nothing in the result depends on where the tick boundaries fall: the per-node state (worker-free
times, waiting-room exits, connection counts), the bucket and both calendars carry across ticks,
and each random stream (a row of ``sim.kernels.rng`` state) is drawn in event order (retries
due at the very same instant leave in the order they were scheduled). Joins and departures are
recorded and counted per tick (``sim.kernels.tally``), which also finds the exact peak of concurrent
listeners from the records.

Speed notes (measured, see docs/performance.md): helpers called per attempt are compiled with
``_nrt=False`` (no reference counting, so LLVM inlines them; an array argument of a helper with
reference counting costs ~4 ns per call), and the per-attempt loop ``_run`` never rebinds an array
(a loop that may rebind arrays pays reference counting on each iteration); growth and bucket loads
happen in ``step``, between calls of ``_run``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from sim.kernels import admission, calendar, heap, hot, placement, queue, reasons, retry
from sim.kernels import rng as rn
from sim.kernels import rows as rw
from sim.kernels.prefetch import prefetch_at

REJECT_BUCKET = reasons.BUCKET
REJECT_FULL = reasons.FULL
REJECT_QUEUE = reasons.QUEUE
REJECT_TIMEOUT = reasons.TIMEOUT
REASONS = reasons.REASONS

# per-tick counters written by ``step`` and ``tally.advance``
C_ARRIVALS = 0  # new listeners (first attempts)
C_ATTEMPTS = 1  # all attempts, first and retries (a held attempt once)
C_ADMITTED = 2  # attempts that passed admission (held ones when released)
C_JOINING = 3  # attempts that will join (they got a worker within their patience)
C_ABANDONED = 4  # listeners who gave up after a failed attempt in this tick
C_JOINED = 5  # joins completed in this tick
C_LEFT = 6  # listeners who left in this tick
C_DENIED = 7  # retries the retry budget did not send (those listeners abandoned)
C_RECONNECTS = 8  # first attempts of listeners reconnecting after a drop
C_DROPPED = 9  # listeners dropped (node crashes, or alone: crash.drop_listeners)
C_REJECT = 10  # C_REJECT + reason: rejections by reason, in the tick of the attempt
# attack traffic: bots count here only, never in the counters above
C_ATTACK_ATTEMPTS = C_REJECT + len(REASONS)  # every bot attempt (first and retries, held once)
C_ATTACK_ADMITTED = C_ATTACK_ATTEMPTS + 1  # bot attempts that passed admission
C_ATTACK_REJECTED = C_ATTACK_ATTEMPTS + 2  # bot attempts rejected for any reason but ``filtered``
C_ATTACK_FILTERED = C_ATTACK_ATTEMPTS + 3  # bot attempts the mitigation filtered
C_ATTACK_SERVED = C_ATTACK_ATTEMPTS + 4  # bot attempts a join worker served (in the placement tick)
N_COUNTERS = C_ATTACK_ATTEMPTS + 5

# integer state: pending retries and joins, the listener count, the join records, the bin cursor
S_RETRY_N = 0  # retries (and waiting-room releases) pending
S_JOIN_N = 1  # joins pending (attempts in service that will join)
S_CONCURRENT = 2  # listeners connected (each with a departure pending)
S_RECORDED = 3  # join records written by ``step``
S_BIN = 4  # the first departure bin not yet counted
S_FLIGHT = 5  # entries of the in-flight heap (kept only when admission needs it)
S_SLOT_FREE = 6  # free rows on the slot stack
S_SLOT_USED = 7  # slot rows ever handed out
S_AUTH_N = 8  # attempts in the control plane's waiting room
N_ISTATE = 9

# the random streams: rows of the ``sim.kernels.rng`` state (``sim.streams.NAMES`` order)
R_PLACEMENT = 0
R_SERVICE = 1
R_RETRY = 2
R_SESSION = 3
R_PATIENCE = 4
R_CLIENT = 5
R_RECONNECT = 6
R_ATTACK = 7  # the gates' draws (ingress loss, mitigation filter)
N_STREAMS = 8

# the platform's numbers, one float vector
F_SERVICE_MEAN = 0
F_JOIN_TIMEOUT = 1
F_SESSION_MEAN = 2
F_CONNCAP = 3
F_BIN = 4  # the tick (bins of joins and departures)
F_LOAD_BOUND = 5  # consistent hashing's load bound
F_CHOICES = 6  # power of d choices
F_TRACK_FLIGHT = 7  # 1: keep the in-flight heap (the admission policy looks at it)
F_NUP = 8  # nodes up (``upidx[:n_up]``)
F_WASTED = 9  # 1: a timed-out join is still served (``sim.kernels.queue.offer``)
F_AUTH = 10  # 1: admitted attempts pass the control-plane/auth service first
F_AUTH_SERVICE = 11  # its mean service time
F_AUTH_TIMEOUT = 12  # and its timeout
F_LIVE_CAP = 13  # the operator's cap on connections held (inf: none): rejections ``cap``
# attack traffic (module docstring), set by the engine between ticks; 0 = off
F_LOSS = 14  # probability that an attempt is lost on a flooded ingress: ``flooded``
F_FILTER_BOT = 15  # probability that the mitigation filters a bot's attempt: ``filtered``
F_FILTER_ORGANIC = 16  # and a person's (a false positive)
F_GATE = 17  # 1: the presence channel is saturated, every attempt is rejected ``presence``
F_BOT_RETRY_S = 18  # a rejected bot tries again this long after the failure
F_BOT_MAX_ATTEMPTS = 19  # while its attempt number is below this (0 acts as 1)
N_PLATFORM = 20

# a release record's node column: the node and its epoch (the crashes it went through), so that
# a crash forgets the node's connections at once and their records are dropped when they come due
EPOCH_SPAN = 1 << 20  # nodes per epoch step: node + epoch · EPOCH_SPAN is exact in a float
# the epoch of a record whose listener alone was dropped (``sim.kernels.crash.drop_listeners``):
# never a node's current one (epochs count crashes); node + 2**52 is still exact in a float
STALE_EPOCH = 1 << 32

# a person's row in the slot table
SL_FIRST = 0  # their first attempt (of this visit: a reconnect starts anew)
SL_K = 1  # the number of the attempt that is pending
SL_DEADLINE = 2  # first + patience
SL_PREV = 3  # the previous backoff wait
SL_KEY = 4  # consistent hashing's key
SL_BOT = 5  # 1: a bot of a join flood (module docstring), 0: a person
N_SLOT = 6

# what a calendar record of the retry calendar is
STAGE_RETRY = 0.0  # attempt k >= 2 (or a reconnect's first attempt, k = 1)
STAGE_RELEASE = 1.0  # released from the waiting room: goes on to placement
STAGE_RECONNECT = 2.0  # a dropped listener's first attempt
STAGE_AUTHED = 3.0  # through the control plane: goes on to placement

# why ``_run`` stopped: the tick is done, or ``step`` must load or grow something first
DONE = 0
LOAD_RETRIES = 1
ROOM_RETRIES = 2
LOAD_RELEASES = 3
ROOM_RELEASES = 4
GROW_RECORDS = 5
GROW_LATENCY = 6
GROW_BINS = 7
GROW_SLOTS = 8

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
    akind: np.ndarray,
    adm_kind: int,
    adm_params: np.ndarray,
    adm_state: np.ndarray,
    adm_room: np.ndarray,
    plc_kind: int,
    ring_pos: np.ndarray,
    ring_node: np.ndarray,
    cli_kind: int,
    cli_params: np.ndarray,
    budget: tuple[np.ndarray, np.ndarray],
    throttle: tuple[np.ndarray, np.ndarray],
    fp: np.ndarray,
    free: np.ndarray,
    wroom: np.ndarray,
    wn: np.ndarray,
    cn: np.ndarray,
    cap: np.ndarray,
    up: np.ndarray,
    upidx: np.ndarray,
    epoch: np.ndarray,
    auth_free: np.ndarray,
    auth_room: np.ndarray,
    flight: np.ndarray,
    rel: Any,
    ret: Any,
    slots: np.ndarray,
    slot_free: np.ndarray,
    jr: np.ndarray,
    bins: np.ndarray,
    istate: np.ndarray,
    counts: np.ndarray,
    latency: np.ndarray,
    st: np.ndarray,
) -> tuple[Any, Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Handle every attempt before ``t_end``; return the (possibly grown) structures.

    ``cn`` counts the connections each node holds and ``rel`` (a ``sim.kernels.calendar`` of
    ``(time, node)``) schedules their releases; ``ret`` is the retry calendar of ``(time, slot,
    stage)`` and ``slots``/``slot_free`` the people's rows and the stack of free rows. ``flight``
    is the heap of the in-flight joins' end times (used when ``fp[F_TRACK_FLIGHT]``). Returns
    ``(rel, ret, slots, slot_free, jr, bins, latency, n_latency)``: the calendars, the slot table,
    the join records (join time, departure time; appended, in ``jr[:istate[S_RECORDED]]``), the
    bins of ``fp[F_BIN]`` seconds counting joins and departures (columns 0 and 1) and the join
    latencies of this tick's joining attempts in ``latency[:n_latency]``.

    ``akind`` (int8) is empty when every new arrival is a person, else one entry per arrival: 0
    a person, 1 a bot's first attempt (module docstring); ``C_ARRIVALS`` counts the people only.

    The attempts are handled by ``_run``, which never replaces an array (a loop that may rebind
    arrays pays reference counting on every iteration): it stops before an attempt whenever a
    calendar needs its next bucket loaded or an array must grow, and this loop does that and
    calls it again.
    """
    progress = np.zeros(N_PROGRESS, dtype=np.int64)
    load_t = np.zeros(1)  # the time up to which a calendar must be loaded
    rec = np.empty(3)
    aout = np.zeros(2)
    chosen = np.zeros(max(2, int(fp[F_CHOICES])), dtype=np.int64)
    bots = 0
    for i in range(akind.shape[0]):
        if akind[i] != 0:
            bots += 1
    counts[C_ARRIVALS] += arrivals.shape[0] - bots
    while True:
        why = _run(
            t_end, arrivals, akind, adm_kind, adm_params, adm_state, adm_room, plc_kind, ring_pos,
            ring_node, cli_kind, cli_params, budget[0], budget[1], throttle[0], throttle[1], fp,
            free, wroom, wn, cn, cap, up, upidx, epoch, auth_free, auth_room, flight,
            rel.bucket_s, rel.pool, rel.link, rel.ring, rel.free, rel.cur, rel.late, rel.far,
            rel.ist,
            ret.bucket_s, ret.pool, ret.link, ret.ring, ret.free, ret.cur, ret.late, ret.far,
            ret.ist,
            slots, slot_free, jr, bins, istate, counts, latency, progress, load_t, rec, aout,
            chosen, st,
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
        elif why == GROW_SLOTS:
            slots, slot_free = grow_slots(slots, slot_free)
        else:  # GROW_BINS: the last attempt's join and departure are counted here
            bins = rw.grow_rows(bins, progress[P_LEAVE_BIN] + 1, True)
            bins[progress[P_JOIN_BIN], 0] += 1
            bins[progress[P_LEAVE_BIN], 1] += 1
    istate[S_RETRY_N] = ret.ist[calendar.I_SIZE]
    return rel, ret, slots, slot_free, jr, bins, latency, int(progress[P_LATENCY])


@njit(cache=True)
def grow_slots(slots: np.ndarray, slot_free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slot table and its stack of free rows, with room for more people."""
    slots = rw.grow_rows(slots, slots.shape[0] + 1, False)
    stack = np.empty(slots.shape[0], dtype=np.int64)
    stack[: slot_free.shape[0]] = slot_free
    return slots, stack


@hot
def take_slot(slots: np.ndarray, slot_free: np.ndarray, istate: np.ndarray) -> int:
    """A free row of the slot table (the caller made sure there is one)."""
    if istate[S_SLOT_FREE] > 0:
        istate[S_SLOT_FREE] -= 1
        return int(slot_free[istate[S_SLOT_FREE]])
    i = istate[S_SLOT_USED]
    istate[S_SLOT_USED] = i + 1
    return int(i)


@hot
def _release_slot(slot: int, slot_free: np.ndarray, istate: np.ndarray) -> None:
    if slot >= 0:
        slot_free[istate[S_SLOT_FREE]] = slot
        istate[S_SLOT_FREE] += 1


@njit(cache=True)
def _run(
    t_end: float,
    arrivals: np.ndarray,
    akind: np.ndarray,
    adm_kind: int,
    adm_params: np.ndarray,
    adm_state: np.ndarray,
    adm_room: np.ndarray,
    plc_kind: int,
    ring_pos: np.ndarray,
    ring_node: np.ndarray,
    cli_kind: int,
    cp: np.ndarray,
    b_ring: np.ndarray,
    b_sums: np.ndarray,
    t_ring: np.ndarray,
    t_sums: np.ndarray,
    fp: np.ndarray,
    free: np.ndarray,
    wroom: np.ndarray,
    wn: np.ndarray,
    cn: np.ndarray,
    cap: np.ndarray,
    up: np.ndarray,
    upidx: np.ndarray,
    epoch: np.ndarray,
    auth_free: np.ndarray,
    auth_room: np.ndarray,
    flight: np.ndarray,
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
    slots: np.ndarray,
    slot_free: np.ndarray,
    jr: np.ndarray,
    bins: np.ndarray,
    istate: np.ndarray,
    counts: np.ndarray,
    latency: np.ndarray,
    progress: np.ndarray,
    load_t: np.ndarray,
    rec: np.ndarray,
    aout: np.ndarray,
    chosen: np.ndarray,
    st: np.ndarray,
) -> int:
    """The attempts of ``step`` until the tick is done or something must be loaded or grown.

    ``c_*`` are the release calendar's arrays, ``r_*`` the retry calendar's, ``b_*``/``t_*`` the
    retry budget's and the throttle's windows. Returns why it stopped: before an attempt is taken
    (it may have handed back connections released by then, which the next call would do the same
    way), or (``GROW_BINS``) after an attempt whose join or departure bin lies beyond ``bins``
    (``step`` counts those two).
    """
    wcap = wroom.shape[1]
    nrec = istate[S_RECORDED]
    nlat = progress[P_LATENCY]
    ia = progress[P_ARRIVAL]
    na = arrivals.shape[0]
    service_mean = fp[F_SERVICE_MEAN]
    join_timeout = fp[F_JOIN_TIMEOUT]
    session_mean = fp[F_SESSION_MEAN]
    bin_s = fp[F_BIN]
    # a time's bin is ``time // bin_s`` (numba's float ``//`` calls ``fmod``); for a bin of a power
    # of two seconds (the 1 s tick) the quotient is exact, and ``time * (1 / bin_s)`` is the same
    bin_inv = 1.0 / bin_s if math.frexp(bin_s)[0] == 0.5 else 0.0
    n_up = int(fp[F_NUP])
    wasted = fp[F_WASTED] > 0.0
    auth = fp[F_AUTH] > 0.0
    auth_service = fp[F_AUTH_SERVICE]
    auth_timeout = fp[F_AUTH_TIMEOUT]
    stale = epoch.shape[0] - 1  # epoch[stale]: release records of crashed nodes still queued
    track = fp[F_TRACK_FLIGHT] > 0.0
    ratio = cp[retry.P_BUDGET]
    throttle_k = cp[retry.P_THROTTLE_K]
    honour = cp[retry.P_HONOUR] > 0.0
    hashing = plc_kind == placement.CONSISTENT_HASH
    kinds = akind.shape[0] > 0  # some new arrivals may be bots
    loss = fp[F_LOSS]
    filter_bot = fp[F_FILTER_BOT]
    filter_organic = fp[F_FILTER_ORGANIC]
    gate = fp[F_GATE] > 0.0
    attack = loss > 0.0 or filter_bot > 0.0 or filter_organic > 0.0 or gate
    bot_retry = fp[F_BOT_RETRY_S]
    bot_max = fp[F_BOT_MAX_ATTEMPTS]
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
        if hand_back(c_cur, c_late, c_ist, c_bs, cn, epoch, t, rec):
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
        elif istate[S_SLOT_FREE] == 0 and istate[S_SLOT_USED] == slots.shape[0]:
            why = GROW_SLOTS
        if why != DONE:
            break
        stage = STAGE_RETRY
        bot = False
        if ia < na and arrivals[ia] <= t_retry:
            bot = kinds and akind[ia] != 0
            ia += 1
            slot = -1
            fresh = True
        else:
            calendar.take_from(r_cur, r_late, r_ist, rec)
            slot = int(rec[1])
            ci = r_ist[calendar.I_CI]
            if ci < r_ist[calendar.I_CN]:  # the slot row of the next retry: a random row
                nxt = int(r_cur[ci, 1])
                prefetch_at(slots, nxt, SL_FIRST)
                prefetch_at(slots, nxt, N_SLOT - 1)
            stage = rec[2]
            fresh = stage == STAGE_RECONNECT
            if fresh:  # a dropped listener comes back: a new first attempt
                counts[C_RECONNECTS] += 1
                stage = STAGE_RETRY
        if fresh:
            first = t
            k = 1
            deadline = np.inf if bot else t + retry.patience(cp, st, R_PATIENCE)
            prev = cp[retry.P_BASE]
            key = rn.uniform(st, R_PLACEMENT) if hashing else 0.0
        else:
            first = slots[slot, SL_FIRST]
            k = int(slots[slot, SL_K])
            deadline = slots[slot, SL_DEADLINE]
            prev = slots[slot, SL_PREV]
            key = slots[slot, SL_KEY]
            bot = slots[slot, SL_BOT] != 0.0
        reason = -1
        fail_t = t
        hint = 0.0
        if stage == STAGE_RETRY:
            if bot:  # no client policy
                counts[C_ATTACK_ATTEMPTS] += 1
            else:
                if ratio >= 0.0:  # the retry budget: a retry is sent only within it
                    retry.window_at(b_ring, b_sums, t)
                    if k >= 2 and b_sums[2] + 1.0 > ratio * b_sums[1]:
                        counts[C_DENIED] += 1
                        counts[C_ABANDONED] += 1
                        _release_slot(slot, slot_free, istate)
                        continue
                    retry.window_add(b_ring, b_sums, 0, 1.0)
                    if k >= 2:
                        retry.window_add(b_ring, b_sums, 1, 1.0)
                counts[C_ATTEMPTS] += 1
                if throttle_k >= 0.0:  # client-side adaptive throttling
                    retry.window_at(t_ring, t_sums, t)
                    req = t_sums[1]
                    p_reject = max(0.0, (req - throttle_k * t_sums[2]) / (req + 1.0))
                    retry.window_add(t_ring, t_sums, 0, 1.0)
                    if rn.uniform(st, R_CLIENT) < p_reject:
                        reason = reasons.THROTTLED
            if attack and reason < 0:
                reason = _gates(st, bot, loss, filter_bot, filter_organic, gate)
            if reason < 0 and c_ist[calendar.I_SIZE] - epoch[stale] >= fp[F_LIVE_CAP]:
                reason = reasons.CAP  # the operator capped the room
            if reason < 0:
                if track:
                    istate[S_FLIGHT] = heap.drain(flight, istate[S_FLIGHT], t)
                in_flight = int(istate[S_FLIGHT])
                live = int(c_ist[calendar.I_SIZE] - epoch[stale]) - in_flight
                code = admission.admit(
                    adm_kind, adm_params, adm_state, adm_room, t, live, in_flight,
                    deadline - t, aout,
                )  # fmt: skip
                if code == admission.HOLD:
                    if slot < 0:
                        slot = take_slot(slots, slot_free, istate)
                    _remember(slots, slot, first, k, deadline, prev, key, bot)
                    calendar.put(
                        r_bs, r_pool, r_link, r_ring, r_free, r_late, r_far, r_ist,
                        aout[0], float(slot), STAGE_RELEASE,
                    )  # fmt: skip
                    continue
                if code >= 0:
                    reason = code
                    fail_t = aout[0]
                    hint = aout[1]
        if reason < 0 and stage != STAGE_AUTHED:
            counts[C_ATTACK_ADMITTED if bot else C_ADMITTED] += 1
            if auth:  # the control plane first: a FIFO queue of its own
                service = rn.exponential(st, R_SERVICE, auth_service)
                outcome, _start, end, istate[S_AUTH_N] = queue.offer(
                    t, min(auth_timeout, deadline - t), service, auth_free, auth_room,
                    istate[S_AUTH_N], auth_room.shape[0],
                )  # fmt: skip
                if outcome == queue.SERVED:
                    if slot < 0:
                        slot = take_slot(slots, slot_free, istate)
                    _remember(slots, slot, first, k, deadline, prev, key, bot)
                    calendar.put(
                        r_bs, r_pool, r_link, r_ring, r_free, r_late, r_far, r_ist,
                        end, float(slot), STAGE_AUTHED,
                    )  # fmt: skip
                    continue
                reason = reasons.AUTH
                fail_t = end
        if reason < 0 and n_up == 0:
            reason = reasons.DOWN
        if reason < 0:
            held = int(c_ist[calendar.I_SIZE] - epoch[stale])
            node = placement.choose(
                plc_kind, cn, up, upidx, n_up, st, R_PLACEMENT, int(fp[F_CHOICES]), chosen,
                held, key, ring_pos, ring_node, fp[F_LOAD_BOUND],
            )  # fmt: skip
            if cn[node] >= cap[node]:
                reason = REJECT_FULL
            else:
                patience = min(join_timeout, deadline - t)
                service = rn.exponential(st, R_SERVICE, service_mean)
                outcome, start, end, wn[node] = queue.offer(
                    t, patience, service, free[node], wroom[node], wn[node], wcap, wasted
                )
                release_t = end
                row = -1.0
                if outcome == queue.QUEUE_FULL:
                    reason = REJECT_QUEUE
                else:
                    if track:
                        istate[S_FLIGHT] = heap.push(flight, istate[S_FLIGHT], end)
                    if outcome == queue.TIMEOUT:
                        reason = REJECT_TIMEOUT
                        fail_t = end
                        admission.observe(adm_kind, adm_params, adm_state, t, end - t)
                    elif bot:  # served: it holds its connection until the end of its service
                        admission.observe(adm_kind, adm_params, adm_state, t, start - t)
                        counts[C_ATTACK_SERVED] += 1
                        _release_slot(slot, slot_free, istate)
                    else:
                        admission.observe(adm_kind, adm_params, adm_state, t, start - t)
                        if throttle_k >= 0.0:
                            retry.window_at(t_ring, t_sums, t)
                            retry.window_add(t_ring, t_sums, 1, 1.0)
                        leave = end + rn.exponential(st, R_SESSION, session_mean)
                        release_t = leave
                        jr[nrec, 0] = end
                        jr[nrec, 1] = leave
                        row = float(nrec)
                        nrec += 1
                        latency[nlat] = end - first
                        nlat += 1
                        counts[C_JOINING] += 1
                        _release_slot(slot, slot_free, istate)
                        if bin_inv > 0.0:
                            bj = math.floor(end * bin_inv)
                            bl = math.floor(leave * bin_inv)
                        else:
                            bj = int(end // bin_s)
                            bl = int(leave // bin_s)
                        if bl < bins.shape[0]:
                            bins[bj, 0] += 1
                            bins[bl, 1] += 1
                        else:
                            progress[P_JOIN_BIN] = bj
                            progress[P_LEAVE_BIN] = bl
                            why = GROW_BINS
                    # it holds a connection until it leaves (or gives up)
                    calendar.put(
                        c_bs, c_pool, c_link, c_ring, c_free, c_late, c_far, c_ist,
                        release_t, float(node + epoch[node] * EPOCH_SPAN), row,
                    )  # fmt: skip
                    cn[node] += 1
        if reason >= 0 and bot:  # it tries again a fixed time later, or is gone
            counts[C_ATTACK_FILTERED if reason == reasons.FILTERED else C_ATTACK_REJECTED] += 1
            if k < bot_max:
                if slot < 0:
                    slot = take_slot(slots, slot_free, istate)
                _remember(slots, slot, first, k + 1, deadline, prev, key, True)
                calendar.put(
                    r_bs, r_pool, r_link, r_ring, r_free, r_late, r_far, r_ist,
                    fail_t + bot_retry, float(slot), STAGE_RETRY,
                )  # fmt: skip
            else:
                _release_slot(slot, slot_free, istate)
        elif reason >= 0:
            counts[C_REJECT + reason] += 1
            wait = retry.delay(cli_kind, cp, k, prev, st, R_RETRY)
            if wait >= 0.0 and honour and hint > wait:
                wait = hint
            if wait < 0.0 or fail_t + wait > deadline:
                counts[C_ABANDONED] += 1
                _release_slot(slot, slot_free, istate)
            else:
                if slot < 0:
                    slot = take_slot(slots, slot_free, istate)
                _remember(slots, slot, first, k + 1, deadline, wait, key, False)
                calendar.put(
                    r_bs, r_pool, r_link, r_ring, r_free, r_late, r_far, r_ist,
                    fail_t + wait, float(slot), STAGE_RETRY,
                )  # fmt: skip
        if why != DONE:
            break
    istate[S_JOIN_N] += nrec - istate[S_RECORDED]
    istate[S_RECORDED] = nrec
    progress[P_LATENCY] = nlat
    progress[P_ARRIVAL] = ia
    return why


@hot
def _remember(
    slots: np.ndarray,
    slot: int,
    first: float,
    k: int,
    deadline: float,
    prev: float,
    key: float,
    bot: bool,
) -> None:
    slots[slot, SL_FIRST] = first
    slots[slot, SL_K] = k
    slots[slot, SL_DEADLINE] = deadline
    slots[slot, SL_PREV] = prev
    slots[slot, SL_KEY] = key
    slots[slot, SL_BOT] = 1.0 if bot else 0.0


@hot
def _gates(
    st: np.ndarray, bot: bool, loss: float, filter_bot: float, filter_organic: float, gate: bool
) -> int:
    """The attack's gates for one attempt (module docstring): a reason, or -1 to go on.

    Each probability draws one uniform of the ``attack`` stream only when it is above 0.
    """
    if loss > 0.0 and rn.uniform(st, R_ATTACK) < loss:
        return reasons.FLOODED
    share = filter_bot if bot else filter_organic
    if share > 0.0 and rn.uniform(st, R_ATTACK) < share:
        return reasons.FILTERED
    if gate:
        return reasons.PRESENCE
    return -1


@njit(cache=True)
def release(rel: Any, cn: np.ndarray, epoch: np.ndarray, t: float) -> Any:
    """Hand back every connection whose release time is ``<= t``; return the calendar."""
    rec = np.empty(3)
    while hand_back(rel.cur, rel.late, rel.ist, rel.bucket_s, cn, epoch, t, rec):
        rel = calendar.load(rel, t)
    return rel


@hot
def hand_back(
    cur: np.ndarray,
    late: np.ndarray,
    ist: np.ndarray,
    bucket_s: float,
    cn: np.ndarray,
    epoch: np.ndarray,
    t: float,
    rec: np.ndarray,
) -> bool:
    """Take the loaded releases ``<= t`` off the release calendar and off their nodes' counts.

    A record of a node that crashed since it was queued (its epoch is older than the node's), or
    of a listener dropped alone (epoch ``STALE_EPOCH``), is dropped: the crash or the drop already
    forgot that connection (``epoch[-1]`` counts such records).
    Returns ``True`` when the calendar must ``load(c, t)`` its next bucket before going on (then
    call again), ``False`` when every release due by ``t`` is handed back. ``rec``: 3 floats.
    """
    while True:
        if calendar.stale(ist, t, bucket_s):
            return True
        if calendar.peek(cur, late, ist) > t:
            return False
        calendar.take_from(cur, late, ist, rec)
        code = int(rec[1])
        node = code % EPOCH_SPAN
        if code // EPOCH_SPAN == epoch[node]:
            cn[node] -= 1
        else:
            epoch[epoch.shape[0] - 1] -= 1


@njit(cache=True)
def fleet_snapshot(
    t: float, wroom: np.ndarray, wn: np.ndarray, cn: np.ndarray, epoch: np.ndarray, rel: Any
) -> tuple[Any, int, int]:
    """``(rel, waiting, held)`` at ``t``: attempts in waiting rooms, connections held (fleet)."""
    rel = release(rel, cn, epoch, t)
    waiting = 0
    for i in range(wn.shape[0]):
        if wn[i] > 0:
            wn[i] = heap.drain(wroom[i], wn[i], t)
            waiting += wn[i]
    return rel, waiting, rel.ist[calendar.I_SIZE] - epoch[epoch.shape[0] - 1]
