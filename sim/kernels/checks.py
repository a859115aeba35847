"""Argument checks shared by the kernels' public wrappers, the closed forms and ``validate``.

Each returns the value converted (``float``/``int``) or raises ``ValueError`` naming the argument,
what is allowed and the value given.
"""

from __future__ import annotations

import math
from numbers import Integral


def rate(name: str, value: float, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (>= 0 with ``allow_zero``)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(x) or x < 0.0 or (x == 0.0 and not allow_zero):
        allowed = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return x


def integer(name: str, value: int, minimum: int, what: str) -> int:
    """An integer (not a bool) >= ``minimum``; ``what`` says what is allowed."""
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer {what}, got {value!r}")
    return int(value)
