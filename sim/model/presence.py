"""The presence channel: occupancy counts and join events pushed to every listener.

Presence and chat run over a WebSocket; the server pushes what the listeners see of the room
(``../shared/events.md``: aggregate occupancy counts, not full rosters). Two ways to do it
(``platform.presence.mode``):

- ``broadcast``: every join is an event sent to every listener in the room: a tick with ``J``
  joins and ``L`` listeners costs ``J · L`` messages, so the cost grows with audience x join
  rate, which is largest exactly during a launch surge;
- ``aggregate``: each listener gets one occupancy count every ``interval_s``: ``L · tick_s /
  interval_s`` messages per tick, whatever the join rate.

The channel sends ``capacity_msgs_per_s``; the rest waits in a backlog (a fluid queue, FIFO):
``backlog <- max(0, backlog + demand - capacity · tick_s)`` at each tick end, and the lag of a
message entering it is ``presence_lag_s = backlog / capacity_msgs_per_s``. When the lag exceeds
``max_lag_s`` the channel is saturated, and for the next tick (``on_saturation``):

- ``delay_joins``: the room takes no new join until it catches up: every attempt is rejected
  ``presence`` (clients retry as their policy says): joins wait for the channel;
- ``drop_connections``: WebSocket connections are dropped: each listener with probability
  ``1 - (1 - drop_share_per_s) ** tick_s`` (binomial over the room, spread over the nodes by a
  multinomial on their connections; stream ``presence``); they reconnect like listeners of a
  crashed node;
- ``none``: nothing but the lag.

The channel acts at tick ends, like every component between ticks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.config import PresenceConfig
from sim.kernels import pipeline
from sim.model.joins import JoinPipeline


def step(
    cfg: PresenceConfig, backlog: float, joined: int, listeners: int, tick_s: float
) -> tuple[float, float, float]:
    """``(backlog, lag_s, messages)`` after a tick with ``joined`` joins and ``listeners``."""
    if cfg.mode == "broadcast":
        demand = float(joined) * float(listeners)
    else:
        demand = float(listeners) * tick_s / cfg.interval_s
    backlog = max(0.0, backlog + demand - cfg.capacity_msgs_per_s * tick_s)
    return backlog, backlog / cfg.capacity_msgs_per_s, demand


def drop_probability(cfg: PresenceConfig, tick_s: float) -> float:
    """A listener's chance to be dropped in one saturated tick (``drop_connections``)."""
    return float(1.0 - (1.0 - cfg.drop_share_per_s) ** tick_s)


class PresenceLog:
    """The channel's backlog and its lag, messages and drops per tick (both engines)."""

    def __init__(
        self,
        cfg: PresenceConfig,
        tick_s: float,
        rng: np.random.Generator,
        events: list[dict[str, Any]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.tick_s = tick_s
        self.rng = rng
        self.events = [] if events is None else events
        self.backlog = 0.0
        self.saturated = False
        self.lag_s: list[float] = []
        self.msgs: list[float] = []
        self.dropped: list[int] = []

    def note(self, t: float, lag: float) -> bool:
        """Record the tick's lag; an event when the channel saturates or catches up. Returns
        whether it is saturated."""
        self.lag_s.append(lag)
        saturated = lag > self.cfg.max_lag_s
        if saturated != self.saturated:
            self.saturated = saturated
            detail = (
                f"saturated: lag {lag:.1f} s > max_lag_s = {self.cfg.max_lag_s:g} s "
                f"({self.cfg.on_saturation})"
                if saturated
                else "caught up"
            )
            event = {"t_s": t, "kind": "presence", "target": "channel", "detail": detail}
            self.events.append(event)
        return saturated

    def timeseries(self) -> dict[str, np.ndarray]:
        return {
            "presence_lag_s": np.array(self.lag_s, dtype=np.float64),
            "presence_msgs": np.array(self.msgs, dtype=np.float64),
            "presence_dropped": np.array(self.dropped, dtype=np.int64),
        }

    def summary(self) -> dict[str, Any]:
        lag = np.array(self.lag_s)
        return {
            "presence_lag_s": float(lag.max()) if lag.size else 0.0,
            "presence_saturated_s": float((lag > self.cfg.max_lag_s).sum() * self.tick_s),
            "presence_dropped": int(sum(self.dropped)),
        }


class Presence(PresenceLog):
    """The batched engine's channel: it sets the join kernel's gate and drops connections."""

    def after_tick(self, t_end: float, joined: int, joins: JoinPipeline) -> None:
        """Account the tick that ends at ``t_end`` and set the join path for the next one."""
        cfg = self.cfg
        listeners = joins.concurrent
        self.backlog, lag, demand = step(cfg, self.backlog, joined, listeners, self.tick_s)
        self.msgs.append(demand)
        saturated = self.note(t_end, lag)
        gate = saturated and cfg.on_saturation == "delay_joins"
        joins.fp[pipeline.F_GATE] = 1.0 if gate else 0.0
        dropped = 0
        if saturated and cfg.on_saturation == "drop_connections" and listeners > 0:
            k = int(self.rng.binomial(listeners, drop_probability(cfg, self.tick_s)))
            cn = joins.fleet.cn.astype(np.float64)
            if k > 0 and cn.sum() > 0:
                quota = self.rng.multinomial(k, cn / cn.sum()).astype(np.int64)
                dropped = joins.drop_listeners(quota, t_end, 1.0)
        self.dropped.append(dropped)
