"""The engine: SimPy orchestrates the components, numba kernels do the per-request work.

One SimPy process, the ticker, wakes at every tick boundary ``k·tick_s`` and has the components
handle the interval that just ended: the surge source draws the new listeners, the join pipeline
runs every attempt through admission, placement, the join queues and the retry policy at its own
timestamp, and the metrics record the tick. Components that change state between ticks (crashes,
autoscaling, operator actions) are SimPy processes too and take effect at tick boundaries.

The run ends when no arrival can come any more and every listener has joined and left or
abandoned; ``engine.max_sim_s`` stops a run that does not end (the run is marked failed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from sim.config import Config
from sim.kernels import pipeline
from sim.model.fleet import EdgeFleet
from sim.model.joins import JoinPipeline
from sim.model.metrics import Metrics
from sim.model.surge import SurgeSource
from sim.streams import streams

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
        rngs = streams(cfg.seed)
        self.scale = cfg.scenario.scale()
        self.surge = SurgeSource(cfg.scenario, rngs["arrivals"])
        self.fleet = EdgeFleet(cfg.platform)
        self.joins = JoinPipeline(
            self.fleet, cfg.admission, cfg.client, cfg.scenario.session_mean_s, rngs
        )
        self.metrics = Metrics()
        self.env = simpy.Environment()
        self.finished = self.env.event()
        self.failure: str | None = None
        self.end_s = 0.0
        self.env.process(self._ticker())

    def _ticker(self) -> Generator[simpy.Event, Any, None]:
        dt = self.cfg.engine.tick_s
        limit = self.cfg.engine.max_sim_s
        k = 0
        while True:
            k += 1
            t_end = k * dt
            yield self.env.timeout(t_end - self.env.now)
            self._tick(t_end)
            self.end_s = t_end
            if self.surge.exhausted(t_end) and self.joins.idle:
                break
            if t_end >= limit:
                self.failure = f"engine.max_sim_s = {limit} s reached before every listener left"
                break
        self.finished.succeed()

    def _tick(self, t_end: float) -> None:
        counts = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)
        arrivals = self.surge.batch(t_end)
        latency = self.joins.step(t_end, arrivals, counts)
        waiting, held = self.fleet.snapshot(t_end)
        state = {
            "concurrent": self.joins.concurrent,
            "waiting": waiting,
            "connections": held,
            "nodes_up": self.fleet.nodes_up,
            "retries_pending": self.joins.pending_retries,
        }
        self.metrics.record(t_end, counts, latency, state)

    def run(self, on_progress: Callable[[float], None] | None = None) -> RunResult:
        """Simulate to the end; ``on_progress(sim_time)`` is called every few hundred ticks."""
        start = time.perf_counter()
        chunk = 256 * self.cfg.engine.tick_s
        while not self.finished.triggered:
            self.env.run(until=self.env.now + chunk)
            if on_progress is not None:
                on_progress(self.end_s)
        wall = time.perf_counter() - start
        return RunResult(self.summary(wall), self.metrics.timeseries())

    def summary(self, wall_s: float) -> dict[str, Any]:
        m = self.metrics
        peak, peak_t = self.joins.peak
        return {
            "arrivals": m.total("arrivals"),
            "attempts": m.total("attempts"),
            "joined": m.total("joining"),
            "abandoned": m.total("abandoned"),
            "rejected": m.rejected(),
            "join_latency_p50_s": m.latency_quantile(0.5),
            "join_latency_p99_s": m.latency_quantile(0.99),
            "peak_concurrent": peak,
            "peak_time_s": peak_t,
            "expected_arrivals": self.surge.expected,
            "scale": self.scale,
            "nodes": self.cfg.platform.nodes,
            "sim_end_s": self.end_s,
            "ticks": len(m.t_s),
            "wall_s": wall_s,
            "seed": self.cfg.seed,
            "failed": self.failure is not None,
            "failure_reason": self.failure,
        }


def simulate(cfg: Config, on_progress: Callable[[float], None] | None = None) -> RunResult:
    """Build the engine for ``cfg`` and run it."""
    return Engine(cfg).run(on_progress)
