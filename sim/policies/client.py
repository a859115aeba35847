"""Client policies: the configs of ``conf/client/`` (definitions in ``docs/policies.md``).

A client policy is a backoff (``retry``: when a rejected listener tries again) plus what every
client has: a maximum number of attempts, a patience distribution, an optional retry budget and
client-side adaptive throttling, whether it honours "retry after" hints, and how a listener
dropped by a crash reconnects. ``kernel()`` packs all of it into one parameter vector laid out as
the ``P_*`` indices of ``sim.kernels.retry``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from omegaconf import MISSING

from sim.kernels import retry as k
from sim.policies import Problem, non_negative, positive, share

PATIENCE = {
    "none": k.PATIENCE_NONE,
    "fixed": k.PATIENCE_FIXED,
    "exponential": k.PATIENCE_EXP,
    "lognormal": k.PATIENCE_LOGNORMAL,
}


@dataclass
class ClientConfig:
    """Base of every client policy: ``max_attempts`` includes the first attempt."""

    retry: str = MISSING
    max_attempts: int = 6
    patience: str = "none"
    patience_mean_s: float = 120.0
    patience_cv: float = 1.0
    retry_budget: float | None = None
    budget_window_s: float = 10.0
    throttle_k: float | None = None
    throttle_window_s: float = 120.0
    honour_retry_after: bool = True
    reconnect_mean_s: float = 5.0
    reconnect_min_s: float = 1.0

    def problems(self) -> Iterator[Problem]:
        if not self.max_attempts >= 1:
            yield "max_attempts", self.max_attempts, "an integer >= 1"
        if self.patience not in PATIENCE:
            yield "patience", self.patience, f"one of {', '.join(PATIENCE)}"
        yield from positive("patience_mean_s", self.patience_mean_s, " (seconds)")
        yield from positive("patience_cv", self.patience_cv)
        if self.retry_budget is not None:
            yield from share("retry_budget", self.retry_budget, low_open=False)
        for key in ("budget_window_s", "throttle_window_s"):
            v = getattr(self, key)
            if not 1 <= v <= 3600:
                yield key, v, "a number of seconds in [1, 3600]"
        if self.throttle_k is not None and not self.throttle_k >= 1:
            yield "throttle_k", self.throttle_k, "a number >= 1 (Google SRE: 2), or null"
        yield from non_negative("reconnect_mean_s", self.reconnect_mean_s, " (seconds)")
        yield from non_negative("reconnect_min_s", self.reconnect_min_s, " (seconds)")

    def backoff(self) -> tuple[int, float, float]:
        """The backoff's kind and its two parameters (base or delay, cap)."""
        raise NotImplementedError

    def kernel(self) -> tuple[int, np.ndarray]:
        kind, base, cap = self.backoff()
        cv2 = self.patience_cv**2
        sigma = math.sqrt(math.log1p(cv2))
        p = np.zeros(k.N_PARAMS)
        p[k.P_MAX_ATTEMPTS] = self.max_attempts
        p[k.P_BASE] = base
        p[k.P_CAP] = cap
        p[k.P_PATIENCE] = PATIENCE.get(self.patience, k.PATIENCE_NONE)
        p[k.P_PATIENCE_MEAN] = self.patience_mean_s
        p[k.P_PATIENCE_MU] = math.log(self.patience_mean_s) - sigma**2 / 2
        p[k.P_PATIENCE_SIGMA] = sigma
        p[k.P_BUDGET] = -1.0 if self.retry_budget is None else self.retry_budget
        p[k.P_BUDGET_WINDOW] = math.ceil(self.budget_window_s)
        p[k.P_THROTTLE_K] = -1.0 if self.throttle_k is None else self.throttle_k
        p[k.P_THROTTLE_WINDOW] = math.ceil(self.throttle_window_s)
        p[k.P_HONOUR] = 1.0 if self.honour_retry_after else 0.0
        p[k.P_RECONNECT_MEAN] = self.reconnect_mean_s
        p[k.P_RECONNECT_MIN] = self.reconnect_min_s
        return kind, p


RETRY: dict[str, type[ClientConfig]] = {}
C = TypeVar("C", bound=ClientConfig)


def retry_policy(name: str) -> Callable[[type[C]], type[C]]:
    def register(cls: type[C]) -> type[C]:
        RETRY[name] = cls
        return cls

    return register


@retry_policy("none")
@dataclass
class NoRetry(ClientConfig):
    """One attempt; a rejected listener abandons at once."""

    retry: str = "none"
    max_attempts: int = 1

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        if self.max_attempts != 1:
            allowed = "1 with retry none (to retry: client=constant, full_jitter, ...)"
            yield "max_attempts", self.max_attempts, allowed

    def backoff(self) -> tuple[int, float, float]:
        return k.NONE, 0.0, 0.0


@retry_policy("immediate")
@dataclass
class ImmediateRetry(ClientConfig):
    """Retry at once: the worst case for retry storms."""

    retry: str = "immediate"

    def backoff(self) -> tuple[int, float, float]:
        return k.IMMEDIATE, 0.0, 0.0


@retry_policy("constant")
@dataclass
class ConstantRetry(ClientConfig):
    """Retry after a fixed ``delay_s`` (0 = immediately)."""

    retry: str = "constant"
    delay_s: float = 1.0

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from non_negative("delay_s", self.delay_s, " (seconds)")

    def backoff(self) -> tuple[int, float, float]:
        return k.CONSTANT, self.delay_s, 0.0


@dataclass
class _Capped(ClientConfig):
    """A backoff that grows from ``base_s`` and is capped at ``cap_s``."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from positive("base_s", self.base_s, " (seconds)")
        if not self.cap_s >= self.base_s:
            yield "cap_s", self.cap_s, f"a number >= base_s ({self.base_s})"


@retry_policy("exponential")
@dataclass
class Exponential(_Capped):
    """Capped exponential backoff without jitter: wait min(cap_s, base_s·2^(k−1))."""

    retry: str = "exponential"

    def backoff(self) -> tuple[int, float, float]:
        return k.EXPONENTIAL, self.base_s, self.cap_s


@retry_policy("full_jitter")
@dataclass
class FullJitter(_Capped):
    """Capped exponential backoff with full jitter: wait U(0, min(cap_s, base_s·2^(k−1)))."""

    retry: str = "full_jitter"

    def backoff(self) -> tuple[int, float, float]:
        return k.FULL_JITTER, self.base_s, self.cap_s


@retry_policy("decorrelated_jitter")
@dataclass
class DecorrelatedJitter(_Capped):
    """Decorrelated jitter (AWS): wait min(cap_s, U(base_s, 3·previous wait))."""

    retry: str = "decorrelated_jitter"

    def backoff(self) -> tuple[int, float, float]:
        return k.DECORRELATED, self.base_s, self.cap_s
