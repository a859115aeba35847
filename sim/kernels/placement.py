"""Placement: which edge node an admitted attempt is sent to.

``choose`` looks at the connections each node holds at time ``t`` (the size of its heap of
connection-release times, after dropping releases due by ``t``) and returns a node index.

- ``RANDOM``: a uniformly random node.
- ``POWER_OF_TWO``: two distinct random nodes, the one holding fewer connections (the first on a
  tie).
- ``LEAST_LOADED``: the node holding the fewest connections (the lowest index on a tie); it looks
  at every node, so it costs O(nodes) per attempt.

Adding a policy: a new kind constant, a branch here and a Python class in ``sim/policies.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels import heap

RANDOM = 0
POWER_OF_TWO = 1
LEAST_LOADED = 2


@njit(cache=True)
def held(conn: np.ndarray, cn: np.ndarray, i: int, t: float) -> int:
    """Connections node ``i`` holds at time ``t`` (drops the releases due by ``t``)."""
    cn[i] = heap.drain(conn[i], cn[i], t)
    return int(cn[i])


@njit(cache=True)
def choose(kind: int, conn: np.ndarray, cn: np.ndarray, t: float, rng: np.random.Generator) -> int:
    """Pick a node for an attempt at time ``t``."""
    n = cn.shape[0]
    if kind == RANDOM or n == 1:
        return int(rng.integers(0, n))
    if kind == POWER_OF_TWO:
        i = int(rng.integers(0, n))
        j = int(rng.integers(0, n - 1))
        if j >= i:
            j += 1
        return i if held(conn, cn, i, t) <= held(conn, cn, j, t) else j
    best = 0
    best_held = held(conn, cn, 0, t)
    for i in range(1, n):
        h = held(conn, cn, i, t)
        if h < best_held:
            best = i
            best_held = h
    return best
