"""The room: one SimPy process per listener, living the life of an attempt of ``docs/policies.md``.

A person arrives (``_arrivals``), draws their patience and, for consistent hashing, their key, and
makes attempt 1. Each attempt at time ``t`` (``_listener``):

0. a retry (attempt ``k ≥ 2``) must fit the client's retry budget, else it is not sent and the
   person abandons (``retries_denied``);
1. the client's adaptive throttle may reject it locally (``throttled``);
2. admission admits it, holds it (the person waits in the waiting room until the release), or
   rejects it;
3. placement picks a node, which turns it away (``full``, ``queue``) or takes it into its FIFO join
   queue: it times out (``timeout``) or is served and joins; a joined listener stays for a session
   and leaves, handing the connection back;
4. after a failure the backoff gives the wait before attempt ``k + 1``, or the person abandons.

The numbers the policies look at are kept here: ``live`` (listeners connected), ``in_flight``
(attempts on a node whose join is pending) and, per node, the connections held. Random numbers
come from the named streams of ``docs/policies.md`` (``sim.streams.stream``); they are not the
batched engine's numbers, only the same model.

A recorder wakes at every ``k·tick_s``, before anything else due at that instant (an event at a
tick's very end belongs to the next tick), and records the tick with ``sim.model.metrics.Metrics``.
The run ends at the first tick end at which no arrival can come and no person has anything left
to do; ``engine.max_sim_s`` stops a run that does not end and marks it failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy
from simpy.events import URGENT, Event

from sim import streams
from sim.config import Config
from sim.model.metrics import Metrics
from sim.model.surge import SurgeSource
from sim.reference.admission import Admit, Hold, Reject, WaitingRoom, admission_for
from sim.reference.client import Client
from sim.reference.draws import Stream
from sim.reference.fleet import Fleet, Node, Refused, Served, TimedOut
from sim.reference.placement import placement_for
from sim.reference.tally import Event as LogEntry
from sim.reference.tally import Tally

PROGRESS_EVERY_S = 256.0  # simulated seconds between calls of ``on_progress``
Process = Generator[Event, Any, None]


class TickEnd(Event):
    """A timeout that SimPy processes before every ordinary event due at the same instant.

    ``simpy.Timeout`` is scheduled at ``NORMAL`` priority; this one at ``URGENT``, so that the
    recorder sees the state at a tick's end without the events due exactly then.
    """

    def __init__(self, env: simpy.Environment, delay: float) -> None:
        super().__init__(env)
        self._ok = True  # triggered with no value, as Timeout.__init__ does
        self._value = None
        env.schedule(self, URGENT, delay)


@dataclass
class Person:
    """What a person carries from attempt to attempt."""

    pid: int
    first_s: float  # their first attempt
    deadline_s: float  # first + patience
    key: float  # consistent hashing's key (0 for the other placements)
    prev_wait_s: float  # their previous backoff wait (base_s before the first)
    k: int = 1  # the number of the attempt being made


class Room:
    """One simulation of one room by the reference engine."""

    def __init__(
        self,
        cfg: Config,
        log: list[LogEntry] | None = None,
        arrivals: Sequence[float] | None = None,
    ) -> None:
        self.cfg = cfg
        rng = {name: Stream.named(cfg.seed, name) for name in streams.NAMES}
        self.env = simpy.Environment()
        self.surge = SurgeSource(cfg.scenario, streams.stream(cfg.seed, streams.ARRIVALS))
        self.fleet = Fleet(cfg.platform)
        self.admission = admission_for(cfg.admission)
        self.placement = placement_for(cfg.platform, rng["placement"])
        self.client = Client(cfg.client, rng)
        self.service = rng["service"]
        self.session = rng["session"]
        self.tally = Tally()
        self.metrics = Metrics()
        self.log = log
        self.live = 0  # listeners connected: joined and not left
        self.in_flight = 0  # attempts placed on a node whose join is pending
        self.retries_pending = 0  # next attempts (and waiting-room releases) scheduled
        self.arrived = 0  # people so far (their ids are 0, 1, ...)
        self.arrivals_done = False  # the source will send nobody else
        self.people = 0  # listener processes that have something left to do
        self.failure: str | None = None
        self.end_s = 0.0
        self.finished = self.env.event()
        if arrivals is None:
            self.arrivals_end_s = self.surge.end_s
            self.env.process(self._arrivals())
        else:  # fixed first-attempt times instead of the surge (the exact tests)
            self.arrivals_end_s = 0.0
            self.env.process(self._fixed_arrivals(sorted(arrivals)))

    # ------------------------------------------------------------------ the run

    def run(self, on_progress: Callable[[float], None] | None = None) -> dict[str, Any]:
        """Simulate to the end; return the summary (``Engine.summary``'s keys)."""
        start = time.perf_counter()
        self.env.process(self._recorder(on_progress))
        self.env.run(until=self.finished)
        return self.summary(time.perf_counter() - start)

    def summary(self, wall_s: float) -> dict[str, Any]:
        m = self.metrics
        return {
            "arrivals": m.total("arrivals"),
            "attempts": m.total("attempts"),
            "joined": m.total("joining"),
            "abandoned": m.total("abandoned"),
            "rejected": m.rejected(),
            **m.latency_quantiles(),
            "peak_concurrent": self.tally.peak,
            "peak_time_s": self.tally.peak_time_s,
            "expected_arrivals": self.surge.expected,
            "scale": self.cfg.scenario.scale(),
            "nodes": self.cfg.platform.nodes,
            "sim_end_s": self.end_s,
            "ticks": len(m.t_s),
            "wall_s": wall_s,
            "seed": self.cfg.seed,
            "failed": self.failure is not None,
            "failure_reason": self.failure,
        }

    def _recorder(self, on_progress: Callable[[float], None] | None) -> Process:
        """Record every tick at its end; end the run (module docstring)."""
        dt = self.cfg.engine.tick_s
        limit = self.cfg.engine.max_sim_s
        reported = 0.0
        k = 0
        while True:
            k += 1
            t_end = k * dt
            yield TickEnd(self.env, t_end - self.env.now)
            self._record(t_end)
            self.end_s = t_end
            if on_progress is not None and t_end - reported >= PROGRESS_EVERY_S:
                on_progress(t_end)
                reported = t_end
            no_arrival = self.arrivals_done and t_end >= self.arrivals_end_s
            if no_arrival and self.people == 0:
                break
            if t_end >= limit:
                self.failure = f"engine.max_sim_s = {limit} s reached before every listener left"
                break
        if on_progress is not None:
            on_progress(self.end_s)
        self.finished.succeed()

    def _record(self, t_end: float) -> None:
        counts, latencies = self.tally.close_tick()
        held = self.admission.held(t_end) if isinstance(self.admission, WaitingRoom) else 0
        state = {
            "concurrent": self.live,
            "waiting": self.fleet.waiting(t_end),
            "connections": self.fleet.connections(),
            "nodes_up": len(self.fleet.nodes),
            "retries_pending": self.retries_pending,
            "held": held,
        }
        self.metrics.record(t_end, counts, latencies, state)

    def _arrivals(self) -> Process:
        """New listeners at the surge's arrival times, drawn one tick of time at a time."""
        dt = self.cfg.engine.tick_s
        k = 0
        while not self.surge.exhausted(k * dt):
            k += 1
            for t in self.surge.batch(k * dt).tolist():
                yield self.env.timeout(t - self.env.now)
                self._arrive()
        self.arrivals_done = True

    def _fixed_arrivals(self, times: list[float]) -> Process:
        for t in times:
            yield self.env.timeout(t - self.env.now)
            self._arrive()
        self.arrivals_done = True

    def _arrive(self) -> None:
        """A new listener makes attempt 1 now, with their patience and key drawn now."""
        t = self.env.now
        self.tally.count("arrivals")
        person = Person(
            pid=self.arrived,
            first_s=t,
            deadline_s=t + self.client.patience.draw(),
            key=self.placement.new_key(),
            prev_wait_s=self.client.first_prev,
        )
        self.arrived += 1
        self.people += 1
        self._note(person, "arrive")
        self.env.process(self._listener(person))

    # ------------------------------------------------------------------ a listener

    def _note(self, p: Person, what: str) -> None:
        if self.log is not None:
            self.log.append((self.env.now, p.pid, what))

    def _listener(self, p: Person) -> Process:
        """A person's attempts, until they join and leave or abandon."""
        env = self.env
        while True:
            if not self._sent(p):  # step 6 of docs/policies.md: the retry budget
                break
            failure: Reject | None = None
            verdict = self._gatekeepers(p)  # steps 1 and 2: the throttle, admission
            if isinstance(verdict, Hold):
                yield from self._held(p, verdict.release_s)
            elif isinstance(verdict, Reject):
                failure = verdict
            node: Node | None = None
            if failure is None:  # steps 3 and 4: placement, the node
                node, offer = self._place(p)
                if isinstance(offer, Served):
                    yield from self._join_and_stay(p, node, offer)
                    break
                if isinstance(offer, TimedOut):
                    failure = Reject("timeout", offer.give_up_s)
                else:
                    failure = Reject(offer.reason, env.now)
            retry_at = self._after_failure(p, failure)  # step 5, decided (and counted) now
            if failure.fail_s > env.now:  # a timeout or a hold timeout: they wait it out
                yield env.timeout(failure.fail_s - env.now)
            self._note(p, f"rejected {failure.reason}")
            if failure.reason == "timeout" and node is not None:
                node.hand_back()
                self.in_flight -= 1
            if retry_at is None:
                self._note(p, "abandon")
                break
            yield env.timeout(retry_at - env.now)
            self.retries_pending -= 1
            p.k += 1
        self.people -= 1

    def _sent(self, p: Person) -> bool:
        """The retry budget lets the attempt go (first attempts always go); count it."""
        t = self.env.now
        budget = self.client.budget
        if budget is not None:
            if p.k >= 2 and not budget.allows_retry(t):
                self.tally.count("retries_denied")
                self.tally.count("abandoned")
                self._note(p, f"denied {p.k}")
                return False
            budget.record(t, retry=p.k >= 2)  # sent, even if the throttle drops it next
        self.tally.count("attempts")
        self._note(p, f"attempt {p.k}")
        return True

    def _gatekeepers(self, p: Person) -> Admit | Hold | Reject:
        """The client's throttle, then admission, decide the attempt at ``now``."""
        t = self.env.now
        throttle = self.client.throttle
        if throttle is not None and throttle.rejects(t):
            return Reject("throttled", t)
        return self.admission.admit(t, self.live, self.in_flight, p.deadline_s - t)

    def _held(self, p: Person, release_s: float) -> Process:
        """Hold music until the waiting room releases the person."""
        self.retries_pending += 1  # the batched engine keeps a release among its pending retries
        self._note(p, "held")
        yield self.env.timeout(release_s - self.env.now)
        self.retries_pending -= 1
        self._note(p, "released")

    def _place(self, p: Person) -> tuple[Node, Served | TimedOut | Refused]:
        """The admitted attempt goes to the node placement picks; what the node says."""
        t = self.env.now
        self.tally.count("admitted")
        i = self.placement.choose(self.fleet.loads(), p.key)
        node = self.fleet.nodes[i]
        patience = min(self.cfg.platform.join_timeout_s, p.deadline_s - t)
        service = self.service.exponential(self.cfg.platform.join_service_mean_s)
        offer = node.offer(t, patience, service)
        self._note(p, f"node {i}")
        if isinstance(offer, TimedOut):
            self.in_flight += 1
            self.admission.observe(t, offer.give_up_s - t)
        elif isinstance(offer, Served):
            self.in_flight += 1
            self.admission.observe(t, offer.start_s - t)
            if self.client.throttle is not None:  # a held attempt: accepted at its release
                self.client.throttle.accepted(t)
            self.tally.joining(offer.end_s - p.first_s)
        return node, offer

    def _join_and_stay(self, p: Person, node: Node, offer: Served) -> Process:
        """Wait for the worker, be served, join, stay for the session, leave."""
        env = self.env
        session = self.session.exponential(self.cfg.scenario.session_mean_s)
        if offer.start_s > env.now:  # waiting for a worker
            yield env.timeout(offer.start_s - env.now)
        self._note(p, "served")
        yield env.timeout(offer.end_s - env.now)
        self.in_flight -= 1
        self.live += 1
        self.tally.count("joined")
        self.tally.connected(env.now, self.live)
        self._note(p, "joined")
        yield env.timeout(session)
        self.live -= 1
        node.hand_back()
        self.tally.count("left")
        self._note(p, "left")

    def _after_failure(self, p: Person, failure: Reject) -> float | None:
        """Count the failure now; the time of attempt ``k + 1``, or ``None`` (they abandon)."""
        self.tally.count(f"rejected_{failure.reason}")
        wait = self.client.wait_after(p.k, p.prev_wait_s, failure.hint_s)
        if wait is None or failure.fail_s + wait > p.deadline_s:
            self.tally.count("abandoned")
            return None
        self.retries_pending += 1
        p.prev_wait_s = wait
        return failure.fail_s + wait


def simulate_room(
    cfg: Config,
    on_progress: Callable[[float], None] | None = None,
    log: list[LogEntry] | None = None,
    arrivals: Sequence[float] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Run the reference engine: ``(summary, timeseries)``; ``log`` collects the event log."""
    room = Room(cfg, log, arrivals)
    summary = room.run(on_progress)
    return summary, room.metrics.timeseries()
