"""``experiment=metastable_retry_storm`` (``docs/metastability.md``): a 30 s capacity dip under
aggressive retries with wasted work stays down after the trigger is gone; a retry budget or
client-side adaptive throttling recovers.

Goodput is judged against the arrival rate over a window of rows ``lo < t_s <= hi`` (the ticks
ending in it): joins completed there over new listeners who arrived there. Arrivals stop at the
profile's last point (1200 s), so the windows lie inside the steady 70/s.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from sim.engine import RunResult, simulate
from tests.conftest import typed_config

EXPERIMENT = "experiment=metastable_retry_storm"
SEEDS = (1, 2, 3)
BUDGET = "client.retry_budget=0.1"
# the throttle recovers with a 60 s window (docs/metastability.md: with 30 s it stays down, with
# 120 s it recovers too slowly for the 60 s hold on some seeds)
THROTTLE = ("client.throttle_k=2", "client.throttle_window_s=60")


@functools.cache
def _run(seed: int, *extra: str) -> RunResult:
    return simulate(typed_config([EXPERIMENT, f"seed={seed}", *extra]))


def _goodput_share(r: RunResult, lo: float, hi: float) -> float:
    """Joins completed in the rows ``lo < t_s <= hi`` over the arrivals in them."""
    ts = r.timeseries
    rows = (ts["t_s"] > lo) & (ts["t_s"] <= hi)
    arrivals = int(ts["arrivals"][rows].sum())
    assert arrivals > 0.9 * 70 * (hi - lo), "the window is not inside the arrivals"
    return float(ts["joined"][rows].sum()) / arrivals


def test_the_experiment_is_the_one_these_tests_read() -> None:
    cfg = typed_config([EXPERIMENT])
    profile = cfg.scenario.profile
    assert [p.t_s for p in profile] == [0, 1200]
    assert [p.rate_per_s for p in profile] == [70, 70]
    assert cfg.criterion.name == "metastable" and cfg.criterion.trigger_end_s == 330
    (dip,) = cfg.scenario.actions
    assert (dip.do, dip.t_s, dip.for_s) == ("drain_nodes", 300, 30)
    assert cfg.platform.timeout_wastes_work


@pytest.mark.parametrize("seed", SEEDS)
def test_aggressive_retries_stay_down_after_the_trigger(seed: int) -> None:
    r = _run(seed)
    s = r.summary
    assert s["metastable"] is True
    assert s["failed"] and s["failure_criterion"] == "metastable"
    assert s["metastable_since_s"] >= 330  # after the trigger end
    # the last 300 s of the arrivals: 15 minutes after the nodes came back, still (nearly) nobody
    # gets in although the new load (70/s) is under the join capacity (96/s)
    share = _goodput_share(r, 900, 1200)
    assert share < 0.1, share
    assert np.all(r.timeseries["join_capacity_per_s"][r.timeseries["t_s"] > 331] == 96)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_retry_budget_recovers(seed: int) -> None:
    r = _run(seed, BUDGET)
    s = r.summary
    assert s["metastable"] is False, s["metastable_since_s"]
    assert s["failure_criterion"] != "metastable"
    assert s["retries_denied"] > 0  # the budget did act
    share = _goodput_share(r, 400, 1200)
    assert share >= 0.9, share


@pytest.mark.parametrize("seed", SEEDS)
def test_adaptive_throttling_recovers(seed: int) -> None:
    r = _run(seed, *THROTTLE)
    s = r.summary
    assert s["rejected"]["throttled"] > 0  # the throttle did act
    share = _goodput_share(r, 900, 1200)
    assert share >= 0.9, share
    assert s["metastable"] is False, s["metastable_since_s"]
    assert s["failure_criterion"] != "metastable"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_throttle_that_forgets_too_fast_stays_down(seed: int) -> None:
    """With a 30 s window the throttle's memory of failures is too short: metastable."""
    s = _run(seed, "client.throttle_k=2", "client.throttle_window_s=30").summary
    assert s["rejected"]["throttled"] > 0
    assert s["metastable"] is True and s["failure_criterion"] == "metastable"
