"""Plain-Python twins of the policy kernels: admission, retry delay and placement.

Each function restates one branch of ``sim.kernels.admission``, ``sim.kernels.retry`` or
``sim.kernels.placement`` with Python numbers and lists, and draws the same numbers from the same
``numpy.random.Generator`` in the same order, so that the kernels can be compared with them exactly.
Policy kinds are the kernels' numbers, restated here so the twins import nothing from ``sim``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# admission kinds and the rejection reason the bucket earns
ADMIT_NONE = 0
TOKEN_BUCKET = 1
REJECT_BUCKET = 0

# retry kinds
RETRY_NONE = 0
FULL_JITTER = 1
CONSTANT = 2

# placement kinds
RANDOM = 0
POWER_OF_TWO = 1
LEAST_LOADED = 2


# --------------------------------------------------------------------------- admission


def admit(kind: int, params: Sequence[float], state: list[float], t: float) -> int:
    """``-1`` if the attempt at ``t`` is admitted, else ``REJECT_BUCKET``; updates ``state``.

    Token bucket: ``params = (rate_per_s, burst)``, ``state = [tokens, last_t]``. The bucket refills
    at ``rate_per_s`` since the last attempt, up to ``burst``; an attempt needs one whole token.
    """
    if kind == ADMIT_NONE:
        return -1
    assert kind == TOKEN_BUCKET, kind
    rate, burst = float(params[0]), float(params[1])
    tokens, last_t = state
    tokens = min(burst, tokens + rate * (t - last_t))
    state[1] = t
    if tokens >= 1.0:
        state[0] = tokens - 1.0
        return -1
    state[0] = tokens
    return REJECT_BUCKET


def token_bucket(
    times: Sequence[float], rate_per_s: float, burst: float, state: Sequence[float] | None = None
) -> tuple[list[bool], list[float]]:
    """The admitted flags of sorted ``times`` and the final ``[tokens, last_t]``.

    Without ``state`` the bucket is full at the first attempt.
    """
    times = [float(x) for x in times]
    if state is None:
        st = [float(burst), times[0] if times else 0.0]
    else:
        st = [float(state[0]), float(state[1])]
    out = [admit(TOKEN_BUCKET, (rate_per_s, burst), st, t) < 0 for t in times]
    return out, st


# --------------------------------------------------------------------------- retry


def delay(kind: int, params: Sequence[float], k: int, rng: np.random.Generator) -> float:
    """The wait after failed attempt ``k`` (1, 2, ...), or ``-1.0`` when the listener abandons.

    ``params[0]`` is the maximum number of attempts: after attempt ``max_attempts`` fails there is
    no other. Full jitter draws one ``rng.random()`` (only when it does not abandon).
    """
    max_attempts = params[0]
    if kind == RETRY_NONE or k >= max_attempts:
        return -1.0
    if kind == FULL_JITTER:
        base, cap = float(params[1]), float(params[2])
        ceiling = min(cap, base * 2.0 ** (k - 1))
        return float(rng.random()) * ceiling
    assert kind == CONSTANT, kind
    return float(params[1])


# --------------------------------------------------------------------------- placement


def held(releases: list[float], t: float) -> int:
    """Connections held at ``t``: the releases still to come (a release at ``t`` is done)."""
    return sum(1 for r in releases if r > t)


def choose(kind: int, conns: Sequence[list[float]], t: float, rng: np.random.Generator) -> int:
    """The node an attempt at ``t`` goes to; ``conns[i]`` lists node ``i``'s connection releases.

    ``RANDOM`` draws ``integers(0, n)``. ``POWER_OF_TWO`` draws ``i = integers(0, n)`` and
    ``j = integers(0, n - 1)``, shifted past ``i``, and keeps ``i`` unless ``j`` holds fewer.
    With one node every policy draws ``integers(0, 1)`` (which consumes nothing). ``LEAST_LOADED``
    draws nothing and takes the lowest index among the least loaded.
    """
    n = len(conns)
    if kind == RANDOM or n == 1:
        return int(rng.integers(0, n))
    if kind == POWER_OF_TWO:
        i = int(rng.integers(0, n))
        j = int(rng.integers(0, n - 1))
        if j >= i:
            j += 1
        return i if held(conns[i], t) <= held(conns[j], t) else j
    assert kind == LEAST_LOADED, kind
    loads = [held(c, t) for c in conns]
    return loads.index(min(loads))
