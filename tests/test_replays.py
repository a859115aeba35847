"""The replay scenarios compose and run at reduced scale, on the scenario clock."""

from __future__ import annotations

import math

import pytest

from sim import observations
from sim.engine import simulate
from tests.conftest import typed_config

SCALED = {  # 1/100 of the audience, on a platform cut down to match
    "trump_2024": ["platform=x_2024", "scenario.expected_arrivals=23000", "platform.nodes=3",
                   "platform.auth_workers=1"],
    "desantis_2023": ["platform=twitter_2023", "scenario.expected_arrivals=15000",
                      "platform.nodes=2", "platform.auth_workers=1"],
    "x_loadtest_8m": ["platform=x_2024", "scenario.expected_arrivals=20000", "platform.nodes=3"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCALED))
def test_each_replay_scenario_runs_at_reduced_scale(name: str) -> None:
    cfg = typed_config([f"scenario={name}", *SCALED[name], "engine.tick_s=5", "seed=2"])
    out = simulate(cfg)
    s, ts = out.summary, out.timeseries
    assert not s["engine_failed"], s["failure_reason"]
    assert s["arrivals"] == pytest.approx(s["expected_arrivals"], rel=0.05)
    assert ts["t_s"][0] == cfg.scenario.origin_s() + 5.0  # the first tick end, scenario clock
    if cfg.scenario.event is None:
        assert "data" not in s
        return
    fitted = [o.id for o in observations.load(cfg.scenario.event) if o.role == "fit"]
    assert list(s["data"]) == fitted
    listeners = [o for o in observations.load(cfg.scenario.event) if o.quantity == "listeners"]
    assert all(math.isfinite(s["data"][o.id]) for o in listeners if o.role == "fit")


def test_the_desantis_room_is_ended_at_its_public_time_and_relaunched() -> None:
    cfg = typed_config(["scenario=desantis_2023", *SCALED["desantis_2023"], "engine.tick_s=5"])
    out = simulate(cfg)
    end = next(o for o in observations.load("desantis_2023") if o.id == "first_room_end")
    assert out.summary["room_end_s"] == end.value  # the scenario's action takes the data's time
    i = list(out.timeseries["t_s"]).index(end.value + 60)
    assert out.timeseries["concurrent"][i] == 0  # the first room is gone
    after = out.timeseries["t_s"] > end.value + 240  # the relaunched room (for_s: 240)
    assert out.timeseries["concurrent"][after].max() > 0


# The shipped replays at full scale stay inside their events' public bands (issue 22, item 4):
# the experiments hold the shipped calibration (docs/calibration.md), one seed as shipped.
SHIPPED = {
    "trump_2024": "replay_trump_2024",
    "desantis_2023": "replay_desantis_2023",
}
MISSES = {"relaunch_peak": 0.5}
"""The misses the shipped fit is known to have, in band half widths (``band_residual``): the
DeSantis relaunched room peaks at ~258k against 270-330k (docs/calibration.md, the fit)."""


@pytest.mark.parametrize("event", sorted(SHIPPED))
def test_the_shipped_replay_stays_inside_the_public_bands(event: str) -> None:
    cfg = typed_config([f"experiment={SHIPPED[event]}", "output.timeseries=false"])
    assert cfg.scenario.event == event
    out = simulate(cfg)
    s = out.summary
    assert not s["engine_failed"], s["failure_reason"]
    outside = {
        o.id: (s["data"][o.id], o.low, o.high)
        for o in observations.load(event)
        if o.role == "fit"
        and not abs(observations.band_residual(o, s["data"][o.id])) <= MISSES.get(o.id, 0.0)
    }
    assert not outside, f"simulated (value, low, high) outside the band: {outside}"
    if event == "desantis_2023":  # the first room ended at its public time, then the relaunch
        end = next(o for o in observations.load(event) if o.id == "first_room_end")
        assert s["room_end_s"] == end.value
