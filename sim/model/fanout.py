"""The audio fan-out component: every segment interval, the tiers' load and the listeners' stalls.

At the first tick end at or after each segment boundary ``j · segment_s`` the component takes the
listeners attached to every edge node up and computes, for that segment, the demand on every tier
of the tree (speakers -> origin SFU -> segmenter -> origin -> relay -> edge), what each serves and
the chance that a listener of each edge node gets the segment on time (``sim.kernels.fanout``,
aggregate arithmetic per tier and node: never a loop over listeners). A late segment is a stall of
``segment_s`` for that listener. Listeners who stall ``stall_reconnect_s`` in a row (the
``stall_segments`` last segments all late; ``sim.kernels.fanout.stall_step`` keeps, per node, how
many listeners are at each count) reconnect: they are dropped from their node (``JoinPipeline.
drop_listeners``) and a share ``stall_reconnect_share`` come back through the join path, with the
client's reconnect delay, like the listeners of a crashed node; the others leave.

A node's listeners are its share of the room: ``concurrent · cn[node] / Σ cn`` (a node's
connection count also holds the joins still in its queue, which fetch no audio). With a
volumetric flood (``sim.model.attack``) each node up receives ``flood_gbps / nodes up``.

Per-segment results are kept at the tick they were computed in: counts (segments due, on time,
stall seconds, listeners dropped) in that tick's row, rates and utilisations held until the next
segment (``timeseries``); the run's ``audio_*`` summary follows from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim.config import AttackConfig, FanoutConfig
from sim.kernels import fanout
from sim.model.attack import Attack
from sim.model.joins import JoinPipeline
from sim.model.metrics import Metrics
from sim.model.operator import _TickProcess
from sim.model.presence import PresenceLog

TIERS = ("sfu", "origin", "relay", "edge")


class FanOut(_TickProcess):
    """The segments of the room and what the tiers deliver of them."""

    def __init__(
        self,
        env: simpy.Environment,
        tick_end: Callable[[], simpy.Event],
        cfg: FanoutConfig,
        joins: JoinPipeline,
        attack: Attack | None,
        attack_cfg: AttackConfig,
        rng: np.random.Generator,
        tick_s: float,
    ) -> None:
        self.cfg = cfg
        self.joins = joins
        self.attack = attack
        self.target = attack_cfg.target
        self.rng = rng
        self.segments = fanout.stall_segments(cfg)
        self.h = np.zeros((joins.fleet.size, self.segments))
        self.next_j = 1  # the next segment boundary, j · segment_s
        self.log = SegmentLog(cfg.segment_s, tick_s)
        super().__init__(env, tick_end, tick_s)

    def next_at(self) -> float:
        return self.next_j * self.cfg.segment_s

    def act(self, t: float) -> bool:
        while self.next_j * self.cfg.segment_s <= t + 1e-9:
            self.next_j += 1
            self.segment(t)
        return True  # the room lives as long as the run (the ticker ends the process)

    def segment(self, t: float) -> None:
        """One segment interval, at the tick end ``t``."""
        cfg, j = self.cfg, self.joins
        f = j.fleet
        up = f.upidx[: f.n_up]
        listeners = np.zeros(f.size)
        held = float(f.cn[up].sum())
        if held > 0:
            listeners[up] = f.cn[up] * (j.concurrent / held)
        flood = np.zeros(f.size)
        if self.attack is not None and up.size:
            flood[up] = self.attack.flood_gbps(t) / up.size
        iv = fanout.interval(cfg, listeners[up], flood[up], self.target)
        on_time = np.ones(f.size)
        on_time[up] = iv.on_time
        u = self.rng.random(f.size)
        leaving = fanout.stall_step(self.h, listeners, on_time, u)
        dropped = 0
        if leaving.any():
            dropped = j.drop_listeners(leaving, t, cfg.stall_reconnect_share)
        stall_s = float(np.dot(listeners[up], 1.0 - iv.on_time)) * cfg.segment_s
        degraded = float(np.dot(listeners[up], iv.degraded))
        self.log.add(t, iv, iv.delivered, stall_s, dropped, degraded)


class SegmentLog:
    """What every segment interval gave, and the run's time series and summary from it.

    Shared by both engines: the batched one adds expected counts (``sim.model.fanout.FanOut``),
    the reference engine the realised ones of its listeners (``sim.reference.audio``).
    """

    def __init__(self, segment_s: float, tick_s: float) -> None:
        self.segment_s = segment_s
        self.tick_s = tick_s
        self.rows: list[tuple[float, ...]] = []  # one per segment, see ``_COLUMNS``
        self.ticks: list[int] = []  # the tick each was computed in

    def add(
        self,
        t: float,
        iv: fanout.Interval,
        on_time: float,
        stall_s: float,
        dropped: int,
        degraded: float,
    ) -> None:
        """The segment computed at the tick end ``t``: ``iv`` for the tiers, and the listeners'
        segments on time, stall seconds, listeners dropped and listeners degraded."""
        row = [iv.due, on_time, stall_s, iv.due * self.segment_s, float(dropped), degraded]
        for tier in TIERS:
            cap = iv.capacity_gbps[tier]
            row.append(iv.served_gbps[tier] / cap if cap > 0 else math.nan)
            row.append(iv.demand_gbps[tier] / cap if cap > 0 else math.inf)
        self.rows.append(tuple(row))
        self.ticks.append(round(t / self.tick_s) - 1)

    def _array(self) -> np.ndarray:
        return np.array(self.rows, dtype=np.float64).reshape(len(self.rows), len(_COLUMNS))

    def timeseries(self, n_ticks: int) -> dict[str, np.ndarray]:
        """Per-tick columns: counts in the tick of their segment, the rest held between them."""
        rows = self._array()
        at = np.array(self.ticks, dtype=np.int64)
        keep = at < n_ticks
        rows, at = rows[keep], at[keep]
        out: dict[str, np.ndarray] = {}
        for c, name in enumerate(_COLUMNS):
            if c < _N_COUNTS:
                col = np.zeros(n_ticks)
                np.add.at(col, at, rows[:, c])
            else:
                col = np.full(n_ticks, np.nan)
                col[at] = rows[:, c]
                col = _hold(col)
            out[name] = col
        out["audio_dropped"] = out["audio_dropped"].astype(np.int64)
        return out

    def summary(self) -> dict[str, Any]:
        rows = self._array()
        due, delivered, stall, listen = (float(rows[:, i].sum()) for i in range(4))
        idx = {name: i for i, name in enumerate(_COLUMNS)}

        def peak(name: str) -> float:
            col = rows[:, idx[name]]
            col = col[np.isfinite(col)]
            return float(col.max()) if col.size else 0.0

        degraded = float(rows[:, idx["audio_degraded"]].sum())
        return {
            "audio_delivered_ratio": delivered / due if due > 0 else math.nan,
            "stall_s_per_listener_min": stall / (listen / 60.0) if listen > 0 else 0.0,
            "audio_degraded_share": degraded / due if due > 0 else 0.0,
            "stall_dropped": int(rows[:, idx["audio_dropped"]].sum()),
            "egress_utilisation_peak": {t: peak(f"egress_utilisation_{t}") for t in TIERS},
            "egress_demand_peak": {t: peak(f"egress_demand_ratio_{t}") for t in TIERS},
        }


_COLUMNS = (
    "audio_due",  # segments due (one per listener and segment)
    "audio_on_time",  # of them delivered on time (expected count)
    "stall_s",  # listener-seconds of stall
    "listen_s",  # listener-seconds of audio due
    "audio_dropped",  # listeners dropped for stalling stall_reconnect_s in a row
    "audio_degraded",  # listeners on a lower rendition
    *(f"egress_{k}_{t}" for t in TIERS for k in ("utilisation", "demand_ratio")),
)
_N_COUNTS = 6


def _hold(col: np.ndarray) -> np.ndarray:
    """Carry the last value forward over NaN (NaN before the first)."""
    idx = np.where(np.isnan(col), 0, np.arange(col.size))
    np.maximum.accumulate(idx, out=idx)
    out = col[idx]
    if col.size and np.isnan(col[0]):
        first = np.flatnonzero(~np.isnan(col))
        if first.size:
            out[: first[0]] = np.nan
    return out


def extras_summary(
    log: SegmentLog | None, presence: PresenceLog | None, metrics: Metrics
) -> dict[str, Any]:
    """The fan-out, presence and attack figures of a run (NaN for a part that is off)."""
    nan = math.nan
    out: dict[str, Any] = {
        "audio_delivered_ratio": nan,
        "stall_s_per_listener_min": nan,
        "audio_degraded_share": nan,
        "stall_dropped": 0,
        "egress_utilisation_peak": dict.fromkeys(TIERS, nan),
        "egress_demand_peak": dict.fromkeys(TIERS, nan),
        "presence_lag_s": nan,
        "presence_saturated_s": nan,
        "presence_dropped": 0,
    }
    if log is not None:
        out |= log.summary()
    if presence is not None:
        out |= presence.summary()
    return out | {
        "organic_attempts": metrics.total("attempts"),
        "attack_attempts": metrics.total("attack_attempts"),
        "attack_filtered": metrics.total("attack_filtered"),
        "attack_served": metrics.total("attack_served"),
        "attack_rejected": metrics.total("attack_rejected"),
    }
