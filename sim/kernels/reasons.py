"""Why an attempt failed: the rejection reasons, numbered for the kernels.

Counters of rejections are laid out in this order (``sim.kernels.pipeline.C_REJECT + code``), and
the time series and summaries name them (``rejected_<reason>``). The first four come from the
edge node and the original token bucket, the next from the other admission policies, the last
from the client itself, then the control plane and a fleet with no node up; the last three are
attack traffic's (``sim.config.AttackConfig``): an ingress flooded by a volumetric attack, the
mitigation's filter, and joins gated while the presence channel is saturated.
"""

from __future__ import annotations

BUCKET = 0  # the token bucket had no token
FULL = 1  # the node holds its connection cap
QUEUE = 2  # the node's waiting room is full
TIMEOUT = 3  # no join worker within the join timeout (or the person's patience)
CAP = 4  # the concurrency cap (live listeners or joins in flight)
HOLD_FULL = 5  # the waiting room's hold queue is full
HOLD_TIMEOUT = 6  # held longer than the waiting room's maximum wait (or the person's patience)
SHED = 7  # the adaptive (AIMD) rate limit shed it
NO_CREDIT = 8  # no credit left (credit-based admission)
THROTTLED = 9  # the client's adaptive throttle rejected it locally
AUTH = 10  # the control-plane/auth service was full or too slow
DOWN = 11  # no edge node is up
FLOODED = 12  # lost on an ingress flooded by a volumetric attack
FILTERED = 13  # dropped by the attack mitigation (a bot, or an organic false positive)
PRESENCE = 14  # the presence channel is saturated: joins are refused until it recovers

REASONS = (
    "bucket",
    "full",
    "queue",
    "timeout",
    "cap",
    "hold_full",
    "hold_timeout",
    "shed",
    "no_credit",
    "throttled",
    "auth",
    "down",
    "flooded",
    "filtered",
    "presence",
)
