"""Policies: admission, client retry and placement, each a typed config that names its kernel.

A policy is a dataclass: its fields are the policy's parameters (with units in their names), its
``policy``/``retry`` field is the name it is chosen by in the config (``admission=token_bucket``),
``problems()`` says what is wrong with its values, and ``kernel()`` returns the kind number and the
parameter vector that the numba pipeline dispatches on (``sim.kernels.admission``,
``sim.kernels.retry``, ``sim.kernels.placement``). ``docs/policies.md`` defines every policy.

Adding a policy: a dataclass in ``sim/policies/admission.py`` or ``sim/policies/client.py``
(registered with ``@admission_policy``/``@retry_policy``), its kernel (a module of
``sim/kernels/admission/``, or a branch of ``sim/kernels/retry.py``), and one YAML file in
``conf/admission/`` or ``conf/client/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from omegaconf import MISSING

from sim.kernels import placement as k_placement

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


ADMISSION: dict[str, type[AdmissionConfig]] = {}
PLACEMENT: dict[str, int] = {
    "random": k_placement.RANDOM,
    "power_of_two": k_placement.POWER_OF_TWO,
    "least_loaded": k_placement.LEAST_LOADED,
    "power_of_d": k_placement.POWER_OF_D,
    "consistent_hash": k_placement.CONSISTENT_HASH,
}

A = TypeVar("A", bound=AdmissionConfig)


def admission_policy(name: str) -> Callable[[type[A]], type[A]]:
    def register(cls: type[A]) -> type[A]:
        ADMISSION[name] = cls
        return cls

    return register


def positive(key: str, value: float, unit: str = "") -> Iterator[Problem]:
    if not value > 0:
        yield key, value, f"a number > 0{unit}"


def non_negative(key: str, value: float, unit: str = "") -> Iterator[Problem]:
    if not value >= 0:
        yield key, value, f"a number >= 0{unit}"


def share(key: str, value: float, low_open: bool = True) -> Iterator[Problem]:
    ok = (0 < value <= 1) if low_open else (0 <= value <= 1)
    if not ok:
        yield key, value, "a number in (0, 1]" if low_open else "a number in [0, 1]"


# the policy modules register themselves; import them after the registries exist
from sim.policies import admission as _admission  # noqa: E402, F401  (registers the policies)
from sim.policies.client import RETRY, ClientConfig, retry_policy  # noqa: E402

__all__ = [
    "ADMISSION",
    "PLACEMENT",
    "RETRY",
    "AdmissionConfig",
    "ClientConfig",
    "Problem",
    "admission_policy",
    "retry_policy",
]
