"""Plain-Python twins of the policy kernels: admission, client (backoff, patience), placement.

Each function or class restates ``docs/policies.md`` with Python numbers and lists, and draws the
same numbers from the same streams in the same order as the kernels (``tests.twins.rng``), so that
the kernels can be compared with them exactly. Policy kinds and parameter layouts are the kernels'
numbers, restated here so the twins import nothing from ``sim``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tests.twins.rng import Xoshiro128ss

# admission kinds, codes and the rejection reasons
ADMIT_NONE = 0
TOKEN_BUCKET = 1
CONCURRENCY_CAP = 2
WAITING_ROOM = 3
AIMD = 4
CREDIT = 5
ADMIT = -1
HOLD = -2
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
REJECT_BUCKET = 0

# backoff kinds
RETRY_NONE = 0
FULL_JITTER = 1
CONSTANT = 2
IMMEDIATE = 3
EXPONENTIAL = 4
DECORRELATED = 5

# patience kinds
PATIENCE_NONE, PATIENCE_FIXED, PATIENCE_EXP, PATIENCE_LOGNORMAL = 0, 1, 2, 3

# placement kinds
RANDOM = 0
POWER_OF_TWO = 1
LEAST_LOADED = 2
POWER_OF_D = 3
CONSISTENT_HASH = 4


# --------------------------------------------------------------------------- admission


def take_token(rate: float, burst: float, state: list[float], t: float) -> bool:
    """A bucket ``state = [tokens, last_t]`` refilled at ``rate`` up to ``burst``; one token."""
    tokens = min(burst, state[0] + rate * (t - state[1]))
    state[1] = t
    if tokens >= 1.0:
        state[0] = tokens - 1.0
        return True
    state[0] = tokens
    return False


def admit(kind: int, params: Sequence[float], state: list[float], t: float) -> int:
    """The token bucket alone (``params = (rate_per_s, burst)``): ``-1`` admits, else 0."""
    if kind == ADMIT_NONE:
        return -1
    assert kind == TOKEN_BUCKET, kind
    return -1 if take_token(float(params[0]), float(params[1]), state, t) else REJECT_BUCKET


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


class Admission:
    """Every admission policy of ``docs/policies.md``, one attempt at a time.

    ``decide`` returns ``(code, time, hint)``: ``ADMIT``, ``HOLD`` (placed at ``time``) or a
    reason index failing at ``time``; ``observe`` takes a measured queueing delay.
    """

    def __init__(self, kind: int, params: Sequence[float]) -> None:
        self.kind = kind
        self.p = [float(x) for x in params]
        p = self.p
        self.bucket = [p[1], 0.0] if kind == TOKEN_BUCKET else [0.0, 0.0]
        self.next_release = 0.0
        self.room: list[float] = []  # waiting room: when each held person leaves the hold queue
        self.window = 0
        self.delays: list[float] = []
        if kind == AIMD:
            self.rate = p[2]
            self.bucket = [max(1.0, p[2] * p[7]), 0.0]
        if kind == CREDIT:
            self.credits = p[2]

    def _roll(self, t: float) -> None:
        """Close the windows that ended by ``t`` (AIMD, credit)."""
        p = self.p
        w = math.floor(t / p[1])
        while self.window < w:
            n = len(self.delays)
            mean = sum(self.delays) / n if n else 0.0
            if self.kind == AIMD:
                end = (self.window + 1) * p[1]
                burst = max(1.0, self.rate * p[7])
                self.bucket[0] = min(burst, self.bucket[0] + self.rate * (end - self.bucket[1]))
                self.bucket[1] = end
                if n and mean > p[0]:
                    self.rate = max(p[3], self.rate * p[6])
                else:
                    self.rate = min(p[4], self.rate + p[5])
                self.bucket[0] = min(self.bucket[0], max(1.0, self.rate * p[7]))
            else:
                if mean < p[0]:
                    self.credits = min(p[4], self.credits + p[5])
                else:
                    factor = max(1.0 - p[6] * (mean - p[0]) / mean, 0.5)
                    self.credits = max(p[3], self.credits * factor)
            self.delays = []
            self.window += 1

    def decide(
        self, t: float, live: int, in_flight: int, patience_left: float
    ) -> tuple[int, float, float]:
        p, kind = self.p, self.kind
        if kind == TOKEN_BUCKET:
            return (ADMIT if take_token(p[0], p[1], self.bucket, t) else 0), t, 0.0
        if kind == CONCURRENCY_CAP:
            if live >= p[0] or in_flight >= p[1]:
                return REASONS.index("cap"), t, p[2]
            return ADMIT, t, 0.0
        if kind == WAITING_ROOM:
            self.room = [x for x in self.room if x > t]
            release = max(t, self.next_release)
            if release <= t:
                self.next_release = release + 1.0 / p[0]
                return ADMIT, t, 0.0
            wait = min(p[1], patience_left)
            if len(self.room) >= p[2]:
                return REASONS.index("hold_full"), t, p[3]
            if release - t > wait:
                self.room.append(t + wait)
                return REASONS.index("hold_timeout"), t + wait, p[3]
            self.room.append(release)
            self.next_release = release + 1.0 / p[0]
            return HOLD, release, 0.0
        if kind == AIMD:
            self._roll(t)
            if take_token(self.rate, max(1.0, self.rate * p[7]), self.bucket, t):
                return ADMIT, t, 0.0
            return REASONS.index("shed"), t, p[8]
        if kind == CREDIT:
            self._roll(t)
            if in_flight < math.floor(self.credits):
                return ADMIT, t, 0.0
            return REASONS.index("no_credit"), t, p[7]
        return ADMIT, t, 0.0

    def observe(self, t: float, delay: float) -> None:
        if self.kind in (AIMD, CREDIT):
            self._roll(t)
            self.delays.append(delay)

    def held(self, t: float) -> int:
        return sum(1 for x in self.room if x > t)


# --------------------------------------------------------------------------- client

# the client's parameter vector (``sim.kernels.retry.P_*``)
P_MAX_ATTEMPTS, P_BASE, P_CAP = 0, 1, 2
P_PATIENCE, P_PATIENCE_MEAN, P_PATIENCE_MU, P_PATIENCE_SIGMA = 3, 4, 5, 6
P_BUDGET, P_BUDGET_WINDOW, P_THROTTLE_K, P_THROTTLE_WINDOW, P_HONOUR = 7, 8, 9, 10, 11


def delay(kind: int, p: Sequence[float], k: int, prev: float, rng: Xoshiro128ss) -> float:
    """The wait after failed attempt ``k`` (1, 2, ...), or ``-1.0`` when the listener abandons.

    Full jitter and decorrelated jitter draw one uniform (only when they do not abandon).
    """
    if kind == RETRY_NONE or k >= p[P_MAX_ATTEMPTS]:
        return -1.0
    base, cap = float(p[P_BASE]), float(p[P_CAP])
    if kind == FULL_JITTER:
        return rng.uniform() * min(cap, base * 2.0 ** (k - 1))
    if kind == EXPONENTIAL:
        return min(cap, base * 2.0 ** (k - 1))
    if kind == DECORRELATED:
        return min(cap, base + rng.uniform() * (3.0 * prev - base))
    if kind == IMMEDIATE:
        return 0.0
    assert kind == CONSTANT, kind
    return base


def patience(p: Sequence[float], rng: Xoshiro128ss) -> float:
    """A person's patience: none (inf, no draw), fixed, exponential or lognormal (Box–Muller)."""
    kind = p[P_PATIENCE]
    if kind == PATIENCE_FIXED:
        return float(p[P_PATIENCE_MEAN])
    if kind == PATIENCE_EXP:
        return rng.exponential(float(p[P_PATIENCE_MEAN]))
    if kind == PATIENCE_LOGNORMAL:
        u1, u2 = rng.uniform(), rng.uniform()
        z = math.sqrt(-2.0 * math.log1p(-u1)) * math.cos(2.0 * math.pi * u2)
        return math.exp(p[P_PATIENCE_MU] + p[P_PATIENCE_SIGMA] * z)
    return math.inf


class Window:
    """Events in one-second bins of absolute time; ``count(t)`` sums the ``bins`` bins up to
    ``floor(t)``. Kept as a plain list of (bin, column) events."""

    def __init__(self, bins: float) -> None:
        self.bins = max(1, int(bins))
        self.events: list[tuple[int, int]] = []

    def add(self, t: float, column: int) -> None:
        self.events.append((math.floor(t), column))

    def count(self, t: float, column: int) -> int:
        b = math.floor(t)
        return sum(1 for e, c in self.events if c == column and b - self.bins < e <= b)


# --------------------------------------------------------------------------- placement


def held(releases: list[float], t: float) -> int:
    """Connections held at ``t``: the releases still to come (a release at ``t`` is done)."""
    return sum(1 for r in releases if r > t)


def choose(
    kind: int,
    conns: Sequence[list[float]],
    t: float,
    rng: Xoshiro128ss,
    d: int = 2,
    key: float = 0.0,
    ring: Sequence[tuple[float, int]] = (),
    load_bound: float = 1.25,
) -> int:
    """The node an attempt at ``t`` goes to; ``conns[i]`` lists node ``i``'s connection releases.

    With one node nothing is drawn. ``RANDOM`` draws ``integers(n)``. ``POWER_OF_D`` (and
    ``POWER_OF_TWO``, d = 2) draws ``integers(n - m)`` for m = 0 .. d-1, each picking among the
    nodes not drawn yet in index order, and keeps the first drawn of the least loaded.
    ``LEAST_LOADED`` draws nothing and takes the lowest index among the least loaded.
    ``CONSISTENT_HASH`` walks the ``ring`` of (position, node) from ``key`` to the first node
    under ``ceil(load_bound · (H + 1) / n)``.
    """
    n = len(conns)
    loads = [held(c, t) for c in conns]
    if n == 1:
        return 0
    if kind == RANDOM:
        return rng.integers(n)
    if kind == POWER_OF_TWO:
        kind, d = POWER_OF_D, 2
    if kind == POWER_OF_D and d < n:
        drawn: list[int] = []
        for m in range(d):
            x = rng.integers(n - m)
            free = [i for i in range(n) if i not in drawn]
            drawn.append(free[x])
        return min(drawn, key=lambda i: (loads[i], drawn.index(i)))
    if kind == CONSISTENT_HASH:
        bound = math.ceil(load_bound * (sum(loads) + 1) / n)
        start = next((j for j, (pos, _) in enumerate(ring) if pos >= key), 0)
        for s in range(len(ring)):
            node = ring[(start + s) % len(ring)][1]
            if loads[node] < bound:
                return node
    return loads.index(min(loads))
