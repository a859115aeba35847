"""AIMD admission (DAGOR-style): a token bucket whose rate follows the measured queueing delay.

Params ``(target_delay_s, window_s, initial_rate_per_s, min_rate_per_s, max_rate_per_s,
increase_per_s, decrease_factor, burst_s, retry_after_s)``; state ``(tokens, last_t, rate,
window, delay_sum, delay_n)``. Time is cut into windows ``[w·window_s, (w+1)·window_s)``; the join
queues report every admitted attempt's queueing delay (``observe``). When the clock passes a
window's end, the tokens first accrue to that instant at the old rate; then the rate is cut by
``decrease_factor`` if the window's mean delay exceeded the target, else raised by
``increase_per_s`` (an empty window counts as uncongested), within ``[min, max]``. An attempt
takes a token of a bucket of ``max(1, rate·burst_s)`` or is rejected (``shed``, hint
``retry_after_s``). DAGOR (SoCC 2018) sheds by priority levels from the queueing time per window;
with one class of requests that is a rate limit, as here.
"""

from __future__ import annotations

import math

import numpy as np

from sim.kernels import hot, reasons
from sim.kernels.admission import token_bucket

ADMIT = -1
S_TOKENS, S_LAST, S_RATE, S_WINDOW, S_SUM, S_N = 0, 1, 2, 3, 4, 5


def initial(params: np.ndarray) -> np.ndarray:
    """The state at t = 0: the initial rate, a full bucket, window 0."""
    rate = params[2]
    return np.array([max(1.0, rate * params[7]), 0.0, rate, 0.0, 0.0, 0.0])


@hot
def roll(params: np.ndarray, state: np.ndarray, t: float) -> None:
    """Close every window that ended by ``t``, updating the rate."""
    window_s = params[1]
    w = math.floor(t / window_s)
    while state[S_WINDOW] < w:
        end = (state[S_WINDOW] + 1.0) * window_s
        rate = state[S_RATE]
        burst = max(1.0, rate * params[7])
        state[S_TOKENS] = min(burst, state[S_TOKENS] + rate * (end - state[S_LAST]))
        state[S_LAST] = end
        n = state[S_N]
        if n > 0 and state[S_SUM] / n > params[0]:
            rate = max(params[3], rate * params[6])
        else:
            rate = min(params[4], rate + params[5])
        state[S_RATE] = rate
        state[S_TOKENS] = min(state[S_TOKENS], max(1.0, rate * params[7]))
        state[S_SUM] = 0.0
        state[S_N] = 0.0
        state[S_WINDOW] += 1.0


@hot
def admit(params: np.ndarray, state: np.ndarray, t: float, out: np.ndarray) -> int:
    """``-1`` admits the attempt at ``t``; otherwise ``reasons.SHED``."""
    roll(params, state, t)
    rate = state[S_RATE]
    if token_bucket.take(rate, max(1.0, rate * params[7]), state, t):
        return ADMIT
    out[1] = params[8]
    return reasons.SHED


@hot
def observe(params: np.ndarray, state: np.ndarray, t: float, delay: float) -> None:
    """A join queue measured ``delay`` for an attempt admitted at ``t``."""
    roll(params, state, t)
    state[S_SUM] += delay
    state[S_N] += 1.0
