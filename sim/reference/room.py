"""The room: one SimPy process per listener, living the life of an attempt of ``docs/policies.md``
and ``docs/model.md``.

A person arrives (``_arrivals``), draws their patience and, for consistent hashing, their key, and
makes attempt 1. Each attempt at time ``t`` (``_visit``):

0. a retry (attempt ``k ≥ 2``) must fit the client's retry budget, else it is not sent and the
   person abandons (``retries_denied``);
1. the client's adaptive throttle may reject it locally (``throttled``);
2. the gates (``docs/policies.md``, *Attack traffic*): a flooded edge ingress loses it
   (``flooded``), the attack's mitigation filters it (``filtered``), both with the probabilities
   of the tick (``sim.reference.attack``), and a saturated presence channel rejects it
   (``presence``);
3. the operator's listener cap (``cap_listeners``) rejects it (``cap``, no hint) while the fleet
   holds that many connections;
4. admission admits it, holds it (the person waits in the waiting room until the release), or
   rejects it; an admitted (or released) attempt counts in ``admitted``;
5. the control plane, if there is one, serves it (the person waits for it) or rejects it
   (``auth``); an attempt released from the waiting room or served by the control plane is not
   checked again by steps 0 to 4;
6. with no node up it is rejected (``down``); placement picks a node up, which turns it away
   (``full``, ``queue``) or seats it in its FIFO join queue: it times out (``timeout``) or is
   served and joins; a joined listener stays for a session and leaves, handing the seat back;
7. after a failure the backoff gives the wait before attempt ``k + 1``, or the person abandons.

A bot of a join flood arrives among the people (a person first at equal times) and lives the same
life without a client policy: no patience, budget (step 0) or throttle (step 1). Served, it holds
its seat only until its service ends and never joins; after a failure at ``f`` its attempt ``k``
is followed by attempt ``k + 1`` at ``f + bot_retry_s`` while ``k < bot_max_attempts``, else it
is gone. It counts only in the ``attack_*`` columns: ``attack_attempts``, ``attack_admitted``,
``attack_served`` (in the tick of its placement), ``attack_filtered`` and ``attack_rejected``
(every other reason).

The numbers the policies look at are kept here: ``live`` (listeners connected), ``in_flight``
(attempts seated on a node whose join is pending, timing-out ones until they give up, bots until
their service ends) and, per node, its seats. Random numbers come from the named streams of
``docs/policies.md`` (``sim.streams.stream``); they are not the batched engine's numbers, only the
same model.

A recorder wakes at every tick end ``T = k·tick_s``, before anything else due at that instant (an
event at a tick's very end belongs to the next tick). It records the row ``T`` with
``sim.model.metrics.Metrics`` (the state before the between-tick components act), then the
components act, in the batched engine's order: ``Restarts`` (nodes due back, warm-up caps), the
``HealthMonitor`` (overload crashes), the ``Operator`` (scripted actions), the ``Autoscaler``, the
``FanOut``; then the attack sets the gates of the tick that starts at ``T`` (the flood per node
up then, mitigation on or not). A crash (``crash_node``) drops the listeners the node holds and
those whose join is in flight there (which count as joined at ``T``): their processes are
interrupted, and those who reconnect come back after their reconnect delay as a new first attempt
(``reconnects``). Everything a component does at ``T`` shows from the row ``T + tick_s`` on.

The run ends at the first tick end at which no arrival (nor bot) can come, the volumetric flood is
over and no person or bot has anything left to do; ``engine.max_sim_s`` stops a run that does not
end and marks it failed.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import simpy
from simpy.events import URGENT, Event

from sim import criteria, interrupt, streams
from sim.config import Config
from sim.model.fanout import extras_summary
from sim.model.metrics import COUNTERS, Metrics
from sim.model.surge import SurgeSource
from sim.reference.admission import (
    ADMIT,
    AdmissionPolicy,
    Admit,
    Hold,
    Reject,
    WaitingRoom,
    admission_for,
)
from sim.reference.attack import Attack, attacked, bot_source
from sim.reference.audio import FanOut, Presence
from sim.reference.client import Client, Reconnects
from sim.reference.control import control_plane_for
from sim.reference.draws import Stream
from sim.reference.fleet import Fleet, Node, Seat
from sim.reference.health import HealthMonitor, Restarts
from sim.reference.operator import Autoscaler, Operator, fleet_room
from sim.reference.placement import placement_for
from sim.reference.queue import Refused, Served, TimedOut
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
    """What a person carries from attempt to attempt (within a visit: a reconnect starts anew);
    a bot of a join flood (``bot``) carries the same, with no patience (``deadline_s`` inf)."""

    pid: int
    first_s: float  # their first attempt
    deadline_s: float  # first + patience
    key: float  # consistent hashing's key (0 for the other placements)
    prev_wait_s: float  # their previous backoff wait (base_s before the first)
    k: int = 1  # the number of the attempt being made
    bot: bool = False  # a bot: no client policy, counted in the ``attack_*`` columns only


class ArrivalSource(Protocol):
    """Where first attempts come from: the surge, a join flood, or fixed times."""

    end_s: float  # none at or after this time

    def batch(self, t_end: float) -> np.ndarray: ...

    def exhausted(self, t: float) -> bool: ...


class FixedTimes:
    """First attempts at given times (the exact tests), handed out one tick at a time."""

    end_s = 0.0  # the run does not wait for them: it ends once they are all out

    def __init__(self, times: Sequence[float]) -> None:
        self._times = sorted(times)
        self._next = 0

    def batch(self, t_end: float) -> np.ndarray:
        """The times in ``[previous t_end, t_end)``."""
        i = bisect.bisect_left(self._times, t_end, lo=self._next)
        out = np.array(self._times[self._next : i], dtype=np.float64)
        self._next = i
        return out

    def exhausted(self, t: float) -> bool:
        return self._next == len(self._times)


@dataclass(frozen=True)
class Placed:
    """An attempt seated on ``node``: it will join (``Served``) or time out."""

    node: Node
    seat: Seat
    offer: Served | TimedOut


@dataclass(frozen=True)
class Dropped:
    """Why a crash interrupts a listener: they reconnect at ``back_s`` (``None``: never)."""

    back_s: float | None


class Room:
    """One simulation of one room by the reference engine."""

    def __init__(
        self,
        cfg: Config,
        log: list[LogEntry] | None = None,
        arrivals: Sequence[float] | None = None,
        bots: Sequence[float] | None = None,
    ) -> None:
        self.cfg = cfg
        rng = {name: Stream.named(cfg.seed, name) for name in streams.NAMES}
        self.env = simpy.Environment()
        self.surge = SurgeSource(cfg.scenario, streams.stream(cfg.seed, streams.ARRIVALS))
        room = fleet_room(cfg)
        self.fleet = Fleet(cfg.platform, room)
        self.admission: AdmissionPolicy = admission_for(cfg.admission)
        self.placement = placement_for(cfg.platform, rng["placement"], room)
        self.control = control_plane_for(cfg.platform, rng["service"])
        self.client = Client(cfg.client, rng)
        self.reconnects = Reconnects(cfg.client, rng["reconnect"])
        self.service = rng["service"]
        self.session = rng["session"]
        self.tally = Tally()
        self.metrics = Metrics()
        self.events: list[dict[str, Any]] = []
        self.log = log
        self.live = 0  # listeners connected: joined and not left
        self.in_flight = 0  # attempts seated on a node whose join is pending
        self.live_cap: float | None = None  # the operator's cap on the connections held
        self.retries_pending = 0  # records the batched engine's retry calendar would hold
        self.arrived = 0  # people and bots so far (their ids are 0, 1, ... in arrival order)
        self.arrivals_done = False  # the sources will send nobody else
        self.people = 0  # processes (listeners and bots) that have something left to do
        self.failure: str | None = None
        self.end_s = 0.0
        self.wall_s = 0.0
        self.finished = self.env.event()
        tick = cfg.engine.tick_s
        self.restarts = Restarts(cfg.platform, tick, self.fleet, self, self.events)
        self.health = (
            None
            if cfg.platform.crash_after_s is None
            else HealthMonitor(cfg.platform, tick, self.fleet, self.restarts)
        )
        actions = cfg.scenario.actions
        self.operator = (
            Operator(actions, self.fleet, self.restarts, self, self.events) if actions else None
        )
        self.autoscaler = (
            Autoscaler(cfg.autoscaler, self.fleet, self.events)
            if cfg.autoscaler.policy == "target"
            else None
        )
        self.fanout = (
            FanOut(cfg.platform.fanout, self, cfg.seed, tick)
            if cfg.platform.fanout.enabled
            else None
        )
        self.presence = (
            Presence(cfg.platform.presence, self, cfg.seed, tick)
            if cfg.platform.presence.enabled
            else None
        )
        self.attack: Attack | None = None
        bot_arrivals: ArrivalSource = FixedTimes(bots or ())
        if attacked(cfg.attack):
            source = bot_source(cfg.attack, streams.stream(cfg.seed, streams.ATTACK_ARRIVALS))
            if bots is None and source is not None:
                bot_arrivals = source
            self.attack = Attack(cfg.attack, cfg.platform.fanout.edge, rng["attack"])
            self.attack.open_tick(0.0, len(self.fleet.up))
        # fixed first-attempt times instead of the surge or the join flood (the exact tests)
        organic: ArrivalSource = self.surge if arrivals is None else FixedTimes(arrivals)
        ends = [organic.end_s, bot_arrivals.end_s]
        if self.attack is not None:  # the run lasts as long as the flood, too
            ends.append(self.attack.flood_end_s)
        self.arrivals_end_s = max(ends)
        self.env.process(self._arrivals(organic, bot_arrivals))

    # ------------------------------------------------------------------ the run

    def run(self, on_progress: Callable[[float], None] | None = None) -> None:
        """Simulate to the end (``summary`` and ``timeseries`` then tell what happened)."""
        start = time.perf_counter()
        self.env.process(self._recorder(on_progress))
        self.env.run(until=self.finished)
        self.wall_s = time.perf_counter() - start

    def timeseries(self) -> dict[str, np.ndarray]:
        """The metrics' per-tick columns, the join capacity and the criterion's derived series."""
        ts = self.metrics.timeseries()
        p = self.cfg.platform
        ts["join_capacity_per_s"] = ts["nodes_up"] * (p.join_workers / p.join_service_mean_s)
        if self.fanout is not None:
            ts |= self.fanout.log.timeseries(ts["t_s"].size)
        if self.presence is not None:
            ts |= self.presence.timeseries()
        if self.attack is not None:  # the flood of each tick, at its start
            start = (ts["t_s"] - self.cfg.engine.tick_s).tolist()
            ts["attack_gbps"] = np.array([self.attack.flood_gbps(t) for t in start])
        ts |= criteria.series(ts, self.cfg.engine.tick_s, self.cfg.criterion)
        return ts

    def summary(self, timeseries: dict[str, np.ndarray]) -> dict[str, Any]:
        """``sim.engine.Engine.summary``'s keys, in its order."""
        m, tick = self.metrics, self.cfg.engine.tick_s
        verdict = criteria.assess(
            timeseries,
            tick,
            self.cfg.criterion,
            self.surge.start_s,
            max(self.surge.end_s, self.surge.start_s + tick),
            engine_failure=self.failure,
        )
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
            "wall_s": self.wall_s,
            "seed": self.cfg.seed,
            "retries_denied": m.total("retries_denied"),
            "reconnects": m.total("reconnects"),
            "crashes": sum(1 for e in self.events if e["kind"] == "crash"),
            "surge_start_s": self.surge.start_s,
            **extras_summary(None if self.fanout is None else self.fanout.log, self.presence, m),
            **verdict,
            "engine_failed": self.failure is not None,
        }

    def _recorder(self, on_progress: Callable[[float], None] | None) -> Process:
        """Record every tick at its end, let the components act; end the run (module docstring)."""
        dt = self.cfg.engine.tick_s
        limit = self.cfg.engine.max_sim_s
        reported = 0.0
        k = 0
        while True:
            k += 1
            t_end = k * dt
            yield TickEnd(self.env, t_end - self.env.now)
            self._record(t_end)
            self._between_ticks(t_end)
            if self.attack is not None:  # the gates of the tick that starts now
                self.attack.open_tick(t_end, len(self.fleet.up))
            self.end_s = t_end
            due = t_end - reported >= PROGRESS_EVERY_S or interrupt.pending()  # Ctrl-C: now
            if on_progress is not None and due:
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
            "nodes_up": len(self.fleet.up),
            "retries_pending": self.retries_pending,
            "held": held,
        }
        self.metrics.record(t_end, counts, latencies, state)
        if self.presence is not None:  # the batched engine's order: within the tick's step
            self.presence.account(t_end, int(counts[COUNTERS["joined"]]))

    def _between_ticks(self, t: float) -> None:
        """The components that act at the tick end ``t``, in the batched engine's order."""
        self.restarts.act(t)
        if self.health is not None:
            self.health.check(t)
        if self.operator is not None:
            self.operator.act(t)
        if self.autoscaler is not None:
            self.autoscaler.act(t)
        if self.fanout is not None:
            self.fanout.act(t)

    def _arrivals(self, organic: ArrivalSource, bots: ArrivalSource) -> Process:
        """New listeners and bots at their sources' times, drawn one tick of time at a time and
        merged (a person first at equal times)."""
        dt = self.cfg.engine.tick_s
        k = 0
        while not (organic.exhausted(k * dt) and bots.exhausted(k * dt)):
            k += 1
            people = [(t, False) for t in organic.batch(k * dt).tolist()]
            flood = [(t, True) for t in bots.batch(k * dt).tolist()]
            for t, bot in sorted(people + flood):
                yield self.env.timeout(t - self.env.now)
                self._arrive(bot)
        self.arrivals_done = True

    def _arrive(self, bot: bool = False) -> None:
        """A new listener makes attempt 1 now, with their patience and key drawn now; a bot, with
        its key (no patience: it tries ``bot_max_attempts`` times whatever the wait)."""
        if bot:
            key = self.placement.new_key()
            person = Person(self.arrived, self.env.now, math.inf, key, 0.0, bot=True)
        else:
            self.tally.count("arrivals")
            person = self._first_attempt(self.arrived)
        self.arrived += 1
        self.people += 1
        self._note(person, "bot" if bot else "arrive")
        self.env.process(self._listener(person))

    def _first_attempt(self, pid: int) -> Person:
        """A person starting a visit now: a new patience (deadline) and hash key."""
        t = self.env.now
        deadline = t + self.client.patience.draw()
        key = self.placement.new_key()
        return Person(pid, t, deadline, key, self.client.first_prev)

    # ------------------------------------------------------------------ the operator's levers

    def cap_listeners(self, value: float | None) -> None:
        """``cap_listeners``: reject attempts while the fleet holds ``value`` connections."""
        self.live_cap = value

    def set_admission(self, policy: WaitingRoom) -> None:
        """``waiting_room``: the new policy replaces the old one and its state."""
        self.admission = policy

    # ------------------------------------------------------------------ a listener

    def _note(self, p: Person, what: str) -> None:
        if self.log is not None:
            self.log.append((self.env.now, p.pid, what))

    def _listener(self, p: Person) -> Process:
        """A person's visits: the first, and one per reconnect after a crash dropped them."""
        while True:
            dropped = yield from self._visit(p)
            if dropped is None or dropped.back_s is None:
                break
            yield self.env.timeout(dropped.back_s - self.env.now)
            self.retries_pending -= 1
            self.tally.count("reconnects")
            p = self._first_attempt(p.pid)
            self._note(p, "reconnect")
        self.people -= 1

    def _visit(self, p: Person) -> Generator[Event, Any, Dropped | None]:
        """Attempts until the person joins and leaves (``None``) or is dropped, or gives up."""
        env = self.env
        while True:
            if not self._sent(p):  # step 0: the retry budget
                return None
            verdict = self._gatekeepers(p)  # steps 1 to 4: throttle, gates, listener cap, admission
            if isinstance(verdict, Hold):
                yield from self._held(p, verdict.release_s)
                verdict = ADMIT
            if isinstance(verdict, Admit):
                self.tally.count("attack_admitted" if p.bot else "admitted")
                verdict = yield from self._control_plane(p)  # step 5
            placed: Placed | None = None
            if isinstance(verdict, Admit):  # step 6
                placement = self._place(p)
                if isinstance(placement, Reject):
                    verdict = placement
                elif isinstance(placement.offer, Served) and p.bot:
                    yield from self._serve_bot(p, placement)
                    return None
                elif isinstance(placement.offer, Served):
                    return (yield from self._join_and_stay(p, placement))
                else:
                    placed = placement
                    verdict = Reject("timeout", placement.offer.give_up_s)
            assert isinstance(verdict, Reject)
            retry_at = self._after_failure(p, verdict)  # step 7, decided (and counted) now
            if verdict.fail_s > env.now:  # a timeout (node, control plane, hold): wait it out
                yield env.timeout(verdict.fail_s - env.now)
            self._note(p, f"rejected {verdict.reason}")
            if placed is not None:  # the timed-out attempt gives up its seat
                placed.node.hand_back(placed.seat)
                self.in_flight -= 1
            if retry_at is None:
                self._note(p, "gone" if p.bot else "abandon")
                return None
            yield env.timeout(retry_at - env.now)
            self.retries_pending -= 1
            p.k += 1

    def _sent(self, p: Person) -> bool:
        """The retry budget lets the attempt go (first attempts and a bot's always go); count it."""
        t = self.env.now
        if p.bot:
            self.tally.count("attack_attempts")
            self._note(p, f"attempt {p.k}")
            return True
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
        """The client's throttle (not a bot's), the attack's gates (a flooded ingress, the
        mitigation's filter, the presence gate), the operator's listener cap, then admission, at
        ``now``."""
        t = self.env.now
        throttle = self.client.throttle
        if not p.bot and throttle is not None and throttle.rejects(t):
            return Reject("throttled", t)
        reason = None if self.attack is None else self.attack.gate(p.bot)
        if reason is not None:
            return Reject(reason, t)
        if self.presence is not None and self.presence.gate:
            return Reject("presence", t)
        if self.live_cap is not None and self.fleet.connections() >= self.live_cap:
            return Reject("cap", t)
        return self.admission.admit(t, self.live, self.in_flight, p.deadline_s - t)

    def _held(self, p: Person, release_s: float) -> Process:
        """Hold music until the waiting room releases the person."""
        self.retries_pending += 1  # the batched engine keeps a release among its pending retries
        self._note(p, "held")
        yield self.env.timeout(release_s - self.env.now)
        self.retries_pending -= 1
        self._note(p, "released")

    def _control_plane(self, p: Person) -> Generator[Event, Any, Admit | Reject]:
        """The control plane serves the admitted attempt (the person waits) or rejects it."""
        if self.control is None:
            return ADMIT
        t = self.env.now
        offer = self.control.offer(t, p.deadline_s)
        if isinstance(offer, Served):
            self.retries_pending += 1  # the batched engine keeps its exit among pending retries
            self._note(p, "auth")
            yield self.env.timeout(offer.end_s - t)
            self.retries_pending -= 1
            self._note(p, "authed")
            return ADMIT
        return Reject("auth", offer.give_up_s if isinstance(offer, TimedOut) else t)

    def _place(self, p: Person) -> Placed | Reject:
        """The attempt goes to the node up placement picks; what the node says."""
        t = self.env.now
        fleet = self.fleet
        if not fleet.up:
            return Reject("down", t)
        i = self.placement.choose(fleet.loads(), fleet.up, p.key)
        node = fleet.nodes[i]
        patience = min(self.cfg.platform.join_timeout_s, p.deadline_s - t)
        service = self.service.exponential(self.cfg.platform.join_service_mean_s)
        offer = node.offer(t, patience, service)
        self._note(p, f"node {i}")
        if isinstance(offer, Refused):
            return Reject(offer.reason, t)
        # a bot's seat is no listener's: a crash forgets it, as it does a timing-out attempt's
        joins = isinstance(offer, Served) and not p.bot
        seat = Seat(p.pid, served=joins, process=self.env.active_process)
        node.seat(seat)
        self.in_flight += 1
        if isinstance(offer, TimedOut):
            self.admission.observe(t, offer.give_up_s - t)
        elif p.bot:
            self.admission.observe(t, offer.start_s - t)
            self.tally.count("attack_served")
        else:
            self.admission.observe(t, offer.start_s - t)
            if self.client.throttle is not None:  # a held attempt: accepted at its release
                self.client.throttle.accepted(t)
            self.tally.joining(offer.end_s - p.first_s)
        return Placed(node, seat, offer)

    def _join_and_stay(self, p: Person, placed: Placed) -> Generator[Event, Any, Dropped | None]:
        """Wait for the worker, be served, join, stay for the session, leave; or be dropped."""
        env = self.env
        offer = placed.offer
        assert isinstance(offer, Served)
        session = self.session.exponential(self.cfg.scenario.session_mean_s)
        try:
            if offer.start_s > env.now:  # waiting for a worker
                yield env.timeout(offer.start_s - env.now)
            self._note(p, "served")
            yield env.timeout(offer.end_s - env.now)
            self._joined(placed.seat)
            yield env.timeout(session)
        except simpy.Interrupt as crash:  # the node crashed: ``crash_node`` did the counting
            assert isinstance(crash.cause, Dropped)
            return crash.cause
        self._left(placed.seat)
        placed.node.hand_back(placed.seat)
        return None

    def _serve_bot(self, p: Person, placed: Placed) -> Generator[Event, Any, None]:
        """A bot waits for the worker and is served, then hands its seat back: it never joins."""
        env = self.env
        offer = placed.offer
        assert isinstance(offer, Served)
        if offer.start_s > env.now:
            yield env.timeout(offer.start_s - env.now)
        self._note(p, "served")
        yield env.timeout(offer.end_s - env.now)
        self.in_flight -= 1
        placed.node.hand_back(placed.seat)  # nothing if a crash forgot it
        self._note(p, "done")

    def _joined(self, seat: Seat) -> None:
        self.in_flight -= 1
        self.live += 1
        seat.joined = True
        self.tally.count("joined")
        self.tally.connected(self.env.now, self.live)
        self._note_pid(seat.pid, "joined")

    def _left(self, seat: Seat) -> None:
        self.live -= 1
        self.tally.count("left")
        self.tally.disconnected(self.env.now)
        self._note_pid(seat.pid, "left")

    def _note_pid(self, pid: int, what: str) -> None:
        if self.log is not None:
            self.log.append((self.env.now, pid, what))

    def _after_failure(self, p: Person, failure: Reject) -> float | None:
        """Count the failure now; the time of attempt ``k + 1``, or ``None`` (they abandon).

        A bot's attempt ``k`` is followed by attempt ``k + 1`` at ``fail + bot_retry_s`` while
        ``k < bot_max_attempts``, else the bot is gone."""
        if p.bot:
            filtered = failure.reason == "filtered"
            self.tally.count("attack_filtered" if filtered else "attack_rejected")
            if p.k >= self.cfg.attack.bot_max_attempts:
                return None
            self.retries_pending += 1
            return failure.fail_s + self.cfg.attack.bot_retry_s
        self.tally.count(f"rejected_{failure.reason}")
        wait = self.client.wait_after(p.k, p.prev_wait_s, failure.hint_s)
        if wait is None or failure.fail_s + wait > p.deadline_s:
            self.tally.count("abandoned")
            return None
        self.retries_pending += 1
        p.prev_wait_s = wait
        return failure.fail_s + wait

    # ------------------------------------------------------------------ a crash

    def crash_node(
        self, index: int, t: float, busy_until_s: float, share: float, not_before_s: float
    ) -> int:
        """Crash node ``index`` at the tick end ``t`` (``docs/model.md``, *What a crash does*).

        Every listener it holds is dropped at ``t``; every join in flight on it (waiting for a
        worker or in service) counts as joined at ``t`` and is dropped at ``t``. Each dropped
        listener reconnects with probability ``share`` at ``max(not_before_s, t) + reconnect_min_s
        + Exp(reconnect_mean_s)``; their processes are interrupted. An attempt that was going to
        time out there keeps its retry. The node's queue empties, its workers busy until
        ``busy_until_s``. Returns the listeners dropped (counted in the next tick's ``dropped``).
        """
        dropped = 0
        for seat in self.fleet.nodes[index].crash(busy_until_s):
            if not seat.served:
                continue  # timing out: its hand-back at the give-up will find no seat
            if not seat.joined:
                self._joined(seat)
            self._drop(seat, t, share, not_before_s)
            dropped += 1
        return dropped

    def drop_listener(self, node: Node, seat: Seat, t: float, share: float) -> None:
        """Drop the joined listener of ``seat`` from ``node`` at the tick end ``t`` (a stalled
        player, a saturated presence channel): the node stays up; they reconnect with
        probability ``share`` after their reconnect delay."""
        node.hand_back(seat)
        self._drop(seat, t, share, t)

    def _drop(self, seat: Seat, t: float, share: float, not_before_s: float) -> None:
        """The joined listener of ``seat`` leaves at ``t``, and may come back."""
        self._left(seat)
        back = None
        if self.reconnects.comes_back(share):
            back = max(not_before_s, t) + self.reconnects.delay()
            self.retries_pending += 1
        self._note_pid(seat.pid, "dropped")
        self.tally.count("dropped")
        seat.process.interrupt(Dropped(back))


def simulate_room(
    cfg: Config,
    on_progress: Callable[[float], None] | None = None,
    log: list[LogEntry] | None = None,
    arrivals: Sequence[float] | None = None,
    bots: Sequence[float] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[dict[str, Any]]]:
    """Run the reference engine: ``(summary, timeseries, events)``; ``log`` collects the log."""
    room = Room(cfg, log, arrivals, bots)
    room.run(on_progress)
    timeseries = room.timeseries()
    return room.summary(timeseries), timeseries, room.events
