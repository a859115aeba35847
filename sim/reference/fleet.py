"""The edge nodes: connections held, a FIFO join queue with workers, and a waiting room cap.

A node holds at most ``connections_per_node`` connections. An attempt that finds it full is
rejected (``full``); otherwise it takes a connection and joins the node's FIFO queue for one of
``join_workers`` workers:

- in a FIFO queue everyone ahead of a newcomer already has their worker, so the newcomer starts
  when the first of the workers is free (``start = max(t, earliest worker-free time)``); the
  start is therefore known the moment the attempt arrives, which is what lets the adaptive
  admission policies observe the queueing delay ``start − t`` at ``t``;
- ``queue``: it would have to wait while ``join_queue_cap`` attempts are waiting (it hands its
  connection back at once);
- ``timeout``: it would wait longer than its patience here; it waits that long and gives up,
  never taking a worker (so it delays no one behind it);
- otherwise it is served from ``start`` to ``start + service`` and joins.

The waiting attempts are kept as the times they leave the waiting room (their start, or when they
give up); an attempt waits at ``t`` when its exit lies after ``t``. The listener process hands its
connection back (``hand_back``) when it leaves or gives up.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from sim.config import PlatformConfig


@dataclass(frozen=True)
class Served:
    """A worker serves the attempt from ``start_s`` to ``end_s``: it joins at ``end_s``."""

    start_s: float
    end_s: float


@dataclass(frozen=True)
class TimedOut:
    """The attempt waits until ``give_up_s`` and leaves without a worker (``timeout``)."""

    give_up_s: float


@dataclass(frozen=True)
class Refused:
    """``full`` or ``queue``: the node turns the attempt away at once."""

    reason: str


Offer = Served | TimedOut | Refused


class Node:
    """One edge node."""

    def __init__(self, cfg: PlatformConfig) -> None:
        self.max_connections = cfg.connections_per_node
        self.queue_cap = cfg.join_queue_cap
        self.connections = 0
        self.worker_free_s = [0.0] * cfg.join_workers  # a heap: when each worker is next free
        self.exits: list[float] = []  # a heap: when each waiting attempt leaves the waiting room

    def waiting(self, t: float) -> int:
        """Attempts waiting at ``t`` (for a worker, or until they give up)."""
        while self.exits and self.exits[0] <= t:
            heapq.heappop(self.exits)
        return len(self.exits)

    def offer(self, t: float, patience_s: float, service_s: float) -> Offer:
        """An attempt at ``t`` that waits at most ``patience_s`` and needs ``service_s``."""
        if self.connections >= self.max_connections:
            return Refused("full")
        waiting = self.waiting(t)
        start = max(t, self.worker_free_s[0])
        if start > t:
            if waiting >= self.queue_cap:
                return Refused("queue")
            if start - t > patience_s:
                heapq.heappush(self.exits, t + patience_s)
                self.connections += 1
                return TimedOut(t + patience_s)
            heapq.heappush(self.exits, start)
        heapq.heapreplace(self.worker_free_s, start + service_s)
        self.connections += 1
        return Served(start, start + service_s)

    def hand_back(self) -> None:
        """A connection is released (its listener left, or its attempt gave up)."""
        self.connections -= 1


class Fleet:
    """The platform's nodes."""

    def __init__(self, cfg: PlatformConfig) -> None:
        self.nodes = [Node(cfg) for _ in range(cfg.nodes)]

    def loads(self) -> list[int]:
        """The connections each node holds now."""
        return [node.connections for node in self.nodes]

    def waiting(self, t: float) -> int:
        return sum(node.waiting(t) for node in self.nodes)

    def connections(self) -> int:
        return sum(node.connections for node in self.nodes)
