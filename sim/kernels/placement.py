"""Placement: which edge node an admitted attempt is sent to.

``choose`` looks at the connections each node holds at the attempt's time (``cn``: the pipeline
has handed back every connection released by then) and returns a node index.

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

RANDOM = 0
POWER_OF_TWO = 1
LEAST_LOADED = 2


@njit(cache=True)
def choose(kind: int, cn: np.ndarray, rng: np.random.Generator) -> int:
    """Pick a node; ``cn`` holds the connections each node holds now."""
    n = cn.shape[0]
    if kind == RANDOM or n == 1:
        return int(rng.integers(0, n))
    if kind == POWER_OF_TWO:
        i = int(rng.integers(0, n))
        j = int(rng.integers(0, n - 1))
        if j >= i:
            j += 1
        return i if cn[i] <= cn[j] else j
    return int(np.argmin(cn))
