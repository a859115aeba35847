"""A plain-Python twin of the join pipeline: one event-by-event pass over every join attempt.

It restates the design of ``sim.kernels.pipeline`` (its module docstring) without numba, heaps of
parallel arrays or ticks, so that the kernel can be checked against it number for number:

- Attempts are handled one at a time in time order: every new listener's first attempt and every
  retry or waiting-room release sit in one event list, ordered by time (a first attempt before a
  retry at the same time, retries at the same time in the order they were scheduled). Only
  attempts before the horizon (the last tick end) are handled; later retries stay pending.
- A person draws their patience at their first attempt. A retry coming due may be denied by the
  retry budget (the person abandons; not an attempt); the client's throttle may reject an attempt
  locally (``throttled``). The attempt is then put to the admission policy
  (``tests.twins.policies.Admission``), which may admit it, hold it until a release time (it comes
  back as an event, admitted) or reject it; then the placement policy picks a node. The node
  refuses it (``full``) when it holds ``connections_per_node`` connections at that instant.
  Otherwise it takes a connection and enters the node's FIFO join queue, which has
  ``join_workers`` workers: the attempt would start at the later of its arrival and
  the earliest time a worker is free. If it would have to wait while ``join_queue_cap`` attempts are
  already waiting, it is refused (``queue``, and it takes no connection). If it would wait longer
  than its patience there, ``min(join_timeout_s, deadline - t)``, it waits that long, gives up
  (``timeout``) and hands its connection back, never taking a worker. Otherwise a worker serves
  it and it joins at the end of its service; the listener stays for an
  exponential session and hands the connection back when it leaves.
- A failed attempt ``k`` asks the backoff for a wait (at least the rejection's retry-after hint
  when the client honours it): the next attempt comes that long after the failure (the attempt
  time, or the give-up time for a timeout), or the listener abandons (no attempts left, or the
  next one would come after their deadline).
- Attack traffic. A new arrival marked 1 in ``akind`` is a bot: it has no patience (its
  deadline is infinite), no retry budget and no throttle, and goes on like a person's attempt;
  served, it does not join: it hands its connection back at the end of its service (no session,
  no latency); failed for any reason, it comes back ``bot_retry_s`` after the failure while its
  attempt number is below ``bot_max_attempts``, else it is gone. Before admission every attempt
  (a bot's or a person's) meets the gates in force at its time (``Gates``): lost with probability
  ``loss`` (``flooded``), filtered with probability ``filter_bot`` or ``filter_organic``
  (``filtered``), refused while ``presence`` (``presence``). Bots count only in the ``attack_*``
  counters.
- Random numbers, each stream in the kernel's order: per new listener, the patience (not for a
  bot) and (for consistent hashing) the key; per attempt, the throttle draw, the gates' draws
  (``attack``: the loss, then the filter, each only when its probability is above 0), the
  placement draws; then, unless the node is full, the service time; then, if a person joins, the
  session length; then, if a person failed, the backoff wait. Every draw is made while the
  attempt is handled (the session length and the retry wait after a timeout too, although they
  are used later).

Ticks only matter for reporting: each attempt, join and departure is counted in the tick that
contains its time (``[previous end, end)``); abandonments and rejections in the tick of the failed
attempt; latencies in the tick of the attempt that joins.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.twins import policies
from tests.twins.rng import Xoshiro128ss

REASONS = policies.REASONS
COUNTERS = (
    "arrivals",
    "attempts",
    "admitted",
    "joining",
    "abandoned",
    "joined",
    "left",
    "retries_denied",
    "reconnects",
    "dropped",
    *(f"rejected_{r}" for r in REASONS),
    "attack_attempts",
    "attack_admitted",
    "attack_rejected",
    "attack_filtered",
    "attack_served",
)

FIRST_ATTEMPT = 0  # event priority: a new listener's attempt comes before a retry at the same time
RETRY = 1
STREAMS = ("placement", "service", "retry", "session", "patience", "client", "reconnect", "attack")


@dataclass
class Setup:
    """The platform and the policies, as the kernels number them."""

    nodes: int
    join_workers: int
    join_service_mean_s: float
    join_queue_cap: int
    join_timeout_s: float
    connections_per_node: int
    session_mean_s: float
    placement: int
    admission: int
    admission_params: tuple[float, ...]
    retry: int
    retry_params: tuple[float, ...]
    placement_choices: int = 2
    placement_load_bound: float = 1.25
    ring: tuple[tuple[float, int], ...] = ()
    timeout_wastes_work: bool = False
    auth_workers: int | None = None  # the control plane: a FIFO queue before placement
    auth_service_mean_s: float = 0.01
    auth_queue_cap: int = 0
    auth_timeout_s: float = 5.0
    bot_retry_s: float = 1.0  # a failed bot comes back this long after the failure
    bot_max_attempts: int = 1  # while its attempt number is below this


@dataclass(frozen=True)
class Gates:
    """The attack's gates in force (all off by default)."""

    loss: float = 0.0  # probability that an attempt is lost on the flooded ingress
    filter_bot: float = 0.0  # probability that the mitigation filters a bot's attempt
    filter_organic: float = 0.0  # and a person's
    presence: bool = False  # every attempt is refused


@dataclass
class Attempt:
    """One attempt and what became of it."""

    t: float  # when it was made
    first: float  # the listener's first attempt
    k: int  # 1 for the first attempt
    outcome: str = ""  # "joined", "held" (until placed), or a rejection reason
    admitted_t: float | None = None  # when it passed admission, if before its placement
    placed_t: float | None = None  # when it went on to placement (``t``, or its release)
    node: int = -1  # -1 when it never reached a node
    wait_until: float | None = None  # it sits in the waiting room over [placed_t, wait_until)
    conn_until: float | None = None  # it holds a connection over [placed_t, conn_until)
    join_t: float | None = None
    leave_t: float | None = None
    retry_t: float | None = None  # when its next attempt comes (None: joined or abandoned)
    abandoned: bool = False
    bot: bool = False  # a bot's attempt: "served" instead of "joined", never abandoned


@dataclass
class Node:
    free: list[float]  # when each worker is next free
    waiting: list[float] = field(default_factory=list)  # when each waiting attempt leaves the room
    conns: list[float] = field(default_factory=list)  # when each held connection is released


@dataclass
class Result:
    attempts: list[Attempt]
    tick_ends: list[float]
    ticks: list[dict[str, int]]  # per tick: the counters
    latencies: list[list[float]]  # per tick: join latencies, in attempt order
    pending_retries: int  # retries (and releases) at or after the horizon
    peak: int
    peak_t: float

    def totals(self) -> dict[str, int]:
        return {c: sum(tick[c] for tick in self.ticks) for c in COUNTERS}

    def all_latencies(self) -> list[float]:
        return [x for tick in self.latencies for x in tick]

    def snapshot(self, t: float) -> tuple[int, int]:
        """``(waiting, connections)`` at ``t`` over the attempts placed before ``t``."""
        placed = [a for a in self.attempts if a.placed_t is not None and a.placed_t < t]
        waiting = sum(1 for a in placed if a.wait_until is not None and a.wait_until > t)
        conns = sum(1 for a in placed if a.conn_until is not None and a.conn_until > t)
        return waiting, conns

    def concurrent(self, t: float) -> int:
        """Listeners joined before ``t`` and not left before ``t``."""
        return sum(
            1
            for a in self.attempts
            if a.join_t is not None
            and a.join_t < t
            and not (a.leave_t is not None and a.leave_t < t)
        )


def rngs_of(states: Sequence[Sequence[int]]) -> dict[str, Xoshiro128ss]:
    """Twin generators from the kernel's state rows (``sim.streams.states``)."""
    rows = zip(STREAMS, states, strict=True)
    return {name: Xoshiro128ss([int(x) for x in row]) for name, row in rows}


def simulate(
    setup: Setup,
    arrivals: Sequence[float],
    tick_ends: Sequence[float],
    states: Sequence[Sequence[int]],
    akind: Sequence[int] = (),
    gates: Sequence[tuple[float, Gates]] = (),
) -> Result:
    """Run every attempt before ``tick_ends[-1]``; ``arrivals`` are the sorted first attempts.

    ``akind``: 1 for a bot's first attempt, 0 for a person's (empty: all people). ``gates``:
    ``(from_t, gates)`` in time order, each in force from ``from_t`` on (none before the first).
    """
    kinds = [int(x) for x in akind] if len(akind) else [0] * len(arrivals)
    s = setup
    p = s.retry_params
    horizon = float(tick_ends[-1])
    rng = rngs_of(states)
    nodes = [Node(free=[0.0] * s.join_workers) for _ in range(s.nodes)]
    adm = policies.Admission(s.admission, s.admission_params)
    budget = policies.Window(p[policies.P_BUDGET_WINDOW])
    throttle = policies.Window(p[policies.P_THROTTLE_WINDOW])
    ratio, throttle_k = p[policies.P_BUDGET], p[policies.P_THROTTLE_K]
    honour = p[policies.P_HONOUR] > 0
    flight: list[float] = []  # when each join in flight ends (its join, or its give-up)
    denied_at: list[float] = []

    auth = Node(free=[0.0] * (s.auth_workers or 1))
    # events: (time, priority, sequence, person, attempt number, held attempt or None, stage)
    # a person (or a bot): [first, deadline, previous wait, key, bot]
    events: list[tuple[float, int, int, list[float], int, Attempt | None, str]] = []
    for i, t in enumerate(arrivals):
        person = [math.nan] * 4 + [float(kinds[i])]
        events.append((float(t), FIRST_ATTEMPT, i, person, 1, None, ""))
    heapq.heapify(events)
    seq = len(events)
    attempts: list[Attempt] = []

    while events and events[0][0] < horizon:
        t, prio, _, person, k, held, stage = heapq.heappop(events)
        for nd in nodes:  # forget what is over by now (time only moves forward)
            nd.waiting = [x for x in nd.waiting if x > t]
            nd.conns = [x for x in nd.conns if x > t]
        flight = [x for x in flight if x > t]
        auth.waiting = [x for x in auth.waiting if x > t]
        bot = person[4] > 0
        if prio == FIRST_ATTEMPT:
            deadline = math.inf if bot else t + policies.patience(p, rng["patience"])
            key = rng["placement"].uniform() if s.placement == policies.CONSISTENT_HASH else 0.0
            person[:4] = [t, deadline, float(p[policies.P_BASE]), key]
        first, deadline, prev, key, _ = person
        reason = ""
        fail_t = t
        hint = 0.0
        if held is None:
            if ratio >= 0 and not bot:
                if k >= 2 and budget.count(t, 1) + 1 > ratio * budget.count(t, 0):
                    denied_at.append(t)
                    continue
                budget.add(t, 0)
                if k >= 2:
                    budget.add(t, 1)
            a = Attempt(t=t, first=first, k=k, bot=bot)
            attempts.append(a)
            if throttle_k >= 0 and not bot:
                req, acc = throttle.count(t, 0), throttle.count(t, 1)
                p_reject = max(0.0, (req - throttle_k * acc) / (req + 1.0))
                throttle.add(t, 0)
                if rng["client"].uniform() < p_reject:
                    reason = "throttled"
            if not reason:
                reason = _gate(gates_in_force(gates, t), bot, rng["attack"])
            if not reason:
                conns = sum(len(nd.conns) for nd in nodes)
                code, when, hint = adm.decide(t, conns - len(flight), len(flight), deadline - t)
                if code == policies.HOLD:
                    a.outcome = "held"
                    heapq.heappush(events, (when, RETRY, seq, person, k, a, "held"))
                    seq += 1
                    continue
                if code >= 0:
                    reason = REASONS[code]
                    fail_t = when
        else:
            a = held
        if not reason and stage != "authed" and s.auth_workers is not None:
            a.admitted_t = t
            service = rng["service"].exponential(s.auth_service_mean_s)
            worker = auth.free.index(min(auth.free))
            start = max(t, auth.free[worker])
            wait = min(s.auth_timeout_s, deadline - t)
            if start > t and len(auth.waiting) >= s.auth_queue_cap:
                reason = "auth"
            elif start - t > wait:
                reason = "auth"
                fail_t = t + wait
                auth.waiting.append(fail_t)
            else:
                if start > t:
                    auth.waiting.append(start)
                auth.free[worker] = start + service
                a.outcome = "held"
                heapq.heappush(events, (start + service, RETRY, seq, person, k, a, "authed"))
                seq += 1
                continue
        if not reason:
            a.placed_t = t
            a.node = policies.choose(
                s.placement, [nd.conns for nd in nodes], t, rng["placement"],
                s.placement_choices, key, s.ring, s.placement_load_bound,
            )  # fmt: skip
            nd = nodes[a.node]
            if len(nd.conns) >= s.connections_per_node:
                reason = "full"
            else:
                service = rng["service"].exponential(s.join_service_mean_s)
                worker = nd.free.index(min(nd.free))
                start = max(t, nd.free[worker])
                wait = min(s.join_timeout_s, deadline - t)
                if start > t and len(nd.waiting) >= s.join_queue_cap:
                    reason = "queue"
                elif start - t > wait:
                    reason = "timeout"
                    fail_t = t + wait
                    a.wait_until = a.conn_until = fail_t
                    if s.timeout_wastes_work:  # nobody cancels it: it waits and is served
                        a.wait_until = start
                        nd.free[worker] = start + service
                    flight.append(fail_t)
                    adm.observe(t, wait)
                elif bot:  # served; it holds its connection until the end of its service
                    a.outcome = "served"
                    adm.observe(t, start - t)
                    if start > t:
                        a.wait_until = start
                    nd.free[worker] = start + service
                    a.conn_until = start + service
                    flight.append(a.conn_until)
                else:
                    a.outcome = "joined"
                    adm.observe(t, start - t)
                    if throttle_k >= 0:
                        throttle.add(t, 1)
                    if start > t:
                        a.wait_until = start
                    nd.free[worker] = start + service
                    a.join_t = start + service
                    flight.append(a.join_t)
                    a.leave_t = a.join_t + rng["session"].exponential(s.session_mean_s)
                    a.conn_until = a.leave_t
                if a.wait_until is not None:
                    nd.waiting.append(a.wait_until)
                if a.conn_until is not None:
                    nd.conns.append(a.conn_until)
        if bot and a.outcome != "served":
            a.outcome = reason
            if k < s.bot_max_attempts:
                a.retry_t = fail_t + s.bot_retry_s
                heapq.heappush(events, (a.retry_t, RETRY, seq, person, k + 1, None, ""))
                seq += 1
        elif not bot and a.outcome != "joined":
            a.outcome = reason
            wait = policies.delay(s.retry, p, k, prev, rng["retry"])
            if wait >= 0.0 and honour and hint > wait:
                wait = hint
            if wait < 0.0 or fail_t + wait > deadline:
                a.abandoned = True
            else:
                a.retry_t = fail_t + wait
                person[2] = wait
                heapq.heappush(events, (a.retry_t, RETRY, seq, person, k + 1, None, ""))
                seq += 1

    pending = sum(1 for e in events if e[1] == RETRY)
    people = [t for t, kind in zip(arrivals, kinds, strict=True) if not kind]
    return _report(attempts, list(map(float, tick_ends)), people, pending, denied_at)


def gates_in_force(gates: Sequence[tuple[float, Gates]], t: float) -> Gates:
    """The last gates set at or before ``t`` (all off before the first)."""
    now = Gates()
    for from_t, g in gates:
        if from_t <= t:
            now = g
    return now


def _gate(g: Gates, bot: bool, rng: Xoshiro128ss) -> str:
    """The reason the gates refuse an attempt, or ``""``; a draw only for a probability > 0."""
    if g.loss > 0 and rng.uniform() < g.loss:
        return "flooded"
    share = g.filter_bot if bot else g.filter_organic
    if share > 0 and rng.uniform() < share:
        return "filtered"
    return "presence" if g.presence else ""


def decided(a: Attempt) -> float:
    """When what became of an attempt was decided: its placement, its passing admission (when
    the control plane refused it), or the attempt itself."""
    for x in (a.placed_t, a.admitted_t):
        if x is not None:
            return x
    return a.t


def _report(
    attempts: list[Attempt],
    tick_ends: list[float],
    arrivals: Sequence[float],
    pending: int,
    denied_at: Sequence[float],
) -> Result:
    horizon = tick_ends[-1]

    def tick_of(x: float) -> int:
        return bisect.bisect_right(tick_ends, x)  # the tick whose [start, end) holds x

    ticks = [dict.fromkeys(COUNTERS, 0) for _ in tick_ends]
    latencies: list[list[float]] = [[] for _ in tick_ends]
    for x in arrivals:
        if x < horizon:
            ticks[tick_of(x)]["arrivals"] += 1
    for x in denied_at:
        ticks[tick_of(x)]["retries_denied"] += 1
        ticks[tick_of(x)]["abandoned"] += 1
    # an attempt counts when it is made; what happened at placement, in the tick it was placed
    order = sorted(
        (a for a in attempts if a.outcome != "held"),
        key=lambda a: decided(a),
    )
    for a in attempts:
        ticks[tick_of(a.t)]["attack_attempts" if a.bot else "attempts"] += 1
    for a in order:
        at = decided(a)
        tick = ticks[tick_of(at)]
        admitted = "attack_admitted" if a.bot else "admitted"
        if a.admitted_t is not None:
            ticks[tick_of(a.admitted_t)][admitted] += 1
        elif a.placed_t is not None:
            tick[admitted] += 1
        if a.bot:
            outcome = a.outcome if a.outcome in ("served", "filtered") else "rejected"
            tick[f"attack_{outcome}"] += 1
        elif a.outcome == "joined":
            assert a.join_t is not None and a.leave_t is not None
            tick["joining"] += 1
            latencies[tick_of(at)].append(a.join_t - a.first)
            if a.join_t < horizon:
                ticks[tick_of(a.join_t)]["joined"] += 1
            if a.leave_t < horizon:
                ticks[tick_of(a.leave_t)]["left"] += 1
        else:
            tick[f"rejected_{a.outcome}"] += 1
            if a.abandoned:
                tick["abandoned"] += 1

    # concurrency: joins and departures in time order, a join first on a tie
    moves = [(a.join_t, 0) for a in attempts if a.join_t is not None and a.join_t < horizon]
    moves += [(a.leave_t, 1) for a in attempts if a.leave_t is not None and a.leave_t < horizon]
    now = peak = 0
    peak_t = math.nan  # nobody joined: no peak time (the kernel's and the summary's NaN)
    for t, kind in sorted(moves):
        now += 1 if kind == 0 else -1
        if now > peak:
            peak, peak_t = now, t
    return Result(attempts, tick_ends, ticks, latencies, pending, peak, peak_t)
