"""Notification pushes (sim.kernels.pushes): λ(t) from followers × reach × tap share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.kernels.profile import Profile
from sim.kernels.pushes import Push, with_pushes

BASE = Profile.from_points([(0.0, 5.0), (1800.0, 5.0), (3600.0, 0.0)])


def test_the_density_of_a_push_integrates_to_its_people() -> None:
    p = Push(t_s=100.0, people=1e5, median_s=120.0, sigma=1.0)
    t = np.linspace(0.0, 100.0 + 120.0 * math.exp(6.0), 2_000_001)
    assert np.trapezoid(p.density(t), t) == pytest.approx(1e5, rel=1e-4)
    assert p.expected_by(100.0 + 120.0) == pytest.approx(5e4)  # half tap before the median
    assert p.expected_by(100.0) == 0.0 and float(p.density(np.array([99.0]))[0]) == 0.0


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5])
def test_the_profile_holds_the_expected_count_within_half_a_percent(sigma: float) -> None:
    pushes = [Push(600.0, 2e5, 90.0, sigma), Push(1500.0, 5e4, 300.0, sigma)]
    prof = with_pushes(BASE, pushes)
    exact = BASE.total() + sum(p.expected_by(3600.0) for p in pushes)  # lost after the end
    assert prof.total() == pytest.approx(exact, rel=5e-3)
    # and at every time, not only in total
    for t in (700.0, 1000.0, 1600.0, 2500.0):
        want = BASE.cumulative(t) + sum(p.expected_by(t) for p in pushes)
        assert prof.cumulative(t) == pytest.approx(want, rel=5e-3)


def test_reactions_after_the_window_are_lost_and_the_baseline_knots_stay() -> None:
    late = Push(3500.0, 1e5, 600.0, 1.0)  # most would tap after the profile ends at 3600 s
    prof = with_pushes(BASE, [late])
    assert prof.total() - BASE.total() == pytest.approx(late.expected_by(3600.0), rel=5e-3)
    assert prof.total() - BASE.total() < 0.05 * late.people  # P(D < 100 s) = 3.7%
    assert set(BASE.t) <= set(prof.t) and prof.t[0] == 0.0 and prof.t[-1] == 3600.0


def test_no_push_is_the_baseline_and_exp_baselines_are_refused() -> None:
    assert with_pushes(BASE, []) is BASE
    exp = Profile.from_points([(0.0, 5.0), (60.0, 1.0)], ["exp"], [30.0])
    with pytest.raises(ValueError, match="linear segments only"):
        with_pushes(exp, [Push(0.0, 1.0, 1.0, 1.0)])
