"""Token bucket admission: one global bucket in front of the fleet, exact at every attempt.

Params ``(rate_per_s, burst)``, state ``(tokens, last_t)``. Tokens refill continuously at
``rate_per_s`` up to ``burst``; an attempt takes one whole token or is rejected (``bucket``). The
bucket is evaluated at every attempt's own timestamp, so it does not depend on the tick length.
The same arithmetic serves the AIMD policy, whose rate changes between windows (``take``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels import hot, reasons

ADMIT = -1


@hot
def take(rate: float, burst: float, state: np.ndarray, t: float) -> bool:
    """Refill ``state = (tokens, last_t)`` at ``rate`` up to ``burst`` by ``t``; take a token."""
    tokens = min(burst, state[0] + rate * (t - state[1]))
    state[1] = t
    if tokens >= 1.0:
        state[0] = tokens - 1.0
        return True
    state[0] = tokens
    return False


@hot
def admit(params: np.ndarray, state: np.ndarray, t: float) -> int:
    """``-1`` admits the attempt at ``t``; otherwise ``reasons.BUCKET``."""
    return ADMIT if take(params[0], params[1], state, t) else reasons.BUCKET


@njit(cache=True)
def _token_bucket(
    times: np.ndarray, rate: float, burst: float, state: np.ndarray, out: np.ndarray
) -> None:
    params = np.array([rate, burst])
    for i in range(times.shape[0]):
        out[i] = admit(params, state, times[i]) < 0


def token_bucket(
    times: np.ndarray, rate_per_s: float, burst: float, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run an exact token bucket over sorted attempt ``times``.

    Returns ``(admitted, state)``: a boolean mask and the ``(tokens, last_t)`` state after the last
    attempt, which can be passed back in to continue with the next batch (the bucket starts full
    at the first attempt when no state is given).
    """
    times = np.ascontiguousarray(times, dtype=np.float64)
    if rate_per_s < 0 or burst < 1:
        raise ValueError(
            f"token bucket needs rate_per_s >= 0 and burst >= 1, got {rate_per_s}, {burst}"
        )
    if times.size and np.any(np.diff(times) < 0):
        raise ValueError("token bucket: attempt times must be sorted")
    if state is None:
        state = np.array([float(burst), times[0] if times.size else 0.0])
    state = np.asarray(state, dtype=np.float64).copy()
    out = np.empty(times.shape[0], dtype=np.bool_)
    _token_bucket(times, float(rate_per_s), float(burst), state, out)
    return out, state
