"""Policies: admission, client retry and placement, each a typed config that names its kernel.

A policy is a dataclass: its fields are the policy's parameters (with units in their names), its
``policy``/``retry`` field is the name it is chosen by in the config (``admission=token_bucket``),
``problems()`` says what is wrong with its values, and ``kernel()`` returns the kind number and the
parameter vector that the numba pipeline dispatches on (``sim.kernels.admission``,
``sim.kernels.retry``, ``sim.kernels.placement``).

Adding a policy: a dataclass here (registered with ``@admission_policy``/``@retry_policy``), its
branch in the kernel module, and one YAML file in ``conf/admission/`` or ``conf/client/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from omegaconf import MISSING

from sim.kernels import admission as k_admission
from sim.kernels import placement as k_placement
from sim.kernels import retry as k_retry

Problem = tuple[str, Any, str]
"""A configuration problem: (key relative to the policy, value, what is allowed)."""


@dataclass
class AdmissionConfig:
    """Base of every admission policy."""

    policy: str = MISSING

    def problems(self) -> Iterator[Problem]:
        yield from ()

    def kernel(self) -> tuple[int, np.ndarray]:
        raise NotImplementedError


@dataclass
class ClientConfig:
    """Base of every client retry policy: ``max_attempts`` includes the first attempt."""

    retry: str = MISSING
    max_attempts: int = 6

    def problems(self) -> Iterator[Problem]:
        if self.max_attempts < 1:
            yield "max_attempts", self.max_attempts, "an integer >= 1"

    def kernel(self) -> tuple[int, np.ndarray]:
        raise NotImplementedError


ADMISSION: dict[str, type[AdmissionConfig]] = {}
RETRY: dict[str, type[ClientConfig]] = {}
PLACEMENT: dict[str, int] = {
    "random": k_placement.RANDOM,
    "power_of_two": k_placement.POWER_OF_TWO,
    "least_loaded": k_placement.LEAST_LOADED,
}

A = TypeVar("A", bound=AdmissionConfig)
C = TypeVar("C", bound=ClientConfig)


def admission_policy(name: str) -> Callable[[type[A]], type[A]]:
    def register(cls: type[A]) -> type[A]:
        ADMISSION[name] = cls
        return cls

    return register


def retry_policy(name: str) -> Callable[[type[C]], type[C]]:
    def register(cls: type[C]) -> type[C]:
        RETRY[name] = cls
        return cls

    return register


def _positive(key: str, value: float, unit: str = "") -> Iterator[Problem]:
    if not value > 0:
        yield key, value, f"a number > 0{unit}"


def _non_negative(key: str, value: float) -> Iterator[Problem]:
    if not value >= 0:
        yield key, value, "a number >= 0"


@admission_policy("none")
@dataclass
class NoAdmission(AdmissionConfig):
    """Every attempt goes on to placement."""

    policy: str = "none"

    def kernel(self) -> tuple[int, np.ndarray]:
        return k_admission.NONE, np.zeros(0)


@admission_policy("token_bucket")
@dataclass
class TokenBucket(AdmissionConfig):
    """One global bucket: ``rate_per_s`` tokens a second up to ``burst``, one per attempt."""

    policy: str = "token_bucket"
    rate_per_s: float = MISSING
    burst: float = MISSING

    def problems(self) -> Iterator[Problem]:
        yield from _non_negative("rate_per_s", self.rate_per_s)
        if not self.burst >= 1:
            yield "burst", self.burst, "a number >= 1 (tokens)"

    def kernel(self) -> tuple[int, np.ndarray]:
        return k_admission.TOKEN_BUCKET, np.array([self.rate_per_s, self.burst], np.float64)


@retry_policy("none")
@dataclass
class NoRetry(ClientConfig):
    """One attempt; a rejected listener abandons at once."""

    retry: str = "none"
    max_attempts: int = 1

    def problems(self) -> Iterator[Problem]:
        if self.max_attempts != 1:
            allowed = "1 with retry none (to retry: client=constant or client=full_jitter)"
            yield "max_attempts", self.max_attempts, allowed

    def kernel(self) -> tuple[int, np.ndarray]:
        return k_retry.NONE, np.array([1.0])


@retry_policy("constant")
@dataclass
class ConstantRetry(ClientConfig):
    """Retry after a fixed ``delay_s`` (0 = immediately)."""

    retry: str = "constant"
    delay_s: float = 1.0

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from _non_negative("delay_s", self.delay_s)

    def kernel(self) -> tuple[int, np.ndarray]:
        return k_retry.CONSTANT, np.array([self.max_attempts, self.delay_s], np.float64)


@retry_policy("full_jitter")
@dataclass
class FullJitter(ClientConfig):
    """Capped exponential backoff with full jitter: wait U(0, min(cap_s, base_s·2^(k−1)))."""

    retry: str = "full_jitter"
    base_s: float = 0.5
    cap_s: float = 30.0

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from _positive("base_s", self.base_s, " (seconds)")
        if not self.cap_s >= self.base_s:
            yield "cap_s", self.cap_s, f"a number >= base_s ({self.base_s})"

    def kernel(self) -> tuple[int, np.ndarray]:
        return k_retry.FULL_JITTER, np.array(
            [self.max_attempts, self.base_s, self.cap_s], np.float64
        )
