"""The join queue: an exact FIFO multi-server queue with a finite waiting room and reneging.

A node has ``c`` join workers. Attempts are offered in time order. Because service is first come,
first served, an attempt's start time is known the moment it arrives: it is the later of its arrival
and the earliest time a worker becomes free, given every earlier attempt (a Lindley-type recursion,
the ``c`` worker-free times kept in a heap). Three outcomes follow:

- ``SERVED``: it starts within its patience and holds a worker until ``start + service``;
- ``TIMEOUT``: it would wait longer than its patience, so it leaves the waiting room at
  ``arrival + patience`` without ever taking a worker (later attempts do not wait for it);
- ``QUEUE_FULL``: it would have to wait while ``wcap`` earlier attempts are still waiting.

The waiting room is the heap of the times the waiting attempts leave it (their start or their
give-up time); entries at or before the current time are dropped lazily. The state (worker-free
times and waiting-room exits) lives in caller-owned arrays, so it carries across batches and the
result does not depend on how the attempts are cut into batches. With ``wcap = K - c`` the queue is
the M/M/c/K (or, with exponential patience, M/M/c+M) system of queueing theory.
"""

from __future__ import annotations

import numpy as np

from sim.kernels import heap, hot

SERVED = 0
QUEUE_FULL = 1
TIMEOUT = 2


@hot
def offer(
    t: float,
    patience: float,
    service: float,
    free: np.ndarray,
    wroom: np.ndarray,
    wn: int,
    wcap: int,
    wasted: bool = False,
) -> tuple[int, float, float, int]:
    """Offer an attempt arriving at ``t``; return ``(outcome, start, end, new_wn)``.

    ``free`` is the heap of the ``c`` worker-free times, ``wroom[:wn]`` the waiting-room exits.
    ``end`` is the service end (``SERVED``), the give-up time (``TIMEOUT``) or ``t``. With
    ``wasted``, an attempt whose client gives up is not cancelled: it keeps its place in the
    waiting room until it starts and is served all the same, for nobody (the work a retry storm
    wastes).
    """
    wn = heap.drain(wroom, wn, t)
    start = max(t, free[0])
    if start > t:
        if wn >= wcap:
            return QUEUE_FULL, t, t, wn
        if start - t > patience:
            if wasted:
                wn = heap.push(wroom, wn, start)
                heap.replace_top(free, free.shape[0], start + service)
            else:
                wn = heap.push(wroom, wn, t + patience)
            return TIMEOUT, t, t + patience, wn
        wn = heap.push(wroom, wn, start)
    end = start + service
    heap.replace_top(free, free.shape[0], end)
    return SERVED, start, end, wn
