"""The scenario clock (sim.clock): t = 0 at the scheduled start, negative before it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sim.clock import TIME_KEYS
from sim.config import ConfigError
from sim.engine import simulate
from tests.conftest import typed_config

# a small surge with a crash and a metastable-style trigger end, all at t >= 0
BASE = [
    "scenario.profile=[{t_s: 0, rate_per_s: 5}, {t_s: 60, rate_per_s: 80},"
    " {t_s: 180, rate_per_s: 5}, {t_s: 400, rate_per_s: 0}]",
    "platform.nodes=4",
    "platform.connections_per_node=400",
    "criterion.trigger_end_s=200",
]
ACTIONS = "scenario.actions=[{{t_s: {a}, do: crash_nodes, count: 1}}, {{t_s: {b}, do: end_room,"
ACTIONS += " share: 0.5, for_s: 30}}]"


def _shifted(dt: float) -> list[str]:
    pts = ((0, 5), (60, 80), (180, 5), (400, 0))
    prof = ", ".join(f"{{t_s: {t + dt:g}, rate_per_s: {r}}}" for t, r in pts)
    return [
        f"scenario.profile=[{prof}]",
        *BASE[1:3],
        f"criterion.trigger_end_s={200 + dt:g}",
        f"criterion.reject_share_from_s={dt:g}",
        ACTIONS.format(a=100 + dt, b=250 + dt),
    ]


def _comparable(s: dict[str, Any], dt: float) -> dict[str, Any]:
    out = {}
    for k, v in s.items():
        if k == "wall_s":
            continue
        if k in (*TIME_KEYS, "failure_time_s", "stability_lost_s", "metastable_since_s"):
            v = round(v - dt, 6)  # the same time, on the other clock
        if k == "room_end_s":
            v = v - dt
        if k in ("start_delay_s",):
            continue  # clipped at the scheduled start: compared apart
        out[k] = "nan" if isinstance(v, float) and math.isnan(v) else v
    return out


@pytest.mark.parametrize("engine", ["batched", "reference"])
def test_a_scenario_moved_in_time_gives_the_same_run_on_its_own_clock(engine: str) -> None:
    """The same scenario written 900 s earlier (starting at t = -900 s) is the same run, every
    number and every event 900 s earlier: the engines never see the negative times."""
    runs = {
        dt: simulate(typed_config([*_shifted(dt), f"engine.kind={engine}", "seed=4"]))
        for dt in (0.0, -900.0)
    }
    a, b = runs[0.0], runs[-900.0]
    assert _comparable(b.summary, -900.0) == _comparable(a.summary, 0.0)
    np.testing.assert_array_equal(b.timeseries["t_s"], a.timeseries["t_s"] - 900.0)
    for key in a.timeseries:
        if key != "t_s":
            np.testing.assert_array_equal(b.timeseries[key], a.timeseries[key], err_msg=key)
    assert [e["t_s"] for e in b.events] == [e["t_s"] - 900.0 for e in a.events]
    assert b.summary["room_end_s"] == 250.0 - 900.0 and a.summary["room_end_s"] == 250.0
    assert a.summary["crashes"] >= 1 and b.timeseries["t_s"][0] == pytest.approx(-899.0)


def test_the_failure_reason_names_times_on_the_scenario_clock() -> None:
    """The verdict is judged on the scenario clock: the reason quotes the times a user wrote."""
    out = simulate(typed_config([*_shifted(-900.0), "criterion.metastable_goodput_share=1"]))
    s = out.summary
    if s["metastable"]:
        assert f"{s['metastable_since_s']:g} s" in s["failure_reason"]
        assert s["metastable_since_s"] >= 200 - 900


def test_start_delay_is_when_the_room_became_stable_after_the_surge_began() -> None:
    s = simulate(typed_config([*BASE, "seed=1"])).summary
    want = max(0.0, s["surge_start_s"] + s["time_to_stable_s"])
    assert s["start_delay_s"] == want and math.isnan(s["room_end_s"])
    ended = simulate(
        typed_config([*BASE, "scenario.actions=[{t_s: 90, do: end_room, share: 1, for_s: 60}]"])
    ).summary
    assert s["start_delay_s"] > 90  # not stable when the operator ends the room at 90 s:
    assert ended["room_end_s"] == 90.0 and ended["start_delay_s"] >= 150  # stable after 90 + 60


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("scenario.actions=[{t_s: -901, do: crash_nodes, count: 1}]", "scenario.actions[0].t_s"),
        ("criterion.trigger_end_s=-1000", "criterion.trigger_end_s"),
        ("criterion.reject_share_from_s=-1000", "criterion.reject_share_from_s"),
        (
            "attack.join_flood=[{t_s: -1000, rate_per_s: 0}, {t_s: 0, rate_per_s: 10}]",
            "attack.join_flood[0].t_s",
        ),
    ],
)
def test_times_before_the_scenario_starts_are_refused(override: str, key: str) -> None:
    start = [*_shifted(-900.0)[:3]]
    with pytest.raises(ConfigError) as err:
        typed_config([*start, override])
    assert f"{key} = " in str(err.value) and "the scenario's start" in str(err.value)
