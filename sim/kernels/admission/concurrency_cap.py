"""Concurrency cap: refuse joins while the room holds its listener cap or its joins in flight.

Params ``(max_listeners, max_joins_in_flight, retry_after_s)`` (``inf`` = no limit). ``live`` is
the number of listeners connected at the attempt's time (joined, not yet left) and ``in_flight``
the attempts placed on a node whose join is still pending (waiting or in service). Rejection
reason ``cap``, with the hint ``retry_after_s``. No state.
"""

from __future__ import annotations

import numpy as np

from sim.kernels import hot, reasons

ADMIT = -1


@hot
def admit(params: np.ndarray, live: int, in_flight: int, out: np.ndarray) -> int:
    """``-1`` admits; otherwise ``reasons.CAP`` with ``out[1]`` = the retry-after hint."""
    if live >= params[0] or in_flight >= params[1]:
        out[1] = params[2]
        return reasons.CAP
    return ADMIT
