"""The public data points of the replayed events: the files against events.md, the loader's rules,
and measuring a data point on hand-built time series whose answers are worked out in comments."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.observations import (
    COLUMNS,
    QUANTITIES,
    ROLES,
    Observation,
    ObservationError,
    band_residual,
    events,
    load,
    load_file,
    measure,
    measure_all,
)

MIN = 60.0


def _by_id(event: str) -> dict[str, Observation]:
    return {o.id: o for o in load(event)}


def _contains(obs: Observation, x: float) -> bool:
    return obs.low <= x <= obs.high


# --- the files ---------------------------------------------------------------------------------


def test_both_events_load_with_unique_ids() -> None:
    assert events() == ["desantis_2023", "trump_2024"]
    for event in events():
        obs = load(event)
        assert len({o.id for o in obs}) == len(obs) > 5
        assert all(o.quantity in QUANTITIES and o.role in ROLES for o in obs)
        assert all(o.low <= o.value <= o.high and o.source for o in obs)


def test_unknown_event_lists_the_known_ones() -> None:
    with pytest.raises(ObservationError, match=r"'nope'.*desantis_2023, trump_2024"):
        load("nope")


def test_desantis_facts() -> None:
    d = _by_id("desantis_2023")
    # 18:00 scheduled start is the clock's origin
    assert (d["scheduled_start"].quantity, d["scheduled_start"].value) == ("event_s", 0.0)
    assert d["scheduled_start"].role == "input"
    # degraded 18:00-18:20
    assert _contains(d["first_room_degraded_until"], 20 * MIN)
    # first room ended after ~21 min (band 18-25 min), an input of the scenario
    end = d["first_room_end"]
    assert (end.quantity, end.role, end.t_s) == ("room_end_s", "input", None)
    assert _contains(end, 21 * MIN) and end.low == 18 * MIN and end.high == 25 * MIN
    # relaunch ~18:25
    assert d["relaunch"].value == 25 * MIN and d["relaunch"].role == "input"
    # start delay reported 18, 20-21, 25, 30 min; DeSantis heard at ~18:25
    delay = d["start_delay_s"]
    assert delay.quantity == "start_delay_s" and delay.role == "fit" and delay.value == 25 * MIN
    assert all(_contains(delay, m * MIN) for m in (18, 20, 21, 25, 30))
    # first room ~668k (Fortune), ~678k (IANS/WION), >500k (The Hill), "more than 700k" (campaign)
    first = d["first_room_at_end"]
    assert first.quantity == "listeners" and first.role == "fit" and not first.weak
    assert all(_contains(first, x) for x in (500_000, 668_000, 678_000, 700_000))
    assert first.t_s is not None and first.t_s < end.value
    # nearly 1 M trying to get in (campaign manager): demand, weak
    demand = d["demand_first_room"]
    assert demand.quantity == "demand" and demand.weak and _contains(demand, 1_000_000)
    assert d["trying_first_room"].quantity == "trying" and d["trying_first_room"].weak
    # relaunched room ~300k (Fortune), ~304k (WION): a peak after the relaunch
    peak = d["relaunch_peak"]
    assert peak.quantity == "peak_listeners" and peak.t_s == d["relaunch"].value
    assert _contains(peak, 300_000) and _contains(peak, 304_000)
    # "just under 100,000" when Sacks spoke; ~161,000 during the speech
    assert d["sacks_spoke"].high == 100_000 and d["sacks_spoke"].quantity == "listeners"
    assert d["during_speech"].value == 161_000 and d["during_speech"].quantity == "listeners"
    # 3.2 M cumulative next morning, context (it includes recording plays)
    cum = d["cumulative_next_morning"]
    assert (cum.quantity, cum.value, cum.role) == ("cumulative_listeners", 3.2e6, "context")


def test_trump_facts() -> None:
    t = _by_id("trump_2024")
    # shared ~19:45, 15 min before the scheduled start: an input
    assert (t["space_shared"].value, t["space_shared"].role) == (-900.0, "input")
    assert t["scheduled_start"].value == 0.0
    # ~100,000 at 20:00; ~11 M post views by then (context)
    at_start = t["listeners_at_start"]
    assert (at_start.quantity, at_start.t_s, at_start.value) == ("listeners", 0.0, 100_000)
    assert t["post_views_at_start"].role == "context" and t["post_views_at_start"].value == 11e6
    # DDoS claim ~20:18
    assert _contains(t["ddos_claim"], 18 * MIN)
    # ~20:30: "a few hundred thousand"
    few = t["listeners_at_2030"]
    assert (few.t_s, few.low, few.high) == (30 * MIN, 200_000, 400_000)
    # starts 20:42, about 42 min late, ~915,000 (0.9 M) listeners shown
    delay = t["start_delay_s"]
    assert delay.role == "fit" and _contains(delay, 42 * MIN) and delay.value == 42 * MIN
    started = t["listeners_at_conversation_start"]
    assert started.t_s == 42 * MIN and started.value == 915_000 and _contains(started, 0.9e6)
    # ~21:40: ~1.3 M (1.2-1.5 M); X's own measurement peaked at 1.3 M
    late = t["listeners_at_2140"]
    assert (late.t_s, late.value, late.low, late.high) == (100 * MIN, 1.3e6, 1.2e6, 1.5e6)
    assert t["peak_conversation"].quantity == "peak_listeners"
    assert _contains(t["peak_conversation"], 1.3e6)
    # the partisan 1.5 M concurrent claim and 73 M views: weak, context
    claim = t["campaign_concurrent_claim"]
    assert claim.weak and claim.role == "context" and claim.value == 1.5e6
    views = t["post_views"]
    assert views.weak and views.role == "context" and views.value == 73e6
    # 8 M load test: context
    assert (t["load_test_claim"].value, t["load_test_claim"].role) == (8e6, "context")
    # ran over two hours from 20:42
    assert t["conversation_end"].low == 42 * MIN + 2 * 3600


def test_only_partisan_sources_are_weak() -> None:
    weak = {(e, o.id) for e in events() for o in load(e) if o.weak}
    assert weak == {
        ("desantis_2023", "demand_first_room"),
        ("desantis_2023", "trying_first_room"),
        ("trump_2024", "campaign_concurrent_claim"),
        ("trump_2024", "post_views"),
    }


# --- the loader's rules ------------------------------------------------------------------------

GOOD = "peak,peak_listeners,0,60,5,1,9,listeners,fit,false,src,a note"


def _write(tmp_path: Path, *rows: str, header: str = ",".join(COLUMNS)) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path


def test_a_good_file_loads_with_quoted_fields(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD, 'delay,start_delay_s,,,60,0,90,s,input,true,"a, b","x, ""y"""')
    peak, delay = load_file(path)
    assert peak == Observation(
        "peak",
        "peak_listeners",
        0.0,
        60.0,
        5.0,
        1.0,
        9.0,
        "listeners",
        "fit",
        False,
        "src",
        "a note",
    )
    assert (delay.t_s, delay.weak, delay.source, delay.note) == (None, True, "a, b", 'x, "y"')


@pytest.mark.parametrize(
    ("row", "column", "value"),
    [
        ("Peak,peak_listeners,0,60,5,1,9,listeners,fit,false,src,", "id", "Peak"),
        ("x,loudness,0,,5,1,9,listeners,fit,false,src,", "quantity", "loudness"),
        ("x,listeners,,,5,1,9,listeners,fit,false,src,", "t_s", ""),
        ("x,room_end_s,10,,5,1,9,s,fit,false,src,", "t_s", "10.0"),
        ("x,peak_listeners,60,60,5,1,9,listeners,fit,false,src,", "t_to_s", "60.0"),
        ("x,peak_listeners,60,,5,1,9,listeners,fit,false,src,", "t_to_s", "None"),
        ("x,listeners,0,60,5,1,9,listeners,fit,false,src,", "t_to_s", "60.0"),
        ("x,listeners,0,,5,6,9,listeners,fit,false,src,", "low", "6.0"),
        ("x,listeners,0,,5,1,4,listeners,fit,false,src,", "high", "4.0"),
        ("x,listeners,0,,five,1,9,listeners,fit,false,src,", "value", "five"),
        ("x,listeners,0,,nan,1,9,listeners,fit,false,src,", "value", "nan"),
        ("x,listeners,0,,5,1,9,s,fit,false,src,", "unit", "s"),
        ("x,listeners,0,,5,1,9,listeners,guess,false,src,", "role", "guess"),
        ("x,listeners,0,,5,1,9,listeners,fit,yes,src,", "weak", "yes"),
        ("x,listeners,0,,5,1,9,listeners,fit,false,,", "source", ""),
        ("x,listeners,0,,5,1,9,listeners,fit,false,src", "(row)", "x,listeners"),
        (GOOD, "id", "peak"),  # after GOOD: a duplicate id
    ],
)
def test_each_rule_names_file_row_column_and_value(
    tmp_path: Path, row: str, column: str, value: str
) -> None:
    path = _write(tmp_path, GOOD, row)
    with pytest.raises(ObservationError) as err:
        load_file(path)
    msg = str(err.value)
    assert msg.startswith("bad.csv line 3, id ")
    assert f"column {column!r} = " in msg and value in msg and "allowed: " in msg


def test_a_wrong_header_is_named(tmp_path: Path) -> None:
    with pytest.raises(ObservationError, match=r"bad\.csv: header .*expected 'id,quantity"):
        load_file(_write(tmp_path, GOOD, header="id,value"))


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    assert [o.id for o in load_file(_write(tmp_path, "", GOOD, ""))] == ["peak"]


# --- measuring a run ---------------------------------------------------------------------------

# Four ticks of 10 s ending at 10, 20, 30, 40 s.
TS = {
    "t_s": np.array([10.0, 20.0, 30.0, 40.0]),
    "concurrent": np.array([5, 50, 30, 7]),
    "trying": np.array([100, 20, 0, 0]),
    "joining": np.array([5, 45, 3, 0]),
}
SUMMARY = {"start_delay_s": 25.0, "room_end_s": 35.0, "relaunch": 12.0, "claimed_capacity": 8e6}


def _obs(
    quantity: str, t_s: float | None = None, t_to_s: float | None = None, **kw: Any
) -> Observation:
    base = Observation(
        "relaunch", quantity, t_s, t_to_s, 10.0, 0.0, 20.0, "s", "fit", False, "src", ""
    )
    return dataclasses.replace(base, **kw)


@pytest.mark.parametrize(
    ("quantity", "t_s", "expected"),
    [
        ("listeners", 20.0, 50.0),  # a tick end: its state
        ("listeners", 29.9, 50.0),  # between 20 and 30: the state at 20
        ("listeners", 9.9, 0.0),  # before the first tick end: nobody yet
        ("listeners", 40.0, 7.0),  # the last tick end
        ("listeners", 40.1, 0.0),  # after the run: everyone has left
        ("trying", 15.0, 100.0),
        ("demand", 25.0, 70.0),  # 50 in + 20 trying at 20 s
        ("cumulative_listeners", 25.0, 50.0),  # joins of the ticks ending at 10 and 20
        ("cumulative_listeners", 99.0, 53.0),
        ("cumulative_listeners", 5.0, 0.0),
    ],
)
def test_state_and_cumulative(quantity: str, t_s: float, expected: float) -> None:
    assert measure(_obs(quantity, t_s), TS, SUMMARY) == expected


@pytest.mark.parametrize(
    ("t_s", "t_to_s", "expected"),
    [
        (10.0, 40.0, 50.0),  # all four ticks
        (21.0, 40.0, 30.0),  # tick ends 30 and 40
        (30.0, 30.0 + 1e-9, 30.0),  # one tick end, inclusive
        (31.0, 39.0, 30.0),  # no tick end inside: the state at 31 (that of 30)
        (50.0, 60.0, 0.0),  # after the run
    ],
)
def test_peak_window(t_s: float, t_to_s: float, expected: float) -> None:
    assert measure(_obs("peak_listeners", t_s, t_to_s), TS, SUMMARY) == expected


def test_summary_quantities_and_missing_data_are_nan() -> None:
    assert measure(_obs("start_delay_s"), TS, SUMMARY) == 25.0
    assert measure(_obs("room_end_s"), TS, SUMMARY) == 35.0
    assert measure(_obs("event_s"), TS, SUMMARY) == 12.0  # keyed by the id, "relaunch"
    assert measure(_obs("claimed_capacity"), TS, SUMMARY) == 8e6
    assert math.isnan(measure(_obs("start_delay_s"), TS, {}))
    assert math.isnan(measure(_obs("room_end_s"), TS, {"room_end_s": None}))
    assert math.isnan(measure(_obs("event_s", id="other"), TS, SUMMARY))
    assert math.isnan(measure(_obs("views", 10.0), TS, SUMMARY))
    assert math.isnan(measure(_obs("trying", 10.0), {"t_s": TS["t_s"]}, SUMMARY))
    assert math.isnan(measure(_obs("listeners", 10.0), {}, SUMMARY))
    empty = {k: v[:0] for k, v in TS.items()}
    assert math.isnan(measure(_obs("listeners", 10.0), empty, SUMMARY))


def test_measure_all_on_a_real_event_file() -> None:
    obs = load("trump_2024")
    ts = {"t_s": np.array([0.0, 2520.0, 6000.0]), "concurrent": np.array([1, 2, 3])}
    ts |= {"trying": np.zeros(3), "joining": np.array([1, 1, 1])}
    got = measure_all(obs, ts, {"start_delay_s": 2520.0})
    assert list(got) == [o.id for o in obs]
    assert got["listeners_at_start"] == 1 and got["listeners_at_2140"] == 3
    assert got["peak_conversation"] == 3 and got["start_delay_s"] == 2520.0
    assert math.isnan(got["post_views"]) and math.isnan(got["space_shared"])


# --- the residual ------------------------------------------------------------------------------


def test_band_residual_is_zero_inside_and_signed_outside() -> None:
    band = _obs("listeners", 0.0, value=670_000.0, low=500_000.0, high=720_000.0)  # half 110k
    assert band_residual(band, 600_000.0) == 0.0
    assert band_residual(band, 500_000.0) == 0.0 and band_residual(band, 720_000.0) == 0.0
    assert band_residual(band, 830_000.0) == pytest.approx(1.0)
    assert band_residual(band, 445_000.0) == pytest.approx(-0.5)
    assert math.isnan(band_residual(band, math.nan))


def test_band_residual_of_a_zero_width_band() -> None:
    big = _obs("claimed_capacity", value=8e6, low=8e6, high=8e6)  # half width 5% of 8e6 = 4e5
    assert band_residual(big, 8.8e6) == pytest.approx(2.0)
    zero = _obs("event_s", value=0.0, low=0.0, high=0.0)  # half width 1 s
    assert band_residual(zero, -3.0) == -3.0 and band_residual(zero, 0.0) == 0.0
