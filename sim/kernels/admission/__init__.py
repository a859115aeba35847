"""Admission at the room's control plane: which join attempts may go on to an edge node.

One module per policy (``token_bucket``, ``concurrency_cap``, ``waiting_room``, ``aimd``,
``credit``; ``docs/policies.md`` defines each); this module numbers them and dispatches, so the
fused pipeline kernel can call a policy without Python objects. Every policy sees the same
arguments: its parameter vector, a float state vector, a float array for a hold queue (the waiting
room's; empty for the others), the attempt's time ``t``, the listeners connected (``live``) and
the joins in flight at ``t``, the person's patience left, and ``out`` (2 floats) for what it says
beyond its code:

- ``ADMIT`` (-1): admitted now;
- ``HOLD`` (-2): held; it goes on to placement at ``out[0]``;
- a rejection reason (``sim.kernels.reasons``) >= 0, failing at ``out[0]`` (the attempt's time
  unless the policy says otherwise), with the retry-after hint ``out[1]`` (0 = none).

Adaptive policies also ``observe`` the queueing delay the join queues measured for every attempt
they admitted. Adding a policy: a module here with ``admit`` (and ``observe``), a kind number and
its branches below, a dataclass in ``sim/policies/admission.py`` and a YAML file in
``conf/admission/``.
"""

from __future__ import annotations

import numpy as np

from sim.kernels import hot, reasons
from sim.kernels.admission import (  # after token_bucket
    aimd,
    concurrency_cap,
    credit,
    token_bucket,
    waiting_room,
)

NONE = 0
TOKEN_BUCKET = 1
CONCURRENCY_CAP = 2
WAITING_ROOM = 3
AIMD = 4
CREDIT = 5

ADMIT = -1
HOLD = -2
REJECT_BUCKET = reasons.BUCKET
N_STATE = 8  # floats of state every policy gets (aimd uses 6)


def new_state(kind: int, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(state, room)`` of a policy at t = 0 (a token bucket starts full)."""
    state = np.zeros(N_STATE)
    room = np.zeros(0)
    if kind == TOKEN_BUCKET:
        state[0] = params[1]
    elif kind == WAITING_ROOM:
        room = np.zeros(int(params[2]))
    elif kind == AIMD:
        state[:6] = aimd.initial(params)
    elif kind == CREDIT:
        state[:4] = credit.initial(params)
    return state, room


@hot
def admit(
    kind: int,
    params: np.ndarray,
    state: np.ndarray,
    room: np.ndarray,
    t: float,
    live: int,
    in_flight: int,
    patience_left: float,
    out: np.ndarray,
) -> int:
    """Decide the attempt at ``t``: ``ADMIT``, ``HOLD`` or a rejection reason (module docstring)."""
    out[0] = t
    out[1] = 0.0
    if kind == TOKEN_BUCKET:
        return token_bucket.admit(params, state, t)
    if kind == CONCURRENCY_CAP:
        return concurrency_cap.admit(params, live, in_flight, out)
    if kind == WAITING_ROOM:
        return waiting_room.admit(params, state, room, t, patience_left, out)
    if kind == AIMD:
        return aimd.admit(params, state, t, out)
    if kind == CREDIT:
        return credit.admit(params, state, t, in_flight, out)
    return ADMIT


@hot
def observe(kind: int, params: np.ndarray, state: np.ndarray, t: float, delay: float) -> None:
    """The join queue measured ``delay`` for an attempt admitted at ``t`` (adaptive policies)."""
    if kind == AIMD:
        aimd.observe(params, state, t, delay)
    elif kind == CREDIT:
        credit.observe(params, state, t, delay)


def needs_in_flight(kind: int) -> bool:
    """The policy looks at the joins in flight (the pipeline then keeps their end times)."""
    return kind in (CONCURRENCY_CAP, CREDIT)
