"""Per-tick time series and the run's summary statistics.

Each tick appends one row: the counters the kernels wrote for the tick (arrivals, attempts,
admissions, rejections by reason, joins, departures, abandonments), the state at the tick's end
(concurrent listeners, waiting attempts, connections held, nodes up, people held in the waiting
room) and the join-latency quantiles of the attempts that will join; ``trying`` (people who
arrived and have neither joined nor given up) follows from the counters. Column names carry
their units (``_s``) or are counts. The bots of a join flood count apart, in the ``attack_*``
columns only.
"""

from __future__ import annotations

import numpy as np

from sim.kernels import pipeline
from sim.kernels.stats import segment_quantiles

COUNTERS = {
    "arrivals": pipeline.C_ARRIVALS,
    "attempts": pipeline.C_ATTEMPTS,
    "admitted": pipeline.C_ADMITTED,
    "joining": pipeline.C_JOINING,
    "abandoned": pipeline.C_ABANDONED,
    "joined": pipeline.C_JOINED,
    "left": pipeline.C_LEFT,
    "retries_denied": pipeline.C_DENIED,
    "reconnects": pipeline.C_RECONNECTS,
    "dropped": pipeline.C_DROPPED,
} | {f"rejected_{r}": pipeline.C_REJECT + i for i, r in enumerate(pipeline.REASONS)}
COUNTERS |= {  # the bots of a join flood, apart from the listeners above
    "attack_attempts": pipeline.C_ATTACK_ATTEMPTS,
    "attack_admitted": pipeline.C_ATTACK_ADMITTED,
    "attack_rejected": pipeline.C_ATTACK_REJECTED,
    "attack_filtered": pipeline.C_ATTACK_FILTERED,
    "attack_served": pipeline.C_ATTACK_SERVED,
}
STATE = ("concurrent", "waiting", "connections", "nodes_up", "retries_pending", "held")
QUANTILES = {"join_latency_p50_s": 0.5, "join_latency_p99_s": 0.99}
_QS = np.array(list(QUANTILES.values()))


class Metrics:
    """Collects one row per tick and every join latency."""

    def __init__(self) -> None:
        self.t_s: list[float] = []
        self.rows: list[np.ndarray] = []
        self.states: list[tuple[int, ...]] = []  # one tuple per tick, in the order of STATE
        self.latencies: list[np.ndarray] = []
        self.latency_counts: list[int] = []  # join latencies recorded in each tick
        self._totals = (0, np.zeros(pipeline.N_COUNTERS, dtype=np.int64))  # (rows summed, sums)
        self._all: np.ndarray | None = None  # every latency, once the run is over

    def record(
        self, t_end: float, counts: np.ndarray, latency: np.ndarray, state: dict[str, int]
    ) -> None:
        self.record_row(t_end, counts, latency, tuple(state[k] for k in STATE))

    def record_row(
        self,
        t_end: float,
        counts: np.ndarray,
        latency: np.ndarray,
        state: tuple[int, ...],
        keep: bool = False,
    ) -> None:
        """``record`` with the state as a tuple in the order of ``STATE`` (the engine's way);
        ``keep``: the caller hands ``counts`` over (it writes to it no more), no copy needed."""
        self.t_s.append(t_end)
        self.rows.append(counts if keep else counts.copy())
        self.states.append(state)
        n = latency.size
        self.latency_counts.append(n)
        if n:
            self.latencies.append(latency)

    def record_quiet(
        self, t_end: np.ndarray, counts: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        """Many ticks at once, with no join latencies (``counts`` has one row per tick)."""
        self.t_s.extend(t_end.tolist())
        self.rows.extend(counts)
        columns = [np.asarray(state[k]).tolist() for k in STATE]
        self.states.extend(zip(*columns, strict=True))
        self.latency_counts.extend([0] * t_end.size)

    @property
    def totals(self) -> np.ndarray:
        """The counters summed over the ticks recorded so far (summed when asked)."""
        if self._totals[0] != len(self.rows):
            rows = np.array(self.rows, dtype=np.int64).reshape(len(self.rows), pipeline.N_COUNTERS)
            self._totals = (len(self.rows), rows.sum(axis=0))
        return self._totals[1]

    def total(self, name: str) -> int:
        return int(self.totals[COUNTERS[name]])

    def rejected(self) -> dict[str, int]:
        return {r: int(self.totals[pipeline.C_REJECT + i]) for i, r in enumerate(pipeline.REASONS)}

    def all_latencies(self) -> np.ndarray:
        """Every join latency of the run, tick by tick (concatenated once)."""
        if self._all is None or self._all.size != sum(a.size for a in self.latencies):
            self._all = np.concatenate([np.empty(0), *self.latencies])
        return self._all

    def latency_quantiles(self) -> dict[str, float]:
        """The run's join-latency quantiles (NaN when nobody joined)."""
        every = self.all_latencies()
        qs = np.quantile(every, _QS) if every.size else np.full(_QS.size, np.nan)
        return {k: float(v) for k, v in zip(QUANTILES, qs, strict=True)}

    def timeseries(self) -> dict[str, np.ndarray]:
        """The per-tick columns as arrays (``t_s`` is each tick's end)."""
        rows = np.array(self.rows, dtype=np.int64).reshape(len(self.rows), pipeline.N_COUNTERS)
        out: dict[str, np.ndarray] = {"t_s": np.array(self.t_s, dtype=np.float64)}
        out |= {k: rows[:, i] for k, i in COUNTERS.items()}
        states = np.array(self.states, dtype=np.int64).reshape(len(self.states), len(STATE))
        out |= {k: np.ascontiguousarray(states[:, i]) for i, k in enumerate(STATE)}
        # people who arrived or reconnected and have neither joined nor given up, at the tick end
        came = np.cumsum(out["arrivals"] + out["reconnects"])
        out["trying"] = came - np.cumsum(out["joining"] + out["abandoned"])
        per_tick = segment_quantiles(
            self.all_latencies(), np.array(self.latency_counts, dtype=np.int64), _QS
        )
        out |= {k: per_tick[:, j] for j, k in enumerate(QUANTILES)}
        return out
