"""Admission policies: the configs of ``conf/admission/`` (definitions in ``docs/policies.md``).

Each dataclass validates its parameters and packs them into the parameter vector of its kernel
module in ``sim/kernels/admission/``. ``retry_after_s`` is the hint a rejection carries (0 = none);
clients with ``honour_retry_after`` wait at least that long.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from omegaconf import MISSING

from sim.kernels import admission as k
from sim.policies import AdmissionConfig, Problem, admission_policy, non_negative, positive


def _limit(x: int | float | None) -> float:
    return math.inf if x is None else float(x)


@admission_policy("none")
@dataclass
class NoAdmission(AdmissionConfig):
    """Every attempt goes on to placement."""

    policy: str = "none"

    def kernel(self) -> tuple[int, np.ndarray]:
        return k.NONE, np.zeros(0)


@admission_policy("token_bucket")
@dataclass
class TokenBucket(AdmissionConfig):
    """One global bucket: ``rate_per_s`` tokens a second up to ``burst``, one per attempt."""

    policy: str = "token_bucket"
    rate_per_s: float = MISSING
    burst: float = MISSING

    def problems(self) -> Iterator[Problem]:
        yield from non_negative("rate_per_s", self.rate_per_s)
        if not self.burst >= 1:
            yield "burst", self.burst, "a number >= 1 (tokens)"

    def kernel(self) -> tuple[int, np.ndarray]:
        return k.TOKEN_BUCKET, np.array([self.rate_per_s, self.burst], np.float64)


@admission_policy("concurrency_cap")
@dataclass
class ConcurrencyCap(AdmissionConfig):
    """Reject while ``max_listeners`` are connected or ``max_joins_in_flight`` joins are pending."""

    policy: str = "concurrency_cap"
    max_listeners: int | None = None
    max_joins_in_flight: int | None = None
    retry_after_s: float = 0.0

    def problems(self) -> Iterator[Problem]:
        for key in ("max_listeners", "max_joins_in_flight"):
            v = getattr(self, key)
            if v is not None and not v >= 0:
                yield key, v, "an integer >= 0, or null (no limit)"
        yield from non_negative("retry_after_s", self.retry_after_s, " (seconds)")

    def kernel(self) -> tuple[int, np.ndarray]:
        params = [_limit(self.max_listeners), _limit(self.max_joins_in_flight)]
        return k.CONCURRENCY_CAP, np.array([*params, self.retry_after_s], np.float64)


@admission_policy("waiting_room")
@dataclass
class WaitingRoom(AdmissionConfig):
    """A FIFO hold queue released at ``release_per_s``; people wait at most ``max_wait_s``."""

    policy: str = "waiting_room"
    release_per_s: float = MISSING
    max_wait_s: float = 300.0
    capacity: int = 1_000_000
    retry_after_s: float = 0.0

    def problems(self) -> Iterator[Problem]:
        yield from positive("release_per_s", self.release_per_s)
        yield from non_negative("max_wait_s", self.max_wait_s, " (seconds)")
        if not 0 <= self.capacity <= 100_000_000:
            yield "capacity", self.capacity, "an integer in [0, 100000000] (people held)"
        yield from non_negative("retry_after_s", self.retry_after_s, " (seconds)")

    def kernel(self) -> tuple[int, np.ndarray]:
        params = [self.release_per_s, self.max_wait_s, self.capacity, self.retry_after_s]
        return k.WAITING_ROOM, np.array(params, np.float64)


@dataclass
class _Adaptive(AdmissionConfig):
    """What both adaptive policies share: a delay target, a window and a retry-after hint."""

    target_delay_s: float = 0.5
    window_s: float = 1.0
    retry_after_s: float = 0.0

    def problems(self) -> Iterator[Problem]:
        yield from positive("target_delay_s", self.target_delay_s, " (seconds)")
        yield from positive("window_s", self.window_s, " (seconds)")
        yield from non_negative("retry_after_s", self.retry_after_s, " (seconds)")

    def _range(self, low: str, start: str, high: str) -> Iterator[Problem]:
        lo, st, hi = getattr(self, low), getattr(self, start), getattr(self, high)
        yield from non_negative(low, lo)
        if not st >= lo:
            yield start, st, f"a number >= {low} ({lo})"
        if not hi >= st:
            yield high, hi, f"a number >= {start} ({st})"


@admission_policy("aimd")
@dataclass
class Aimd(_Adaptive):
    """DAGOR-style: a token bucket whose rate adapts (AIMD) to the measured queueing delay."""

    policy: str = "aimd"
    initial_rate_per_s: float = 100.0
    min_rate_per_s: float = 1.0
    max_rate_per_s: float = 1e6
    increase_per_s: float = 10.0
    decrease_factor: float = 0.8
    burst_s: float = 1.0

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from self._range("min_rate_per_s", "initial_rate_per_s", "max_rate_per_s")
        yield from non_negative("increase_per_s", self.increase_per_s)
        if not 0 < self.decrease_factor < 1:
            yield "decrease_factor", self.decrease_factor, "a number in (0, 1)"
        yield from positive("burst_s", self.burst_s, " (seconds of the current rate)")

    def kernel(self) -> tuple[int, np.ndarray]:
        params = [
            self.target_delay_s,
            self.window_s,
            self.initial_rate_per_s,
            self.min_rate_per_s,
            self.max_rate_per_s,
            self.increase_per_s,
            self.decrease_factor,
            self.burst_s,
            self.retry_after_s,
        ]
        return k.AIMD, np.array(params, np.float64)


@admission_policy("credit")
@dataclass
class Credit(_Adaptive):
    """Breakwater-style: admit while joins in flight < credits; credits adapt to the delay."""

    policy: str = "credit"
    initial_credits: float = 100.0
    min_credits: float = 1.0
    max_credits: float = 1e6
    additive_credits: float = 10.0
    beta: float = 0.5

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from self._range("min_credits", "initial_credits", "max_credits")
        if not self.min_credits >= 1:
            yield "min_credits", self.min_credits, "a number >= 1 (credits)"
        yield from non_negative("additive_credits", self.additive_credits)
        if not 0 < self.beta <= 1:
            yield "beta", self.beta, "a number in (0, 1]"

    def kernel(self) -> tuple[int, np.ndarray]:
        params = [
            self.target_delay_s,
            self.window_s,
            self.initial_credits,
            self.min_credits,
            self.max_credits,
            self.additive_credits,
            self.beta,
            self.retry_after_s,
        ]
        return k.CREDIT, np.array(params, np.float64)
