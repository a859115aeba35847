"""Client retry policies: when a rejected listener tries again, and when it gives up.

``delay(kind, params, k, rng)`` is the wait after the ``k``-th failed attempt (k = 1, 2, ...), or
``-1.0`` when the listener abandons. ``params[0]`` is always the maximum number of attempts.

- ``NONE``: never retry (one attempt).
- ``FULL_JITTER``: capped exponential backoff with full jitter (AWS): params
  ``(max_attempts, base_s, cap_s)``, wait ``U(0, min(cap_s, base_s * 2**(k - 1)))``.
- ``CONSTANT``: params ``(max_attempts, delay_s)``, wait exactly ``delay_s`` (``0`` = immediate).

Adding a policy: a new kind constant, a branch in ``delay`` and a Python class in
``sim/policies.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NONE = 0
FULL_JITTER = 1
CONSTANT = 2


@njit(cache=True)
def delay(kind: int, params: np.ndarray, k: int, rng: np.random.Generator) -> float:
    """Wait after failed attempt ``k``; ``-1.0`` means the listener abandons."""
    if k >= params[0] or kind == NONE:
        return -1.0
    if kind == FULL_JITTER:
        return rng.random() * min(params[2], params[1] * 2.0 ** (k - 1))
    return params[1]


@njit(cache=True)
def _delays(kind: int, params: np.ndarray, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(k.shape[0])
    for i in range(k.shape[0]):
        out[i] = delay(kind, params, k[i], rng)
    return out


def delays(kind: int, params: np.ndarray, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vectorised ``delay`` for attempt numbers ``k`` (draws in order from ``rng``)."""
    return _delays(int(kind), np.asarray(params, np.float64), np.asarray(k, np.int64), rng)
