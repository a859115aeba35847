"""What a run counts: the counters of the open tick, its join latencies, the peak, an event log.

The counters are the batched engine's columns (``sim.model.metrics.COUNTERS``), in its layout, so
that ``sim.model.metrics.Metrics`` records the reference engine's ticks unchanged. Every count is
made at the moment it is decided, which always lies in the tick it belongs to (``docs/policies.md``,
*Counting*): an attempt, its rejection and the person's abandonment at the attempt's time (a
timeout is known the moment the attempt enters the join queue), a held attempt's admission and
outcome at its release, a join and a departure when they happen. What a crash at the tick end
``T`` does (joins in flight joined, listeners dropped) happens at ``T``, after the row ``T`` was
recorded: it counts in the next tick, as ``docs/model.md`` says.
"""

from __future__ import annotations

import math

import numpy as np

from sim.model.metrics import COUNTERS

N_COUNTERS = max(COUNTERS.values()) + 1

Event = tuple[float, int, str]
"""An entry of the event log: (time, person, what happened)."""


class Tally:
    """The open tick's counters and join latencies; the exact peak of concurrent listeners.

    The peak counts a join before the departures at the very same instant (the batched engine's
    rule, ``sim.kernels.tally.peak``). Distinct events almost never share an instant, but a crash
    at ``T`` joins its joins in flight and drops its listeners all at ``T``: the peak then includes
    the joins in flight of every node that crashed at ``T``.
    """

    def __init__(self) -> None:
        self.row = [0] * N_COUNTERS
        self.latencies: list[float] = []
        self.peak = 0
        self.peak_time_s = math.nan
        self._instant_s = -math.inf  # the instant of the last departure
        self._left_then = 0  # departures at that instant

    def count(self, name: str, n: int = 1) -> None:
        """``n`` more of column ``name`` (``attempts``, ``rejected_full``, ...) in the open tick."""
        self.row[COUNTERS[name]] += n

    def joining(self, latency_s: float) -> None:
        """An attempt that will join, ``latency_s`` after the person's first attempt."""
        self.count("joining")
        self.latencies.append(latency_s)

    def connected(self, t: float, live: int) -> None:
        """A join at ``t`` made ``live`` listeners: the peak, and when it was first reached."""
        count = live + (self._left_then if t == self._instant_s else 0)
        if count > self.peak:
            self.peak = count
            self.peak_time_s = t

    def disconnected(self, t: float) -> None:
        """A listener left (or was dropped) at ``t``."""
        if t != self._instant_s:
            self._instant_s = t
            self._left_then = 0
        self._left_then += 1

    def close_tick(self) -> tuple[np.ndarray, np.ndarray]:
        """The closed tick's counters and latencies; the next tick starts from zero."""
        row = np.array(self.row, dtype=np.int64)
        lat = np.array(self.latencies, dtype=np.float64)
        self.row = [0] * N_COUNTERS
        self.latencies = []
        return row, lat
