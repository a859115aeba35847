"""Client policies in the kernels: backoff waits, patience, retry budgets and adaptive throttling.

The client's parameters are one vector laid out by the ``P_*`` indices (``sim.policies.client``
packs it); ``docs/policies.md`` defines every rule. Random draws come from ``sim.kernels.rng``
streams: a state array and the row of the stream to draw from.

- ``delay(kind, p, k, prev, st, i)``: the wait after failed attempt ``k`` (k = 1, 2, ...), or
  ``-1.0`` when the listener abandons (``k >= max_attempts``, or no retry). ``prev`` is the
  person's previous wait (decorrelated jitter; ``base_s`` before the first).
- ``patience(p, st, i)``: a person's patience, drawn at their first attempt (``inf`` for none).
- Sliding windows of one-second bins of absolute time (``window_*``), for the retry budget (sent
  attempts, retries) and the throttle (attempts, accepts): a ring of ``W`` bins and the running
  sums; ``window_at(ring, sums, t)`` moves the window to the bin of ``t`` and clears the bins that
  left it, so counts never depend on the tick length.

Backoff kinds: ``NONE`` (never), ``FULL_JITTER`` U(0, min(cap, base·2^(k−1))), ``CONSTANT``
(``base`` = the delay), ``IMMEDIATE`` (0), ``EXPONENTIAL`` min(cap, base·2^(k−1)),
``DECORRELATED`` min(cap, U(base, 3·prev)).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sim.kernels import hot
from sim.kernels import rng as rn

NONE = 0
FULL_JITTER = 1
CONSTANT = 2
IMMEDIATE = 3
EXPONENTIAL = 4
DECORRELATED = 5

PATIENCE_NONE = 0
PATIENCE_FIXED = 1
PATIENCE_EXP = 2
PATIENCE_LOGNORMAL = 3

# the client's parameter vector
P_MAX_ATTEMPTS = 0
P_BASE = 1  # base_s, or the constant delay_s
P_CAP = 2
P_PATIENCE = 3
P_PATIENCE_MEAN = 4
P_PATIENCE_MU = 5
P_PATIENCE_SIGMA = 6
P_BUDGET = 7  # the retry budget's ratio, -1 = none
P_BUDGET_WINDOW = 8  # bins (seconds)
P_THROTTLE_K = 9  # -1 = no throttling
P_THROTTLE_WINDOW = 10
P_HONOUR = 11  # 1 = wait at least a rejection's retry-after hint
P_RECONNECT_MEAN = 12
P_RECONNECT_MIN = 13
N_PARAMS = 14

# a window's running sums: the current bin, then one sum per ring column
W_BIN = 0
N_WINDOW = 3


@hot
def delay(kind: int, p: np.ndarray, k: int, prev: float, st: np.ndarray, i: int) -> float:
    """Wait after failed attempt ``k``; ``-1.0`` means the listener abandons."""
    if k >= p[P_MAX_ATTEMPTS] or kind == NONE:
        return -1.0
    if kind == FULL_JITTER:
        return rn.uniform(st, i) * min(p[P_CAP], p[P_BASE] * 2.0 ** (k - 1))
    if kind == EXPONENTIAL:
        return min(p[P_CAP], p[P_BASE] * 2.0 ** (k - 1))
    if kind == DECORRELATED:
        base = p[P_BASE]
        return min(p[P_CAP], base + rn.uniform(st, i) * (3.0 * prev - base))
    if kind == IMMEDIATE:
        return 0.0
    return p[P_BASE]


@hot
def patience(p: np.ndarray, st: np.ndarray, i: int) -> float:
    """A person's patience (seconds from their first attempt); ``inf`` when unlimited."""
    kind = p[P_PATIENCE]
    if kind == PATIENCE_FIXED:
        return p[P_PATIENCE_MEAN]
    if kind == PATIENCE_EXP:
        return rn.exponential(st, i, p[P_PATIENCE_MEAN])
    if kind == PATIENCE_LOGNORMAL:
        u1 = rn.uniform(st, i)
        u2 = rn.uniform(st, i)
        z = math.sqrt(-2.0 * math.log1p(-u1)) * math.cos(2.0 * math.pi * u2)
        return math.exp(p[P_PATIENCE_MU] + p[P_PATIENCE_SIGMA] * z)
    return np.inf


@hot
def window_at(ring: np.ndarray, sums: np.ndarray, t: float) -> None:
    """Move the window to the one-second bin of ``t`` (times only move forward)."""
    b = math.floor(t)
    cur = sums[W_BIN]
    if b <= cur:
        return
    w = ring.shape[0]
    steps = b - cur
    if steps > w:
        steps = w
    for s in range(1, int(steps) + 1):
        slot = int((cur + s) % w)
        for c in range(ring.shape[1]):
            sums[1 + c] -= ring[slot, c]
            ring[slot, c] = 0
    sums[W_BIN] = b


@hot
def window_add(ring: np.ndarray, sums: np.ndarray, c: int, n: float) -> None:
    """Count ``n`` in column ``c`` of the current bin."""
    slot = int(sums[W_BIN] % ring.shape[0])
    ring[slot, c] += n
    sums[1 + c] += n


def window(bins: float) -> tuple[np.ndarray, np.ndarray]:
    """A new window of ``bins`` one-second bins of two columns: ``(ring, sums)``."""
    ring = np.zeros((max(1, int(bins)), 2))
    sums = np.zeros(N_WINDOW)
    sums[W_BIN] = -1.0
    return ring, sums


@njit(cache=True)
def _delays(
    kind: int, p: np.ndarray, k: np.ndarray, prev: np.ndarray, st: np.ndarray, i: int
) -> np.ndarray:
    out = np.empty(k.shape[0])
    for j in range(k.shape[0]):
        out[j] = delay(kind, p, k[j], prev[j], st, i)
    return out


def delays(
    kind: int,
    p: np.ndarray,
    k: np.ndarray,
    st: np.ndarray,
    i: int = 0,
    prev: np.ndarray | None = None,
) -> np.ndarray:
    """Vectorised ``delay`` for attempt numbers ``k`` (draws in order from stream ``i``)."""
    k = np.asarray(k, np.int64)
    prev_ = np.full(k.shape, float(p[P_BASE])) if prev is None else np.asarray(prev, np.float64)
    return _delays(int(kind), np.asarray(p, np.float64), k, prev_, st, int(i))
