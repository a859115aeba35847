"""Notification pushes: a surge built from first principles.

A launch surge is people reacting to notifications. A push at time ``t_i`` (the host's share,
the "starting now" notification, a re-share) reaches ``N_i = followers × reach × tap_share``
people who will tap it: the account's followers, the share of them the notification reaches
(delivered, seen), and the share of those who tap. Each of them taps after a reaction time
``D``, independently, so their first attempts form a Poisson process of intensity
``N_i · f(t − t_i)``, where ``f`` is the density of ``D``. Reaction times to notifications are
right-skewed, with a long tail of people who look at their phone later: a log-normal with median
``m`` and shape ``σ`` (``ln D ~ Normal(ln m, σ²)``) is the usual model. Pushes add to a baseline
(people who come without a push, at a rate of their own), so

    λ(t) = baseline(t) + Σ_i N_i · f_i(t − t_i).

The arrival kernels take piecewise profiles (``sim.kernels.profile``), so ``with_pushes`` puts
this intensity on knots: each push gets knots at ``t_i`` and at ``t_i + m·exp(σ·z)`` for ``z`` on
a grid over ±4 (quantiles from 3·10⁻⁵ to 1 − 3·10⁻⁵), the baseline keeps its own knots, and λ is
linear between knots (relative error of the expected count well under 1%; ``tests/test_pushes.py``
checks it). A reaction that would fall after the baseline's last knot is lost: the profile ends
there, and so do the arrivals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.kernels.profile import F64, LINEAR, Profile

_Z = np.linspace(-4.0, 4.0, 65)  # log-normal quantile grid of each push's knots, in σ units


@dataclass(frozen=True)
class Push:
    """One notification: at ``t_s``, ``people`` will tap it after a log-normal reaction time."""

    t_s: float
    people: float
    median_s: float
    sigma: float

    def density(self, t: F64) -> F64:
        """``people · f(t − t_s)``: this push's arrivals per second at times ``t``."""
        x = np.asarray(t, dtype=np.float64) - self.t_s
        out = np.zeros_like(x)
        pos = x > 0
        z = (np.log(x[pos]) - math.log(self.median_s)) / self.sigma
        out[pos] = np.exp(-0.5 * z * z) / (x[pos] * self.sigma * math.sqrt(2.0 * math.pi))
        return out * self.people

    def expected_by(self, t: float) -> float:
        """Expected taps before ``t``: ``people · P(D < t − t_s)``."""
        x = t - self.t_s
        if x <= 0:
            return 0.0
        z = (math.log(x) - math.log(self.median_s)) / self.sigma
        return self.people * 0.5 * math.erfc(-z / math.sqrt(2.0))

    def knots(self) -> F64:
        """Where this push's intensity gets knots: its time and its quantile grid."""
        return np.concatenate(([self.t_s], self.t_s + self.median_s * np.exp(self.sigma * _Z)))


def with_pushes(base: Profile, pushes: Sequence[Push]) -> Profile:
    """``base`` (linear segments only) plus the pushes' intensities, on ``base``'s window."""
    if not pushes:
        return base
    if np.any(base.shape != LINEAR):
        raise ValueError("with_pushes: the baseline profile must have linear segments only")
    grid = np.concatenate([base.t, *(p.knots() for p in pushes)])
    grid = np.unique(grid[(grid >= base.t[0]) & (grid <= base.t[-1])])
    rate = np.interp(grid, base.t, base.rate)  # the baseline, linear between its knots
    for p in pushes:
        rate += p.density(grid)
    n = grid.size - 1
    return Profile(grid, rate, np.full(n, LINEAR, dtype=np.int64), np.zeros(n))
