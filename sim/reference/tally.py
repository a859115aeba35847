"""What a run counts: the counters of the open tick, its join latencies, the peak, an event log.

The counters are the batched engine's columns (``sim.model.metrics.COUNTERS``), in its layout, so
that ``sim.model.metrics.Metrics`` records the reference engine's ticks unchanged. Every count is
made at the moment it is decided, which always lies in the tick it belongs to (``docs/policies.md``,
*Counting*): an attempt, its rejection and the person's abandonment at the attempt's time (a
timeout is known the moment the attempt enters the join queue), a held attempt's admission and
outcome at its release, a join and a departure when they happen.
"""

from __future__ import annotations

import math

import numpy as np

from sim.model.metrics import COUNTERS

N_COUNTERS = max(COUNTERS.values()) + 1

Event = tuple[float, int, str]
"""An entry of the event log: (time, person, what happened)."""


class Tally:
    """The open tick's counters and join latencies; the exact peak of concurrent listeners."""

    def __init__(self) -> None:
        self.row = [0] * N_COUNTERS
        self.latencies: list[float] = []
        self.peak = 0
        self.peak_time_s = math.nan

    def count(self, name: str) -> None:
        """One more of column ``name`` (``attempts``, ``rejected_bucket``, ...) in the open tick."""
        self.row[COUNTERS[name]] += 1

    def joining(self, latency_s: float) -> None:
        """An attempt that will join, ``latency_s`` after the person's first attempt."""
        self.count("joining")
        self.latencies.append(latency_s)

    def connected(self, t: float, live: int) -> None:
        """A join at ``t`` made ``live`` listeners: the peak, and when it was first reached."""
        if live > self.peak:
            self.peak = live
            self.peak_time_s = t

    def close_tick(self) -> tuple[np.ndarray, np.ndarray]:
        """The closed tick's counters and latencies; the next tick starts from zero."""
        row = np.array(self.row, dtype=np.int64)
        lat = np.array(self.latencies, dtype=np.float64)
        self.row = [0] * N_COUNTERS
        self.latencies = []
        return row, lat
