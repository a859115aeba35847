"""A plain-Python twin of the join pipeline: one event-by-event pass over every join attempt.

It restates the design of ``sim.kernels.pipeline`` (its module docstring) without numba, heaps of
parallel arrays or ticks, so that the kernel can be checked against it number for number:

- Attempts are handled one at a time in time order: every new listener's first attempt and every
  retry sit in one event list, ordered by time (a first attempt before a retry at the same time,
  retries at the same time in the order they were scheduled). Only attempts before the horizon (the
  last tick end) are handled; later retries stay pending.
- An attempt is first put to the admission policy (``bucket`` when rejected), then the placement
  policy picks a node. The node refuses it (``full``) when it holds ``connections_per_node``
  connections at that instant. Otherwise it takes a connection and enters the node's FIFO join
  queue, which has ``join_workers`` workers: the attempt would start at the later of its arrival and
  the earliest time a worker is free. If it would have to wait while ``join_queue_cap`` attempts are
  already waiting, it is refused (``queue``, and it takes no connection). If it would wait longer
  than ``join_timeout_s``, it waits that long, gives up (``timeout``) and hands its connection back,
  never taking a worker. Otherwise a worker serves it and it joins at the end of its service; the
  listener stays for an exponential session and hands the connection back when it leaves.
- A failed attempt ``k`` asks the retry policy for a wait: the next attempt comes that long after
  the failure (the attempt time, or the give-up time for a timeout), or the listener abandons.
- Random numbers, in the kernel's order: per attempt, the placement draws; then, unless the node is
  full, the service time; then, if it joins, the session length; then, if it failed, the retry wait.
  Every draw is made while the attempt is handled (the session length and the retry wait after a
  timeout too, although they are used later).

Ticks only matter for reporting: each attempt, join and departure is counted in the tick that
contains its time (``[previous end, end)``); abandonments and rejections in the tick of the failed
attempt; latencies in the tick of the attempt that joins.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tests.twins import policies

REASONS = ("bucket", "full", "queue", "timeout")
COUNTERS = (
    "arrivals",
    "attempts",
    "admitted",
    "joining",
    "abandoned",
    "joined",
    "left",
    *(f"rejected_{r}" for r in REASONS),
)

FIRST_ATTEMPT = 0  # event priority: a new listener's attempt comes before a retry at the same time
RETRY = 1


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


@dataclass
class Attempt:
    """One attempt and what became of it."""

    t: float
    first: float  # the listener's first attempt
    k: int  # 1 for the first attempt
    outcome: str  # "joined" or a rejection reason
    node: int = -1  # -1 when the bucket rejected it
    wait_until: float | None = None  # it sits in the waiting room over [t, wait_until)
    conn_until: float | None = None  # it holds a connection over [t, conn_until)
    join_t: float | None = None
    leave_t: float | None = None
    retry_t: float | None = None  # when its next attempt comes (None: joined or abandoned)


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
    pending_retries: int  # retries at or after the horizon
    peak: int
    peak_t: float

    def totals(self) -> dict[str, int]:
        return {c: sum(tick[c] for tick in self.ticks) for c in COUNTERS}

    def all_latencies(self) -> list[float]:
        return [x for tick in self.latencies for x in tick]

    def snapshot(self, t: float) -> tuple[int, int]:
        """``(waiting, connections)`` at ``t`` over the attempts handled before ``t``."""
        handled = [a for a in self.attempts if a.t < t]
        waiting = sum(1 for a in handled if a.wait_until is not None and a.wait_until > t)
        conns = sum(1 for a in handled if a.conn_until is not None and a.conn_until > t)
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


def simulate(
    setup: Setup,
    arrivals: Sequence[float],
    tick_ends: Sequence[float],
    rngs: dict[str, np.random.Generator],
) -> Result:
    """Run every attempt before ``tick_ends[-1]``; ``arrivals`` are the sorted first attempts."""
    s = setup
    horizon = float(tick_ends[-1])
    rng_place, rng_service = rngs["placement"], rngs["service"]
    rng_retry, rng_session = rngs["retry"], rngs["session"]
    nodes = [Node(free=[0.0] * s.join_workers) for _ in range(s.nodes)]
    bucket = [float(s.admission_params[1]) if s.admission_params else 0.0, 0.0]

    # the event list: (time, priority, sequence number, first attempt time, attempt number)
    events: list[tuple[float, int, int, float, int]] = [
        (float(t), FIRST_ATTEMPT, i, float(t), 1) for i, t in enumerate(arrivals)
    ]
    heapq.heapify(events)
    seq = len(events)
    attempts: list[Attempt] = []

    while events and events[0][0] < horizon:
        t, _, _, first, k = heapq.heappop(events)
        for nd in nodes:  # forget what is over by now (time only moves forward)
            nd.waiting = [x for x in nd.waiting if x > t]
            nd.conns = [x for x in nd.conns if x > t]
        a = Attempt(t=t, first=first, k=k, outcome="")
        attempts.append(a)
        fail_t = t

        if policies.admit(s.admission, s.admission_params, bucket, t) >= 0:
            a.outcome = "bucket"
        else:
            a.node = policies.choose(s.placement, [nd.conns for nd in nodes], t, rng_place)
            nd = nodes[a.node]
            if len(nd.conns) >= s.connections_per_node:
                a.outcome = "full"
            else:
                service = float(rng_service.exponential(s.join_service_mean_s))
                worker = nd.free.index(min(nd.free))
                start = max(t, nd.free[worker])
                if start > t and len(nd.waiting) >= s.join_queue_cap:
                    a.outcome = "queue"
                elif start - t > s.join_timeout_s:
                    a.outcome = "timeout"
                    fail_t = t + s.join_timeout_s
                    a.wait_until = a.conn_until = fail_t
                else:
                    a.outcome = "joined"
                    if start > t:
                        a.wait_until = start
                    nd.free[worker] = start + service
                    a.join_t = start + service
                    a.leave_t = a.join_t + float(rng_session.exponential(s.session_mean_s))
                    a.conn_until = a.leave_t
                if a.wait_until is not None:
                    nd.waiting.append(a.wait_until)
                if a.conn_until is not None:
                    nd.conns.append(a.conn_until)

        if a.outcome != "joined":
            wait = policies.delay(s.retry, s.retry_params, k, rng_retry)
            if wait >= 0.0:
                a.retry_t = fail_t + wait
                heapq.heappush(events, (a.retry_t, RETRY, seq, first, k + 1))
                seq += 1

    pending = sum(1 for e in events if e[1] == RETRY)
    return _report(attempts, list(map(float, tick_ends)), arrivals, pending)


def _report(
    attempts: list[Attempt], tick_ends: list[float], arrivals: Sequence[float], pending: int
) -> Result:
    horizon = tick_ends[-1]

    def tick_of(x: float) -> int:
        return bisect.bisect_right(tick_ends, x)  # the tick whose [start, end) holds x

    ticks = [dict.fromkeys(COUNTERS, 0) for _ in tick_ends]
    latencies: list[list[float]] = [[] for _ in tick_ends]
    for x in arrivals:
        if x < horizon:
            ticks[tick_of(x)]["arrivals"] += 1
    for a in attempts:
        tick = ticks[tick_of(a.t)]
        tick["attempts"] += 1
        if a.outcome != "bucket":
            tick["admitted"] += 1
        if a.outcome == "joined":
            assert a.join_t is not None and a.leave_t is not None
            tick["joining"] += 1
            latencies[tick_of(a.t)].append(a.join_t - a.first)
            if a.join_t < horizon:
                ticks[tick_of(a.join_t)]["joined"] += 1
            if a.leave_t < horizon:
                ticks[tick_of(a.leave_t)]["left"] += 1
        else:
            tick[f"rejected_{a.outcome}"] += 1
            if a.retry_t is None:
                tick["abandoned"] += 1

    # concurrency: joins and departures in time order, a join first on a tie
    moves = [(a.join_t, 0) for a in attempts if a.join_t is not None and a.join_t < horizon]
    moves += [(a.leave_t, 1) for a in attempts if a.leave_t is not None and a.leave_t < horizon]
    now = peak = 0
    peak_t = 0.0
    for t, kind in sorted(moves):
        now += 1 if kind == 0 else -1
        if now > peak:
            peak, peak_t = now, t
    return Result(attempts, tick_ends, ticks, latencies, pending, peak, peak_t)
