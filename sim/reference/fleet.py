"""The edge nodes: connections held (seats), a connection cap, a FIFO join queue, up or not.

A node holds at most ``cap`` connections (``connections_per_node``, less while it warms up after a
restart). An attempt that finds it at its cap is rejected (``full``); otherwise it takes a
connection (a ``Seat``) and joins the node's FIFO queue (``sim.reference.queue``): ``queue``
(the seat handed back at once), ``timeout`` (the seat held until the person gives up), or served
and joined (the seat held until the listener leaves).

A node is *up* when placement may pick it: not crashed, restarting, drained or not provisioned
yet (``docs/model.md``, *Placement*). The ``Fleet`` keeps the nodes up in index order and has room
for every node it may come to hold (``room``); a node added beyond it is an error.

A crash (``Node.crash``) forgets every seat at once and returns them: the room drops the listeners
of the served ones; an attempt that was going to time out keeps its retry, and its later hand-back
finds no seat (``docs/model.md``, *What a crash at the tick end T does*).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from sim.config import PlatformConfig
from sim.reference.queue import FifoQueue, Offer, Refused


@dataclass(eq=False)
class Seat:
    """A connection an attempt holds on a node, from its placement until it leaves or gives up.

    ``served``: the attempt will join (or has joined); otherwise it waits to time out.
    ``process`` is the listener's SimPy process, interrupted when the node crashes under a served
    seat.
    """

    pid: int
    served: bool
    process: Any = None
    joined: bool = False


class Node:
    """One edge node."""

    def __init__(self, index: int, cfg: PlatformConfig) -> None:
        self.index = index
        self.cap = cfg.connections_per_node
        self.queue = FifoQueue(cfg.join_workers, cfg.join_queue_cap, cfg.timeout_wastes_work)
        self.seats: dict[Seat, None] = {}  # in the order they were taken

    @property
    def connections(self) -> int:
        return len(self.seats)

    def offer(self, t: float, patience_s: float, service_s: float) -> Offer:
        """An attempt placed here at ``t``; the caller seats it unless it was refused."""
        if self.connections >= self.cap:
            return Refused("full")
        return self.queue.offer(t, patience_s, service_s)

    def seat(self, seat: Seat) -> None:
        self.seats[seat] = None

    def hand_back(self, seat: Seat) -> None:
        """The seat's listener left or its attempt gave up (nothing if a crash forgot it)."""
        self.seats.pop(seat, None)

    def crash(self, busy_until_s: float) -> list[Seat]:
        """Forget every seat and the queue, workers busy until ``busy_until_s``; the seats."""
        seats = list(self.seats)
        self.seats.clear()
        self.queue.reset(busy_until_s)
        return seats


class Fleet:
    """The platform's nodes; ``up``: the indices of those up, in index order."""

    def __init__(self, cfg: PlatformConfig, room: int) -> None:
        self.cfg = cfg
        self.room = max(cfg.nodes, room)
        self.nodes = [Node(i, cfg) for i in range(cfg.nodes)]
        self.up = list(range(cfg.nodes))

    def add(self) -> int:
        """A new node, up and empty with its full cap; its index."""
        if len(self.nodes) >= self.room:
            raise ValueError(f"the fleet has room for {self.room} nodes only")
        node = Node(len(self.nodes), self.cfg)
        self.nodes.append(node)
        self.set_up(node.index, True)
        return node.index

    def set_up(self, index: int, up: bool) -> None:
        """Put a node into placement or take it out (from the next attempt on)."""
        i = bisect.bisect_left(self.up, index)
        present = i < len(self.up) and self.up[i] == index
        if up and not present:
            self.up.insert(i, index)
        elif not up and present:
            del self.up[i]

    def loads(self) -> list[int]:
        """The connections each node holds now (up or not)."""
        return [node.connections for node in self.nodes]

    def waiting(self, t: float) -> int:
        return sum(node.queue.waiting(t) for node in self.nodes)

    def connections(self) -> int:
        return sum(node.connections for node in self.nodes)
