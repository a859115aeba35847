"""Attack traffic in the reference engine: a join flood's bots, a volumetric flood, mitigation.

``docs/fanout.md`` (*Attack traffic*) and ``docs/policies.md`` (*Attack traffic*) define it; this
module restates them for the room (``sim.reference.room``), from ``sim.config.AttackConfig``:

- **Bots.** The bots of a join flood make their first attempts at the times of a non-homogeneous
  Poisson process of intensity ``join_flood`` (attempts per second, linear between the points;
  stream ``attack arrivals``), drawn one tick at a time by the sampler the surge uses
  (``sim.model.surge.SurgeSource``). Each bot is a process of the room, as a person is, without
  a client policy: no patience, retry budget or throttle. It tries again ``bot_retry_s`` after a
  failure, ``bot_max_attempts`` attempts in all; served, it holds its seat until its service
  ends, and is gone.
- **The volumetric flood** at ``t`` is ``volumetric`` Gb/s, linear between its points, none
  before the first point and from the last one on; once mitigation has started, only a share
  ``1 − efficacy`` of it. Each of the ``n`` nodes up receives ``1/n`` of it. Aimed at
  ``ingress``, it makes an attempt be lost (``flooded``) with probability ``1 − min(1,
  ingress_gbps / (flood / n))``; with the fan-out on, the share of every node up goes to the tier
  arithmetic (``sim.reference.audio``), aimed at ingress or at egress.
- **Mitigation** starts at ``start_s() + detect_delay_s`` (never when ``detect_delay_s`` is
  null): a bot's attempt is filtered with probability ``efficacy``, a person's with
  ``false_positive`` (``filtered``).

Everything changes at tick boundaries: the gates of the tick ``[t0, t0 + tick_s)`` are set at
``t0`` (``open_tick``), after the components that act at ``t0`` (so with the nodes up then). Per
attempt (``gate``) the loss comes first, then the filter; each draws one uniform of stream
``attack`` only when its probability is above 0.
"""

from __future__ import annotations

import bisect

import numpy as np

from sim.config import AttackConfig, ScenarioConfig, TierConfig
from sim.model.surge import SurgeSource
from sim.reference.draws import Stream

EPS_S = 1e-9  # a tick start ``k · tick_s`` counts as the start of mitigation within this


def attacked(cfg: AttackConfig) -> bool:
    """Whether ``cfg`` has any attack traffic: bots, or a flood of more than 0 Gb/s."""
    return cfg.active and (bool(cfg.join_flood) or any(p.gbps > 0 for p in cfg.volumetric))


class Attack:
    """The flood at a time, mitigation, and the gates of the open tick (the bots' arrivals come
    from ``bot_source``)."""

    def __init__(self, cfg: AttackConfig, edge: TierConfig, rng: Stream) -> None:
        """``edge``: the edge tier (its ``ingress_gbps``); ``rng``: the ``attack`` stream."""
        self.cfg = cfg
        self.ingress_gbps = edge.ingress_gbps
        self.mitigation_s = cfg.mitigation_s()
        self.rng = rng
        self._t = [p.t_s for p in cfg.volumetric]
        self._gbps = [p.gbps for p in cfg.volumetric]
        self.flood_end_s = self._t[-1] if self._t else 0.0  # no flood from then on
        self.loss = 0.0  # the open tick's gates
        self.filter_bot = 0.0
        self.filter_organic = 0.0

    def mitigated(self, t: float) -> bool:
        return t + EPS_S >= self.mitigation_s

    def flood_gbps(self, t: float) -> float:
        """The volumetric flood at ``t`` (Gb/s over the fleet, what mitigation lets through)."""
        ts = self._t
        if not ts or not ts[0] <= t < ts[-1]:
            return 0.0
        i = bisect.bisect_right(ts, t) - 1  # ts[i] <= t < ts[i + 1]
        g0, g1 = self._gbps[i], self._gbps[i + 1]
        gbps = g0 + (g1 - g0) * (t - ts[i]) / (ts[i + 1] - ts[i])
        return gbps * (1.0 - self.cfg.efficacy) if self.mitigated(t) else gbps

    def per_node_gbps(self, t: float, nodes_up: int) -> float:
        """The flood each node up receives at ``t``."""
        return self.flood_gbps(t) / nodes_up if nodes_up else 0.0

    def open_tick(self, t0: float, nodes_up: int) -> None:
        """Set the gates of the tick that starts at ``t0`` with ``nodes_up`` nodes up."""
        per_node = self.per_node_gbps(t0, nodes_up)
        flooded = self.cfg.target == "ingress" and per_node > self.ingress_gbps
        self.loss = 1.0 - self.ingress_gbps / per_node if flooded else 0.0
        on = self.mitigated(t0)
        self.filter_bot = self.cfg.efficacy if on else 0.0
        self.filter_organic = self.cfg.false_positive if on else 0.0

    def gate(self, bot: bool) -> str | None:
        """What the open tick's gates do to an attempt: ``flooded``, ``filtered`` or ``None``."""
        if self.loss > 0.0 and self.rng.uniform() < self.loss:
            return "flooded"
        share = self.filter_bot if bot else self.filter_organic
        if share > 0.0 and self.rng.uniform() < share:
            return "filtered"
        return None


def bot_source(cfg: AttackConfig, rng: np.random.Generator) -> SurgeSource | None:
    """The bots' first attempts (``None``: no join flood): the surge's sampler on the
    ``join_flood`` points as written (no ``expected_arrivals`` scaling); ``rng``: the stream
    ``attack arrivals``."""
    if not cfg.join_flood:
        return None
    flood = ScenarioConfig(name=f"{cfg.name} bots", profile=list(cfg.join_flood))
    return SurgeSource(flood, rng)
