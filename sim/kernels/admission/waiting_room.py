"""Waiting room: a FIFO hold queue in front of the room, released at a steady rate.

Params ``(release_per_s, max_wait_s, capacity, retry_after_s)``; state ``(next_release, held)``
and ``room``, the heap of the times the held people leave the hold queue (their release, or when
they give up). The hold queue is an exact FIFO queue with one release "server" of deterministic
service ``1 / release_per_s``, ``capacity`` places and reneging after ``min(max_wait_s, patience
left)`` (the join queue of ``sim.kernels.queue`` with c = 1 and constant service):

- released at once when no one is ahead (``-1``, admitted now);
- ``hold_full`` when ``capacity`` people are held already;
- ``hold_timeout`` when the release would come later than the person will wait: they leave at
  ``t + wait`` without using a release slot (``out[0]`` = that time);
- otherwise held (``-2``): the attempt goes on to placement at ``out[0]``, its release time.

Rejections carry the hint ``retry_after_s`` in ``out[1]``.
"""

from __future__ import annotations

import numpy as np

from sim.kernels import heap, hot, reasons

ADMIT = -1
HOLD = -2


@hot
def admit(
    params: np.ndarray,
    state: np.ndarray,
    room: np.ndarray,
    t: float,
    patience_left: float,
    out: np.ndarray,
) -> int:
    """Decide the attempt at ``t`` (see the module docstring)."""
    gap = 1.0 / params[0]
    held = heap.drain(room, int(state[1]), t)
    release = max(t, state[0])
    code = ADMIT
    if release > t:
        wait = min(params[1], patience_left)
        if held >= params[2]:
            code = reasons.HOLD_FULL
        elif release - t > wait:
            held = heap.push(room, held, t + wait)
            out[0] = t + wait
            code = reasons.HOLD_TIMEOUT
        else:
            held = heap.push(room, held, release)
            out[0] = release
            code = HOLD
    if code == ADMIT or code == HOLD:
        state[0] = release + gap
    else:
        out[1] = params[3]
    state[1] = held
    return code
