"""The join pipeline component: admission, placement, join queues, retries and the listener count.

It owns the state that outlives a tick (the admission policy's state, the retry calendar, the
records of joins and departures, their counts per tick) and hands each tick's attempts to the numba
kernel ``sim.kernels.pipeline.step``; ``advance`` then counts the tick's joins and departures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.kernels import calendar, pipeline, tally
from sim.model.fleet import EdgeFleet
from sim.policies import PLACEMENT, AdmissionConfig, ClientConfig

_INITIAL = 1024
RETRY_BUCKET_S = 0.25  # the retry calendar's bucket width
RETRY_SLOTS = 1024  # buckets in its ring (256 s); later retries wait in a heap


class JoinPipeline:
    """Per-tick join handling for one room."""

    def __init__(
        self,
        fleet: EdgeFleet,
        admission: AdmissionConfig,
        client: ClientConfig,
        session_mean_s: float,
        rngs: dict[str, np.random.Generator],
        tick_s: float = 1.0,
    ) -> None:
        self.fleet = fleet
        self.tick_s = tick_s
        self.adm_kind, self.adm_params = admission.kernel()
        # token-bucket style state: (tokens, last time); a bucket starts full
        burst = float(self.adm_params[1]) if self.adm_params.size > 1 else 0.0
        self.adm_state = np.array([burst, 0.0], dtype=np.float64)
        self.rty_kind, self.rty_params = client.kernel()
        self.plc_kind = PLACEMENT[fleet.cfg.placement]
        self.session_mean_s = session_mean_s
        self.rngs = rngs
        # retries: (time, first attempt, failed attempts)
        self.ret: Any = calendar.new(3, RETRY_BUCKET_S, slots=RETRY_SLOTS)
        self.jr = np.zeros((_INITIAL, 2))  # joins: (join time, departure time), appended
        self.bins = np.zeros((_INITIAL, 2), dtype=np.int64)  # joins, departures per tick
        self.latency = np.zeros(_INITIAL)
        self.istate = np.zeros(pipeline.N_ISTATE, dtype=np.int64)
        self._peak: tuple[int, tuple[int, float]] = (0, (0, float("nan")))

    def step(self, t_end: float, arrivals: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Handle every attempt before ``t_end``; return this tick's join latencies (a copy).

        ``arrivals`` are the tick's new listeners: sorted, and all before ``t_end``, which is a
        multiple of ``tick_s``.
        """
        if arrivals.size and not arrivals[-1] < t_end:
            raise ValueError(f"arrivals must lie before t_end = {t_end}, got {arrivals[-1]}")
        k = round(t_end / self.tick_s)
        if abs(k * self.tick_s - t_end) > 1e-9 * max(1.0, abs(t_end)):
            raise ValueError(f"t_end = {t_end} is not a multiple of tick_s = {self.tick_s}")
        f = self.fleet
        cfg = f.cfg
        r = self.rngs
        (f.rel, self.ret, self.jr, self.bins, self.latency, n) = pipeline.step(
            t_end,
            arrivals,
            self.adm_kind,
            self.adm_params,
            self.adm_state,
            self.plc_kind,
            self.rty_kind,
            self.rty_params,
            cfg.join_service_mean_s,
            cfg.join_timeout_s,
            self.session_mean_s,
            cfg.connections_per_node,
            f.free,
            f.wroom,
            f.wn,
            f.cn,
            f.rel,
            self.ret,
            self.jr,
            self.bins,
            self.tick_s,
            self.istate,
            counts,
            self.latency,
            r["placement"],
            r["service"],
            r["retry"],
            r["session"],
        )
        tally.advance(t_end, self.tick_s, self.bins, self.istate, counts)
        return self.latency[:n].copy()

    @property
    def pending_retries(self) -> int:
        return int(self.istate[pipeline.S_RETRY_N])

    @property
    def concurrent(self) -> int:
        return int(self.istate[pipeline.S_CONCURRENT])

    @property
    def peak(self) -> tuple[int, float]:
        """The most listeners connected at once so far, and when that was first reached."""
        n = int(self.istate[pipeline.S_RECORDED])
        if self._peak[0] != n:
            most, when = tally.peak(self.jr[:n], self.bins, self.tick_s)
            self._peak = (n, (int(most), float(when)))
        return self._peak[1]

    @property
    def only_departures_left(self) -> bool:
        """No retry and no join pending: what remains is connected listeners leaving."""
        s = self.istate
        return bool(s[pipeline.S_RETRY_N] == 0 and s[pipeline.S_JOIN_N] == 0)

    def pending_departures(self) -> np.ndarray:
        """The departure times of the connected listeners (unsorted)."""
        leaves = self.jr[: self.istate[pipeline.S_RECORDED], 1]
        return leaves[leaves >= self.istate[pipeline.S_BIN] * self.tick_s]

    def finish_departures(self, counts: np.ndarray) -> None:
        """Count every pending departure as done (the tail computed by the engine)."""
        counts[pipeline.C_LEFT] += int(self.istate[pipeline.S_CONCURRENT])
        self.istate[pipeline.S_CONCURRENT] = 0
        self.istate[pipeline.S_BIN] = self.bins.shape[0]

    @property
    def idle(self) -> bool:
        """No retry pending, no join pending and nobody connected."""
        s = self.istate
        return bool(
            s[pipeline.S_RETRY_N] == 0
            and s[pipeline.S_JOIN_N] == 0
            and s[pipeline.S_CONCURRENT] == 0
        )
