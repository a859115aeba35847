"""Plain-Python twin of the join queue (``sim.kernels.queue.offer``) and of its M/M/c/K+M loop.

The twin follows the definition, not the kernel's data layout: the ``c`` worker-free times and the
waiting-room exit times are ``heapq`` lists, and the simulation loop draws its random numbers with
numpy's ``Generator`` methods one at a time. Every floating-point operation on a customer is the
same as in the kernel (``max``, ``t + patience``, ``start + service``), so kernel and twin must
agree exactly, not merely to a tolerance.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

SERVED = 0
QUEUE_FULL = 1
TIMEOUT = 2


@dataclass
class TwinQueue:
    """A FIFO queue with ``c`` workers, ``wcap`` waiting places (None: unlimited) and reneging."""

    c: int
    wcap: int | None = None
    free: list[float] = field(default_factory=list)
    wroom: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.free:
            self.free = [-math.inf] * self.c

    def offer(self, t: float, patience: float, service: float) -> tuple[int, float, float]:
        """``(outcome, start, end)`` of a customer arriving at ``t`` (arrivals in time order)."""
        while self.wroom and self.wroom[0] <= t:
            heapq.heappop(self.wroom)
        start = max(t, self.free[0])
        if start > t:
            if self.wcap is not None and len(self.wroom) >= self.wcap:
                return QUEUE_FULL, t, t
            if start - t > patience:
                heapq.heappush(self.wroom, t + patience)
                return TIMEOUT, t, t + patience
            heapq.heappush(self.wroom, start)
        end = start + service
        heapq.heapreplace(self.free, end)
        return SERVED, start, end


def simulate_arrays(
    arrival_times: Sequence[float],
    services: Sequence[float],
    patiences: Sequence[float],
    c: int,
    wcap: int | None = None,
    queue: TwinQueue | None = None,
) -> tuple[list[int], list[float]]:
    """``(outcomes, starts)`` of pre-drawn customers; pass ``queue`` to continue across batches."""
    q = TwinQueue(c, wcap) if queue is None else queue
    outcomes: list[int] = []
    starts: list[float] = []
    for t, s, p in zip(arrival_times, services, patiences, strict=True):
        outcome, start, _end = q.offer(float(t), float(p), float(s))
        outcomes.append(outcome)
        starts.append(start)
    return outcomes, starts


@dataclass
class TwinStats:
    arrivals: int = 0
    admitted: int = 0
    blocked: int = 0
    abandoned: int = 0
    waited: int = 0
    wait_sum: float = 0.0


def simulate(
    lam: float,
    mu: float,
    c: int,
    K: int | None,
    theta: float | None,
    rng: np.random.Generator,
    n: int,
    warmup: int = 0,
) -> TwinStats:
    """Simulate ``n`` customers of M/M/c/K+M; count those after the first ``warmup``."""
    q = TwinQueue(c, None if K is None else K - c)
    stats = TwinStats()
    t = 0.0
    for i in range(n):
        t += rng.exponential(1.0 / lam)
        service = rng.exponential(1.0 / mu)
        patience = rng.exponential(1.0 / theta) if theta else math.inf
        outcome, start, _end = q.offer(t, patience, service)
        if i < warmup:
            continue
        stats.arrivals += 1
        if outcome == QUEUE_FULL:
            stats.blocked += 1
        elif outcome == TIMEOUT:
            stats.admitted += 1
            stats.abandoned += 1
            stats.waited += 1
            stats.wait_sum += patience
        else:
            stats.admitted += 1
            if start > t:
                stats.waited += 1
                stats.wait_sum += start - t
    return stats
