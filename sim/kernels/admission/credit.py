"""Credit-based admission (Breakwater-style): joins in flight are limited by adaptive credits.

Params ``(target_delay_s, window_s, initial_credits, min_credits, max_credits, additive_credits,
beta, retry_after_s)``; state ``(credits, window, delay_sum, delay_n)``. An attempt is admitted
while the attempts in flight on the nodes (waiting or in service) are fewer than
``floor(credits)``, else rejected (``no_credit``, hint ``retry_after_s``). At each window's end,
with ``d`` the window's mean measured queueing delay (0 when nothing was measured): below the
target the credits grow by ``additive_credits``; above it they shrink multiplicatively,
``credits · max(1 − beta·(d − target)/d, 0.5)``, within ``[min, max]``. Breakwater (OSDI 2020)
issues credits per client per RTT the same way; here the population shares one pool.
"""

from __future__ import annotations

import math

import numpy as np

from sim.kernels import hot, reasons

ADMIT = -1
S_CREDITS, S_WINDOW, S_SUM, S_N = 0, 1, 2, 3


def initial(params: np.ndarray) -> np.ndarray:
    """The state at t = 0."""
    return np.array([params[2], 0.0, 0.0, 0.0])


@hot
def roll(params: np.ndarray, state: np.ndarray, t: float) -> None:
    """Close every window that ended by ``t``, updating the credits."""
    w = math.floor(t / params[1])
    target = params[0]
    while state[S_WINDOW] < w:
        n = state[S_N]
        d = state[S_SUM] / n if n > 0 else 0.0
        c = state[S_CREDITS]
        if d < target:
            c = min(params[4], c + params[5])
        else:
            c = max(params[3], c * max(1.0 - params[6] * (d - target) / d, 0.5))
        state[S_CREDITS] = c
        state[S_SUM] = 0.0
        state[S_N] = 0.0
        state[S_WINDOW] += 1.0


@hot
def admit(params: np.ndarray, state: np.ndarray, t: float, in_flight: int, out: np.ndarray) -> int:
    """``-1`` admits the attempt at ``t``; otherwise ``reasons.NO_CREDIT``."""
    roll(params, state, t)
    if in_flight < math.floor(state[S_CREDITS]):
        return ADMIT
    out[1] = params[7]
    return reasons.NO_CREDIT


@hot
def observe(params: np.ndarray, state: np.ndarray, t: float, delay: float) -> None:
    """A join queue measured ``delay`` for an attempt admitted at ``t``."""
    roll(params, state, t)
    state[S_SUM] += delay
    state[S_N] += 1.0
