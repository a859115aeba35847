"""Admission at the room's control plane: which join attempts may go on to an edge node.

Policies are numbered kinds with a parameter vector and a small float state vector, so the fused
pipeline kernel can dispatch on them without Python objects. ``admit`` returns ``-1`` when the
attempt is admitted, otherwise the rejection reason code it earns (``REJECT_BUCKET``).

- ``NONE``: every attempt is admitted.
- ``TOKEN_BUCKET``: params ``(rate_per_s, burst)``, state ``(tokens, last_t)``. Tokens refill
  continuously at ``rate_per_s`` up to ``burst``; an attempt takes one token or is rejected. The
  bucket is exact: it is evaluated at every attempt's own timestamp.

Adding a policy: a new kind constant, a branch in ``admit`` and a Python class in
``sim/policies.py`` that names it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels import hot

NONE = 0
TOKEN_BUCKET = 1

REJECT_BUCKET = 0


@hot
def admit(kind: int, params: np.ndarray, state: np.ndarray, t: float) -> int:
    """Decide one attempt at time ``t``; ``-1`` admits, otherwise a rejection reason code."""
    if kind == TOKEN_BUCKET:
        tokens = min(params[1], state[0] + params[0] * (t - state[1]))
        state[1] = t
        if tokens >= 1.0:
            state[0] = tokens - 1.0
            return -1
        state[0] = tokens
        return REJECT_BUCKET
    return -1


@njit(cache=True)
def _token_bucket(
    times: np.ndarray, rate: float, burst: float, state: np.ndarray, out: np.ndarray
) -> None:
    params = np.array([rate, burst])
    for i in range(times.shape[0]):
        out[i] = admit(TOKEN_BUCKET, params, state, times[i]) < 0


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
