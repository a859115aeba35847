"""The engine: SimPy orchestrates the components, numba kernels do the per-request work.

One SimPy process, the ticker, wakes at every tick boundary ``k·tick_s`` and has the components
handle the interval that just ended: the surge source draws the new listeners, the join pipeline
runs every attempt through admission, placement, the join queues and the retry policy at its own
timestamp, and the metrics record the tick. Components that change state between ticks (crashes,
autoscaling, operator actions) are SimPy processes too and take effect at tick boundaries.

The run ends when no arrival can come any more and every listener has joined and left or
abandoned; ``engine.max_sim_s`` stops a run that does not end (the run is marked failed). Once only
departures remain (no arrival, retry or join pending, and no other component with a process
alive), the ticks of the tail are computed in one vectorised step from the pending departure and
release times: the same rows the ticker would have recorded, without waking it thousands of times.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from sim import clock, criteria, streams
from sim.config import Config
from sim.kernels import pipeline
from sim.kernels.stats import counts_up_to, segment_quantiles
from sim.model.attack import Attack, merge, no_attack
from sim.model.fanout import FanOut, extras_summary
from sim.model.fleet import EdgeFleet
from sim.model.health import Health, Restarts, utilisation
from sim.model.joins import JoinPipeline
from sim.model.metrics import Metrics
from sim.model.operator import Autoscaler, Operator, room_for
from sim.model.presence import Presence
from sim.model.surge import SurgeSource

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced: the summary (scalars), the per-tick time series and events."""

    summary: dict[str, Any]
    timeseries: dict[str, np.ndarray] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


class Engine:
    """One simulation of one room."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.scale = cfg.scenario.scale()
        self.surge = SurgeSource(cfg.scenario, streams.stream(cfg.seed, streams.ARRIVALS))
        self.fleet = EdgeFleet(
            cfg.platform, room_for(cfg.scenario.actions, cfg.autoscaler, cfg.platform.nodes)
        )
        self.joins = JoinPipeline(
            self.fleet,
            cfg.admission,
            cfg.client,
            cfg.scenario.session_mean_s,
            streams.states(cfg.seed),
            tick_s=cfg.engine.tick_s,
        )
        self.metrics = Metrics()
        self.env = simpy.Environment()
        self.finished = self.env.event()
        self.failure: str | None = None
        self.end_s = 0.0
        self.background: list[simpy.Process] = []  # components that act between ticks
        self.events: list[dict[str, Any]] = []  # what they did: {t_s, kind, target, detail}
        self._tick_end = self.env.event()  # succeeds with each tick's end, after the tick
        self.env.process(self._ticker())
        tick_s = cfg.engine.tick_s
        self.restarts = Restarts(cfg.platform, self.fleet, self.joins, tick_s, self.events)
        if cfg.platform.crash_after_s is not None:
            health = Health(self.env, self.tick_end, cfg.platform, self.fleet, self.restarts)
            self.background.append(health.process)
        if cfg.scenario.actions:
            operator = Operator(
                self.env, self.tick_end, cfg.scenario.actions, self.fleet, self.joins,
                self.restarts, self.events, tick_s,
            )  # fmt: skip
            self.background.append(operator.process)
        if cfg.autoscaler.policy == "target":
            scaler = Autoscaler(
                self.env, self.tick_end, cfg.autoscaler, self.fleet, self.events, self.finished,
                tick_s,
            )  # fmt: skip
            self.background.append(scaler.process)
        self.attack: Attack | None = None
        if not no_attack(cfg.attack):
            rng = streams.stream(cfg.seed, streams.ATTACK_ARRIVALS)
            self.attack = Attack(cfg.attack, cfg.platform.fanout.edge, rng, self.events)
            self.joins.fp[pipeline.F_BOT_RETRY_S] = cfg.attack.bot_retry_s
            self.joins.fp[pipeline.F_BOT_MAX_ATTEMPTS] = cfg.attack.bot_max_attempts
        self.presence: Presence | None = None
        if cfg.platform.presence.enabled:
            rng = streams.stream(cfg.seed, streams.PRESENCE)
            self.presence = Presence(cfg.platform.presence, tick_s, rng, self.events)
        self.fanout: FanOut | None = None
        if cfg.platform.fanout.enabled:
            self.fanout = FanOut(
                self.env, self.tick_end, cfg.platform.fanout, self.joins, self.attack,
                cfg.attack, streams.stream(cfg.seed, streams.STALL), tick_s,
            )  # fmt: skip
            self.background.append(self.fanout.process)
        _warm_up(cfg)

    def tick_end(self) -> simpy.Event:
        """The event of the current tick's end: components wait on it to act between ticks."""
        return self._tick_end

    def _ticker(self) -> Generator[simpy.Event, Any, None]:
        dt = self.cfg.engine.tick_s
        limit = self.cfg.engine.max_sim_s
        k = 0
        while True:
            k += 1
            t_end = k * dt
            yield self.env.timeout(t_end - self.env.now)
            self._tick(t_end)
            self.restarts.act(t_end)
            done = self._tick_end
            if done.callbacks:  # a component waits for this tick's end (else: the same event
                self._tick_end = self.env.event()  # serves the next tick, none made in vain)
                done.succeed(t_end)
            self.end_s = t_end
            over = self._over(t_end)
            if over and self.joins.idle:
                break
            if over and self._quiet(t_end):
                self._tail(k, dt)
                break
            if t_end >= limit:
                self.failure = f"engine.max_sim_s = {limit} s reached before every listener left"
                break
        self.finished.succeed()
        self._tick_end.succeed(None)  # the components' processes end

    def _over(self, t: float) -> bool:
        """No listener and no bot can arrive at or after ``t``."""
        return self.surge.exhausted(t) and (self.attack is None or self.attack.exhausted(t))

    def _tick(self, t_end: float) -> None:
        counts = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)
        arrivals = self.surge.batch(t_end)
        kinds = None
        if self.attack is not None:
            self.attack.configure(self.joins.fp, t_end - self.cfg.engine.tick_s, self.fleet.n_up)
            bots = self.attack.bots(t_end)
            if bots.size:
                arrivals, kinds = merge(arrivals, bots)
        latency = self.joins.step(t_end, arrivals, counts, kinds)
        if self.presence is not None:
            self.presence.after_tick(t_end, int(counts[pipeline.C_JOINED]), self.joins)
        waiting, held = self.fleet.snapshot(t_end)
        j = self.joins
        state = (  # in the order of metrics.STATE
            j.concurrent,
            waiting,
            held,
            self.fleet.nodes_up,
            j.pending_retries,
            j.drain_held(t_end),
        )
        self.metrics.record_row(t_end, counts, latency, state, keep=True)

    def _quiet(self, t: float) -> bool:
        """Only departures are left and no other component can act (once ``_over(t)``)."""
        return (
            self.presence is None
            and self.joins.only_departures_left
            and not any(p.is_alive for p in self.background)
            and not self.restarts.busy
        )

    def _tail(self, k: int, dt: float) -> None:
        """Record ticks ``k+1 ..`` until the last departure, in one step (see module docstring)."""
        departures = self.joins.pending_departures()
        exits, releases = self.fleet.pending()
        t_last = max((a.max() for a in (departures, exits, releases) if a.size), default=0.0)
        last = max(k, int(np.floor(t_last / dt)) + 1)
        if t_last >= self.cfg.engine.max_sim_s:
            last = max(k, int(np.ceil(self.cfg.engine.max_sim_s / dt)))
            self.failure = f"engine.max_sim_s = {self.cfg.engine.max_sim_s} s reached"
        t_end = np.arange(k + 1, last + 1, dtype=np.float64) * dt
        # an event at exactly a tick's end belongs to the next tick (events < t_end are counted)
        gone = counts_up_to(departures, t_end)
        counts = np.zeros((t_end.size, pipeline.N_COUNTERS), dtype=np.int64)
        counts[:, pipeline.C_LEFT] = np.diff(gone, prepend=0)
        concurrent = self.joins.concurrent - gone
        state = {
            "concurrent": concurrent,
            "waiting": exits.size - counts_up_to(exits, t_end, inclusive=True),
            "connections": releases.size - counts_up_to(releases, t_end, inclusive=True),
            "nodes_up": np.full(t_end.size, self.fleet.nodes_up),
            "retries_pending": np.zeros(t_end.size, dtype=np.int64),
            "held": np.zeros(t_end.size, dtype=np.int64),
        }
        self.metrics.record_quiet(t_end, counts, state)
        if self.failure is None:
            self.joins.finish_departures(np.zeros(pipeline.N_COUNTERS, dtype=np.int64))
            self.fleet.clear()
        self.end_s = float(last * dt)

    def run(self, on_progress: Callable[[float], None] | None = None) -> RunResult:
        """Simulate to the end; ``on_progress(sim_time)`` is called every few hundred ticks."""
        start = time.perf_counter()
        chunk = 32 * self.cfg.engine.tick_s
        while not self.finished.triggered:
            self.env.run(until=self.env.now + chunk)
            if on_progress is not None:
                on_progress(self.end_s)
        _ = self.joins.peak  # computed from the join records: part of the simulation's time
        timeseries = self.timeseries()
        wall = time.perf_counter() - start
        return RunResult(self.summary(wall, timeseries), timeseries, self.events)

    def timeseries(self) -> dict[str, np.ndarray]:
        """The metrics' per-tick columns, the join capacity and the criterion's derived series."""
        ts = self.metrics.timeseries()
        p = self.cfg.platform
        ts["join_capacity_per_s"] = ts["nodes_up"] * (p.join_workers / p.join_service_mean_s)
        n = ts["t_s"].size
        if self.fanout is not None:
            ts |= self.fanout.log.timeseries(n)
        if self.presence is not None:
            ts |= {k: v[:n] for k, v in self.presence.timeseries().items()}
        if self.attack is not None:
            start = ts["t_s"] - self.cfg.engine.tick_s
            ts["attack_gbps"] = np.array([self.attack.flood_gbps(t) for t in start])
        ts |= criteria.series(ts, self.cfg.engine.tick_s, self.cfg.criterion)
        return ts

    def summary(self, wall_s: float, timeseries: dict[str, np.ndarray]) -> dict[str, Any]:
        m = self.metrics
        peak, peak_t = self.joins.peak
        verdict = criteria.assess(
            timeseries,
            self.cfg.engine.tick_s,
            self.cfg.criterion,
            self.surge.start_s,
            max(self.surge.end_s, self.surge.start_s + self.cfg.engine.tick_s),
            engine_failure=self.failure,
        )
        return {
            "arrivals": m.total("arrivals"),
            "attempts": m.total("attempts"),
            "joined": m.total("joining"),
            "abandoned": m.total("abandoned"),
            "rejected": m.rejected(),
            **m.latency_quantiles(),
            "peak_concurrent": peak,
            "peak_time_s": peak_t,
            "expected_arrivals": self.surge.expected,
            "scale": self.scale,
            "nodes": self.cfg.platform.nodes,
            "sim_end_s": self.end_s,
            "ticks": len(m.t_s),
            "wall_s": wall_s,
            "seed": self.cfg.seed,
            "retries_denied": m.total("retries_denied"),
            "reconnects": m.total("reconnects"),
            "crashes": sum(1 for e in self.events if e["kind"] == "crash"),
            "surge_start_s": self.surge.start_s,
            **extras_summary(None if self.fanout is None else self.fanout.log, self.presence, m),
            **verdict,
            "engine_failed": self.failure is not None,
        }


def _warm_up(cfg: Config) -> None:
    """Compile (or load from the cache) every kernel a run calls, on a throwaway one-node room.

    numba compiles on the first call; doing it here keeps compilation out of ``wall_s``, which is
    the simulation's own time.
    """
    tiny = dataclasses.replace(cfg.platform, nodes=1, connections_per_node=1)
    states = streams.states(cfg.seed, tuple(f"warm-up {name}" for name in streams.NAMES))
    fleet = EdgeFleet(tiny)
    joins = JoinPipeline(
        fleet, cfg.admission, cfg.client, cfg.scenario.session_mean_s, states, tick_s=1.0
    )
    counts = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)
    joins.step(1.0, np.array([0.25, 0.5]), counts)
    fleet.snapshot(1.0)
    fleet.pending()  # the tail's kernels
    _ = joins.peak
    if cfg.platform.fanout.enabled or cfg.platform.presence.enabled:  # stalls, presence drops
        joins.drop_listeners(np.zeros(fleet.size, dtype=np.int64), 1.0)
    if cfg.platform.crash_after_s is not None:  # the health monitor's kernels
        utilisation(1.0, fleet.free, fleet.cn, fleet.up, np.ones(5), np.zeros(fleet.size))
        joins.crash([0], 1.0, 2.0)
    SurgeSource(cfg.scenario, streams.stream(cfg.seed, "warm-up arrivals")).batch(1.0)
    segment_quantiles(np.zeros(1), np.ones(1, dtype=np.int64), np.array([0.5]))
    counts_up_to(np.zeros(1), np.ones(2))


def simulate(cfg: Config, on_progress: Callable[[float], None] | None = None) -> RunResult:
    """Build the engine ``cfg.engine.kind`` names for ``cfg`` and run it; the results are on
    the scenario clock (``sim.clock``)."""
    inner = clock.engine_config(cfg)
    if cfg.engine.kind == "reference":
        from sim.reference import simulate as simulate_reference

        result = simulate_reference(inner, on_progress)
    else:
        result = Engine(inner).run(on_progress)
    clock.to_scenario_clock(cfg, result.summary, result.timeseries, result.events)
    return result
