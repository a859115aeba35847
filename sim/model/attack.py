"""The attack injector: a join flood of bot attempts and a volumetric flood on the edge nodes.

Attack traffic is configured in ``conf/attack/`` (``sim.config.AttackConfig``) and reported apart
from the organic listeners.

- **Join flood.** Bot first attempts arrive as a non-homogeneous Poisson process of their own
  (``join_flood`` points, attempts per second; stream ``attack arrivals``), drawn per tick like
  the surge and merged with the tick's organic arrivals (an organic arrival first at equal
  times). The join kernel (``sim.kernels.pipeline``) takes each bot through admission, the control
  plane, placement and a join queue like a person; a served bot holds its connection only until
  its service ends and never becomes a listener; a rejected one tries again ``bot_retry_s``
  later, ``bot_max_attempts`` attempts in all. Their counts are ``attack_*`` columns, never the
  organic ones.
- **Volumetric flood.** ``volumetric`` Gb/s (linear between points) spread evenly over the edge
  nodes up. Aimed at ``ingress``, it overfills each node's ``platform.fanout.edge.ingress_gbps``:
  a share ``1 - min(1, ingress_gbps / flood per node)`` of every request reaching the node is
  lost, join attempts (rejected ``flooded``) and, with the fan-out on, segment and playlist
  requests. Aimed at ``egress`` (a reflection flood), it takes that much of each node's egress:
  what is left serves the audio (``sim.kernels.fanout``).
- **Mitigation** starts ``detect_delay_s`` after the attack's first traffic (null: never): a
  share ``efficacy`` of the bot attempts is filtered (``attack_filtered``), and of the flood's
  bytes; a share ``false_positive`` of the organic attempts is filtered by mistake (rejected
  ``filtered``: they retry like after any rejection).

Everything changes at tick boundaries: the flood and the filters of the tick ``[t0, t0 + tick_s)``
are those of ``t0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.config import AttackConfig, TierConfig
from sim.kernels import pipeline
from sim.kernels.arrivals import NHPPStream, Profile

_NONE = np.empty(0, dtype=np.float64)


class Attack:
    """Bot arrivals per tick, the volumetric flood at a time, and the filters they set."""

    def __init__(
        self,
        cfg: AttackConfig,
        edge: TierConfig,
        rng: np.random.Generator,
        events: list[dict[str, Any]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.events = [] if events is None else events
        self._noted: set[str] = set()
        self.ingress_gbps = edge.ingress_gbps
        self.start_s = cfg.start_s()
        self.mitigation_s = cfg.mitigation_s()
        self._bots: NHPPStream | None = None
        self.expected_bots = 0.0
        self.end_s = 0.0
        if cfg.join_flood:
            profile = Profile.from_points([(p.t_s, p.rate_per_s) for p in cfg.join_flood])
            self._bots = NHPPStream(profile, rng)
            self.expected_bots = profile.total()
            self.end_s = profile.end_s
        self._vt = np.array([p.t_s for p in cfg.volumetric], dtype=np.float64)
        self._vg = np.array([p.gbps for p in cfg.volumetric], dtype=np.float64)
        if self._vt.size:
            self.end_s = max(self.end_s, float(self._vt[-1]))

    def bots(self, t_end: float) -> np.ndarray:
        """The bot first attempts in ``[previous t_end, t_end)``, sorted."""
        s = self._bots
        if s is None:
            return _NONE
        if s.exhausted or s.pending_s >= t_end:
            s.skip_to(t_end)
            return _NONE
        return s.next_batch(t_end)

    def mitigated(self, t: float) -> bool:
        return t + 1e-9 >= self.mitigation_s

    def flood_gbps(self, t: float) -> float:
        """The volumetric flood reaching the edge at ``t`` (Gb/s, after mitigation)."""
        if self._vt.size == 0 or not self._vt[0] <= t < self._vt[-1]:
            return 0.0
        gbps = float(np.interp(t, self._vt, self._vg))
        return gbps * (1.0 - self.cfg.efficacy) if self.mitigated(t) else gbps

    def ingress_loss(self, t: float, nodes_up: int) -> float:
        """The share of requests lost at a flooded edge ingress at ``t``."""
        if self.cfg.target != "ingress" or nodes_up == 0:
            return 0.0
        per_node = self.flood_gbps(t) / nodes_up
        return 0.0 if per_node <= self.ingress_gbps else 1.0 - self.ingress_gbps / per_node

    def configure(self, fp: np.ndarray, t0: float, nodes_up: int) -> None:
        """Set the join kernel's filters for the tick starting at ``t0`` (and note the attack's
        start and the mitigation's as events, at the tick they first act in)."""
        on = self.mitigated(t0)
        self._note(t0, "start", t0 + 1e-9 >= self.start_s, f"{self.cfg.name} starts")
        detail = (
            f"mitigation on: {self.cfg.efficacy:.0%} of the attack filtered, "
            f"{self.cfg.false_positive:.0%} of real attempts by mistake"
        )
        self._note(t0, "mitigation", on, detail)
        fp[pipeline.F_FILTER_BOT] = self.cfg.efficacy if on else 0.0
        fp[pipeline.F_FILTER_ORGANIC] = self.cfg.false_positive if on else 0.0
        fp[pipeline.F_LOSS] = self.ingress_loss(t0, nodes_up)

    def _note(self, t: float, what: str, now: bool, detail: str) -> None:
        if now and what not in self._noted:
            self._noted.add(what)
            kind = "attack" if what == "start" else "mitigation"
            self.events.append({"t_s": t, "kind": kind, "target": "room", "detail": detail})

    def exhausted(self, t: float) -> bool:
        """No bot can arrive at or after ``t`` and the flood is over."""
        return t >= self.end_s


def merge(organic: np.ndarray, bots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One sorted arrival array and its kinds (0 organic, 1 bot; organic first at equal times)."""
    times = np.concatenate([organic, bots])
    kinds = np.concatenate(
        [np.zeros(organic.size, dtype=np.int8), np.ones(bots.size, dtype=np.int8)]
    )
    order = np.argsort(times, kind="stable")
    return times[order], kinds[order]


def no_attack(cfg: AttackConfig) -> bool:
    return not cfg.active or (not cfg.join_flood and all(p.gbps == 0 for p in cfg.volumetric))
