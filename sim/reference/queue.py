"""A FIFO queue with workers, a bounded waiting room and reneging: a node's join queue and the
control plane (``docs/model.md``, *Edge nodes and their join queues*, *Control plane / auth*).

In a FIFO queue everyone ahead of a newcomer already has their worker, so the newcomer starts when
the first of the workers is free (``start = max(t, earliest worker-free time)``); the start is known
the moment the attempt arrives, which is what lets the adaptive admission policies observe the
queueing delay ``start − t`` at ``t``. An attempt offered at ``t`` with patience ``w``:

- is refused (``queue``) when it would have to wait while ``places`` attempts are waiting;
- times out when it would wait longer than ``w``: it fails at ``t + w``. Normally it leaves the
  waiting room then and never takes a worker (it delays no one behind it); with
  ``wastes_work`` (``platform.timeout_wastes_work``, *Wasted work on timeouts*) nobody cancels it:
  it keeps its place until its turn and holds a worker for a full service time, for nobody;
- otherwise it is served from ``start`` to ``start + service``.

The waiting attempts are kept as the times they leave the waiting room (their start, or when they
give up); an attempt waits at ``t`` when its exit lies after ``t``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(frozen=True)
class Served:
    """A worker serves the attempt from ``start_s`` to ``end_s``."""

    start_s: float
    end_s: float


@dataclass(frozen=True)
class TimedOut:
    """The attempt waits until ``give_up_s`` and fails there."""

    give_up_s: float


@dataclass(frozen=True)
class Refused:
    """Turned away at once: ``full`` (a node at its cap) or ``queue`` (no waiting place)."""

    reason: str


Offer = Served | TimedOut | Refused


class FifoQueue:
    """``workers`` workers, ``places`` waiting places, reneging; optionally wasted work."""

    def __init__(self, workers: int, places: int, wastes_work: bool = False) -> None:
        self.workers = workers
        self.places = places
        self.wastes_work = wastes_work
        self.worker_free_s = [0.0] * workers  # a heap: when each worker is next free
        self.exits: list[float] = []  # a heap: when each waiting attempt leaves the waiting room

    def waiting(self, t: float) -> int:
        """Attempts waiting at ``t`` (for a worker, or until they give up)."""
        while self.exits and self.exits[0] <= t:
            heapq.heappop(self.exits)
        return len(self.exits)

    def busy(self, t: float) -> int:
        """Workers busy at ``t`` (free only after ``t``), wasted work included."""
        return sum(1 for free in self.worker_free_s if free > t)

    def offer(self, t: float, patience_s: float, service_s: float) -> Offer:
        """An attempt at ``t`` that waits at most ``patience_s`` and needs ``service_s``."""
        waiting = self.waiting(t)
        start = max(t, self.worker_free_s[0])
        if start > t:
            if waiting >= self.places:
                return Refused("queue")
            if start - t > patience_s:
                if self.wastes_work:  # still served when its turn comes, for nobody
                    heapq.heappush(self.exits, start)
                    heapq.heapreplace(self.worker_free_s, start + service_s)
                else:
                    heapq.heappush(self.exits, t + patience_s)
                return TimedOut(t + patience_s)
            heapq.heappush(self.exits, start)
        heapq.heapreplace(self.worker_free_s, start + service_s)
        return Served(start, start + service_s)

    def reset(self, busy_until_s: float) -> None:
        """Empty the waiting room; every worker busy until ``busy_until_s`` (a crashed node)."""
        self.worker_free_s = [busy_until_s] * self.workers
        self.exits = []
