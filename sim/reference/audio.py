"""The audio fan-out and the presence channel in the reference engine: listener by listener.

The tiers are the same arithmetic as in the batched engine (``sim.kernels.fanout.interval``, per
tier and node), fed with the listeners actually connected to each node (the batched engine
apportions ``concurrent`` by connections) and, under a volumetric flood, with the flood each node
up receives at the segment's tick end (``sim.reference.attack``). What differs is the listener
side, which here is the definition of ``docs/fanout.md`` itself: at each segment every connected
listener of node ``i`` draws one uniform of stream ``stall`` (nodes in index order, listeners in
the order they took their seat) and hears the segment on time when it is below ``on_time_i``;
otherwise a late segment, a stall of ``segment_s``, one more in their streak of late segments. A
listener whose streak reaches ``stall_segments`` is dropped from the node
(``Room.drop_listener``) and reconnects with probability ``stall_reconnect_share``. The counts
are the realised ones: segments on time, stall seconds, listeners dropped.

The presence channel is ``sim.model.presence``'s fluid backlog fed with the reference's own joins
and listeners; saturated, it closes the gate of the join path (``presence`` rejections) or drops
connections (a binomial over the room, a multinomial over the nodes by connections held, the
first joined seats of each node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim import streams
from sim.config import FanoutConfig, PresenceConfig
from sim.kernels.fanout import interval, stall_segments
from sim.model.fanout import SegmentLog
from sim.model.presence import PresenceLog, drop_probability, step
from sim.reference.draws import Stream
from sim.reference.fleet import Node, Seat

if TYPE_CHECKING:
    from sim.reference.room import Room


class FanOut:
    """Every segment interval at the first tick end at or after its boundary."""

    def __init__(self, cfg: FanoutConfig, room: Room, seed: int, tick_s: float) -> None:
        self.cfg = cfg
        self.room = room
        self.rng = Stream.named(seed, streams.STALL)
        self.segments = stall_segments(cfg)
        self.next_j = 1
        self.streak: dict[Seat, int] = {}
        self.log = SegmentLog(cfg.segment_s, tick_s)

    def act(self, t: float) -> None:
        while self.next_j * self.cfg.segment_s <= t + 1e-9:
            self.next_j += 1
            self.segment(t)

    def segment(self, t: float) -> None:
        cfg, fleet = self.cfg, self.room.fleet
        nodes = [fleet.nodes[i] for i in fleet.up]
        seats = [[s for s in node.seats if s.joined] for node in nodes]
        listeners = np.array([len(s) for s in seats], dtype=np.float64)
        attack = self.room.attack
        flood = 0.0 if attack is None else attack.per_node_gbps(t, len(nodes))
        iv = interval(cfg, listeners, flood, self.room.cfg.attack.target)
        on_time = 0
        late = 0
        drop: list[tuple[Node, Seat]] = []
        streak = {}
        for node, node_seats, p in zip(nodes, seats, iv.on_time.tolist(), strict=True):
            for seat in node_seats:
                if self.rng.uniform() < p:
                    on_time += 1
                    streak[seat] = 0
                    continue
                late += 1
                n = self.streak.get(seat, 0) + 1
                if n >= self.segments:
                    drop.append((node, seat))
                else:
                    streak[seat] = n
        self.streak = streak  # listeners who left or were dropped are forgotten
        for node, seat in drop:
            self.room.drop_listener(node, seat, t, cfg.stall_reconnect_share)
        degraded = float(np.dot(listeners, iv.degraded))
        self.log.add(t, iv, float(on_time), late * cfg.segment_s, len(drop), degraded)


class Presence(PresenceLog):
    """The presence channel's backlog, and what saturation does to the room."""

    def __init__(self, cfg: PresenceConfig, room: Room, seed: int, tick_s: float) -> None:
        super().__init__(cfg, tick_s, streams.stream(seed, streams.PRESENCE), room.events)
        self.room = room
        self.gate = False

    def account(self, t: float, joined: int) -> None:
        """The tick that ends at ``t``; the gate and the drops for the next one."""
        cfg, room = self.cfg, self.room
        listeners = room.live
        self.backlog, lag, demand = step(cfg, self.backlog, joined, listeners, self.tick_s)
        self.msgs.append(demand)
        saturated = self.note(t, lag)
        self.gate = saturated and cfg.on_saturation == "delay_joins"
        dropped = 0
        if saturated and cfg.on_saturation == "drop_connections" and listeners > 0:
            k = int(self.rng.binomial(listeners, drop_probability(cfg, self.tick_s)))
            nodes = room.fleet.nodes
            held = np.array([n.connections for n in nodes], dtype=np.float64)
            if k > 0 and held.sum() > 0:
                quota = self.rng.multinomial(k, held / held.sum())
                for node, q in zip(nodes, quota.tolist(), strict=True):
                    for seat in [s for s in node.seats if s.joined][:q]:
                        room.drop_listener(node, seat, t, 1.0)
                        dropped += 1
        self.dropped.append(dropped)
