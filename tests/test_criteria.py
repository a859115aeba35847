"""Failure criteria on hand-built time series whose answers are worked out in the comments."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from sim.criteria import CriterionConfig, assess, derive_trying, first_held, hold_ticks, series

CONF = Path(__file__).resolve().parent.parent / "conf" / "criterion"
TICK = 10.0
# shares 0.9, p99 < 10 s, a hold of 30 s = 3 ticks of 10 s, stable within 60 s of the surge start
CRIT = CriterionConfig(
    stable_share=0.9,
    stable_p99_s=10.0,
    stable_hold_s=30.0,
    deadline_s=60.0,
    max_abandoned_share=None,
    metastable_goodput_share=0.5,
    metastable_hold_s=60.0,
)


def _crit(**changes: Any) -> CriterionConfig:
    return dataclasses.replace(CRIT, **changes)


def _ts(tick_s: float = TICK, **cols: Any) -> dict[str, np.ndarray]:
    """A time series of ``len`` ticks: the given columns, every other required one 0 (p99 NaN)."""
    n = len(next(iter(cols.values())))
    out = {k: np.zeros(n, np.int64) for k in ("arrivals", "attempts", "joining", "joined")}
    out |= {k: np.zeros(n, np.int64) for k in ("abandoned", "concurrent")}
    out["join_latency_p99_s"] = np.full(n, np.nan)
    out["t_s"] = tick_s * np.arange(1, n + 1, dtype=np.float64)
    out |= {k: np.asarray(v) for k, v in cols.items()}
    return out


def _pattern(stable: str, tick_s: float = TICK) -> dict[str, np.ndarray]:
    """'1': 100 in, 0 trying, p99 1 s (stable); '0': 10 in, 90 trying, p99 20 s (share 0.1)."""
    up = [ch == "1" for ch in stable]
    return _ts(
        tick_s,
        concurrent=[100 if u else 10 for u in up],
        trying=[0 if u else 90 for u in up],
        join_latency_p99_s=[1.0 if u else 20.0 for u in up],
    )


# A room that fills: ticks of 10 s, the surge is [0, 60).
#  tick  t_s  arrivals attempts joining joined trying concurrent share          p99   stable
#   0    10     100     120      20      10     80      10        10/90 = .111  30     0
#   1    20     100     150      60      50    120      60        60/180 = .333 25     0
#   2    30      50     160     150     100     20     160       160/180 = .889 12     0
#   3    40      20      40      40      60      0     220         1            8     1
#   4    50      10      10      10      10      0     230         1            2     1
#   5    60       0       0       0       0      0     230         1          NaN     1
#   6    70       0       0       0       0      0     230         1          NaN     1
# trying = cumsum(arrivals - joining): 80, 120, 20, 0, 0, 0, 0; NaN p99 with nobody trying meets it
FILLING = _ts(
    arrivals=[100, 100, 50, 20, 10, 0, 0],
    attempts=[120, 150, 160, 40, 10, 0, 0],
    joining=[20, 60, 150, 40, 10, 0, 0],
    joined=[10, 50, 100, 60, 10, 0, 0],
    concurrent=[10, 60, 160, 220, 230, 230, 230],
    join_latency_p99_s=[30.0, 25.0, 12.0, 8.0, 2.0, np.nan, np.nan],
)


def test_a_filling_room_becomes_stable_at_the_tick_it_should() -> None:
    s = series(FILLING, TICK, CRIT)
    assert s["trying"].tolist() == [80, 120, 20, 0, 0, 0, 0]
    assert s["connected_share"][:3] == pytest.approx([10 / 90, 60 / 180, 160 / 180])
    assert s["stable"].tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert s["goodput_per_s"].tolist() == [1.0, 5.0, 10.0, 6.0, 1.0, 0.0, 0.0]
    assert s["offered_per_s"].tolist() == [10.0, 10.0, 5.0, 2.0, 1.0, 0.0, 0.0]
    assert s["attempt_rate_per_s"].tolist() == [12.0, 15.0, 16.0, 4.0, 1.0, 0.0, 0.0]
    out = assess(FILLING, TICK, CRIT, surge_start_s=0.0, surge_end_s=60.0)
    # stable from tick 3 (starts at 30 s), held through ticks 3, 4, 5 (30 s)
    assert out["time_to_stable_s"] == 30.0
    assert out["failed"] is False and out["failure_reason"] is None
    assert math.isnan(out["failure_time_s"])
    # joins in [0, 60): 10 + 50 + 100 + 60 + 10 + 0 = 230, over 60 s
    assert out["goodput_joins_per_s"] == pytest.approx(230 / 60)
    # attempts 480 / arrivals 280
    assert out["retry_amplification"] == pytest.approx(480 / 280)
    assert out["abandoned_share"] == 0.0 and out["dropped"] == 0
    assert out["metastable"] is False and math.isnan(out["metastable_since_s"])
    assert math.isnan(out["stability_lost_s"])


def test_the_surge_start_moves_the_clock_and_the_first_tick_counts_from_it() -> None:
    # from 20 s: tick 2 (ends 30 > 20) is the first one looked at; stable from tick 3: 30 - 20
    assert assess(FILLING, TICK, CRIT, 20.0, 60.0)["time_to_stable_s"] == 10.0
    # from 35 s (inside tick 3): tick 3 is looked at, its start 30 is clipped to the surge start
    assert assess(FILLING, TICK, CRIT, 35.0, 60.0)["time_to_stable_s"] == 0.0


def test_a_room_that_is_never_stable_fails_at_the_deadline_instant() -> None:
    # 10 in, 90 trying in every tick: share 0.1, never stable
    ts = _pattern("0000000000")
    out = assess(ts, TICK, CRIT, surge_start_s=10.0, surge_end_s=60.0)
    assert math.isnan(out["time_to_stable_s"])
    assert out["failed"] is True and out["failure_criterion"] == "deadline"
    assert "deadline_s = 60 s" in out["failure_reason"]
    assert out["failure_time_s"] == 10.0 + 60.0  # the surge start plus deadline_s
    assert assess(ts, TICK, _crit(deadline_s=None), 10.0, 60.0)["failed"] is False


def test_stable_too_late_fails_the_deadline_and_in_time_passes() -> None:
    # stable from tick 7 (starts at 70 s): 70 s after the surge start
    ts = _pattern("0000000111")
    assert assess(ts, TICK, CRIT, 0.0, 60.0)["time_to_stable_s"] == 70.0
    assert assess(ts, TICK, _crit(deadline_s=60.0), 0.0, 60.0)["failure_time_s"] == 60.0
    assert assess(ts, TICK, _crit(deadline_s=70.0), 0.0, 60.0)["failed"] is False


def test_a_flicker_shorter_than_the_hold_does_not_count() -> None:
    #          index 0123456789
    ts = _pattern("0110111000")
    # hold 30 s = 3 ticks: the stretch at 1-2 is too short, the one at 4-6 is the first
    assert assess(ts, TICK, CRIT, 0.0, 60.0)["time_to_stable_s"] == 40.0
    # hold 20 s = 2 ticks: the stretch at 1-2 counts
    assert assess(ts, TICK, _crit(stable_hold_s=20.0), 0.0, 60.0)["time_to_stable_s"] == 10.0
    # a hold of 25 s needs ceil(25 / 10) = 3 ticks
    assert assess(ts, TICK, _crit(stable_hold_s=25.0), 0.0, 60.0)["time_to_stable_s"] == 40.0


def test_a_stable_stretch_reaching_the_end_of_the_run_counts_as_held() -> None:
    # the engine stops only once nothing can happen, so the last stretch cannot break
    assert assess(_pattern("0000011"), TICK, CRIT, 0.0, 60.0)["time_to_stable_s"] == 50.0
    # but a short stretch that does not reach the end does not count
    assert math.isnan(assess(_pattern("0000110"), TICK, CRIT, 0.0, 60.0)["time_to_stable_s"])


def test_stability_lost_for_the_hold_is_reported() -> None:
    #                         0123456789
    out = assess(_pattern("1110001111"), TICK, CRIT, 0.0, 60.0)
    assert out["time_to_stable_s"] == 0.0
    assert out["stability_lost_s"] == 30.0  # unstable 30-60 s: as long as the hold
    # a dip shorter than the hold is not a loss
    assert math.isnan(assess(_pattern("1110011111"), TICK, CRIT, 0.0, 60.0)["stability_lost_s"])


def test_nan_p99_meets_the_bound_only_when_nobody_is_trying() -> None:
    ts = _ts(
        concurrent=[99, 99, 0, 99, 99, 9],
        trying=[1, 0, 0, 1, 1, 1],
        join_latency_p99_s=[np.nan, np.nan, np.nan, 10.0, 9.99, 1.0],
    )
    # share .99 with nobody joined and one trying: not stable; nobody trying: stable (also the
    # empty room, share 1 by definition); p99 of exactly the bound is not below it; a share of
    # exactly stable_share (9 / 10) is enough
    s = series(ts, TICK, CRIT)
    assert s["connected_share"].tolist() == [0.99, 1.0, 1.0, 0.99, 0.99, 0.9]
    assert s["stable"].tolist() == [0, 1, 1, 0, 1, 1]


def test_the_abandoned_share_criterion() -> None:
    # 150 arrivals + 50 reconnects = 200 came; abandoned 10 + 15 = 25: share 0.125
    ts = _ts(
        arrivals=[100, 50, 0, 0],
        reconnects=[0, 0, 50, 0],
        attempts=[150, 100, 60, 0],
        abandoned=[0, 10, 0, 15],
        concurrent=[100, 100, 100, 100],
        join_latency_p99_s=[1.0, 1.0, 1.0, 1.0],
        trying=[0, 0, 0, 0],
    )
    out = assess(ts, TICK, _crit(max_abandoned_share=0.1), 0.0, 40.0)
    assert out["abandoned_share"] == pytest.approx(25 / 200)
    assert out["retry_amplification"] == pytest.approx(310 / 200)
    assert out["failed"] is True and out["failure_criterion"] == "abandoned"
    # the budget 0.1 * 200 = 20 is exceeded in tick 3 (10, then 25 abandoned): its end, 40 s
    assert out["failure_time_s"] == 40.0
    assert assess(ts, TICK, _crit(max_abandoned_share=0.125), 0.0, 40.0)["failed"] is False
    assert assess(ts, TICK, _crit(max_abandoned_share=None), 0.0, 40.0)["failed"] is False


def _storm(
    stuck_ticks: int,
    *,
    offered: int = 500,
    attempts: int = 3000,
    trying: int = 5000,
    low: int = 200,
) -> dict[str, np.ndarray]:
    """A capacity dip (ticks 2-3, trigger over at 40 s), then ``stuck_ticks`` of low goodput.

    Capacity 100/s (20/s in the dip). During the trigger 1500 arrivals a tick (150/s). After it,
    ``offered`` arrivals a tick (50/s) and ``attempts`` a tick (300/s: min(capacity, attempt
    rate) = 100/s, so the floor is 0.5 * 100 = 50/s); goodput 20/s (``low`` = 200 a tick) for
    ``stuck_ticks`` ticks, then 90/s (900 a tick), above the floor.
    """
    n = 14
    after = n - 4
    joined = [200] * 4 + [low] * stuck_ticks + [900] * (after - stuck_ticks)
    return _ts(
        arrivals=[1500] * 4 + [offered] * after,
        attempts=[6000] * 4 + [attempts] * after,
        joined=joined,
        concurrent=[1000] * n,
        trying=[trying] * n,
        join_latency_p99_s=[30.0] * n,
        join_capacity_per_s=[100.0, 100.0, 20.0, 20.0] + [100.0] * after,
    )


METASTABLE = _crit(deadline_s=None, trigger_end_s=40.0)


def test_a_metastable_run_stays_low_long_after_the_trigger() -> None:
    ts = _storm(10)  # ticks 4-13 (40-140 s) are stuck: 100 s >= the hold of 60 s
    s = series(ts, TICK, METASTABLE)
    assert s["metastable_condition"].tolist() == [0] * 4 + [1] * 10
    out = assess(ts, TICK, METASTABLE, 0.0, 40.0)
    assert out["metastable"] is True and out["metastable_since_s"] == 40.0
    assert out["failed"] is True and out["failure_criterion"] == "metastable"
    assert out["failure_time_s"] == 40.0
    quiet = _crit(deadline_s=None, trigger_end_s=40.0, metastable_fails=False)
    relaxed = assess(ts, TICK, quiet, 0.0, 40.0)
    assert relaxed["metastable"] is True and relaxed["failed"] is False


def test_a_recovering_run_is_not_metastable() -> None:
    out = assess(_storm(2), TICK, METASTABLE, 0.0, 40.0)  # goodput back to 90/s at 60 s
    assert out["metastable"] is False and out["failed"] is False


def test_a_low_stretch_shorter_than_the_hold_is_not_metastable() -> None:
    # hold 60 s = 6 ticks: 5 stuck ticks are not enough, 6 are
    assert assess(_storm(5), TICK, METASTABLE, 0.0, 40.0)["metastable"] is False
    assert assess(_storm(6), TICK, METASTABLE, 0.0, 40.0)["metastable"] is True


def test_low_goodput_during_the_trigger_does_not_count() -> None:
    # trigger over at 80 s: only ticks 8-13 (60 s, exactly the hold) are looked at
    assert assess(_storm(10), TICK, _crit(trigger_end_s=80.0), 0.0, 40.0)["metastable"] is True
    assert assess(_storm(10), TICK, _crit(trigger_end_s=81.0), 0.0, 40.0)["metastable"] is False
    # trigger_end_s null: the surge end given by the caller
    assert assess(_storm(10), TICK, _crit(trigger_end_s=None), 0.0, 80.0)["metastable"] is True
    assert assess(_storm(10), TICK, _crit(trigger_end_s=None), 0.0, 90.0)["metastable"] is False


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"offered": 1000}, "new load 100/s is not under capacity 100/s"),
        ({"trying": 0}, "nobody is trying"),
        ({"attempts": 300}, "clients back off: 30 attempts/s, floor 15/s, goodput 20/s"),
        ({"low": 500}, "goodput 50/s is not below the floor 50/s"),
    ],
)
def test_each_clause_of_the_metastable_condition(changes: dict[str, int], why: str) -> None:
    out = assess(_storm(10, **changes), TICK, METASTABLE, 0.0, 40.0)
    assert out["metastable"] is False, why


def test_metastability_is_not_judged_without_capacity() -> None:
    ts = _storm(10)
    del ts["join_capacity_per_s"]
    assert series(ts, TICK, METASTABLE)["metastable_condition"].sum() == 0
    assert assess(ts, TICK, METASTABLE, 0.0, 40.0)["metastable"] is False


def test_engine_failure_takes_precedence() -> None:
    ts = _pattern("00000")  # would fail the deadline at 60 s
    out = assess(ts, TICK, CRIT, 0.0, 40.0, engine_failure="engine.max_sim_s = 50 s reached")
    assert out["failed"] is True and out["failure_criterion"] == "engine"
    assert out["failure_reason"] == "engine.max_sim_s = 50 s reached"
    assert out["failure_time_s"] == 50.0  # the end of the last tick


def test_criteria_are_reported_in_their_order_not_by_time() -> None:
    # abandoned budget exceeded at 10 s, deadline at 60 s, metastable since 40 s: deadline first
    ts = _storm(10, trying=5000)
    ts["abandoned"] = np.array([1000] + [0] * 13)
    both = _crit(deadline_s=60.0, max_abandoned_share=0.01, trigger_end_s=40.0)
    out = assess(ts, TICK, both, 0.0, 40.0)
    assert out["failure_criterion"] == "deadline" and out["failure_time_s"] == 60.0
    out = assess(ts, TICK, dataclasses.replace(both, deadline_s=None), 0.0, 40.0)
    assert out["failure_criterion"] == "abandoned" and out["failure_time_s"] == 10.0
    only_storm = dataclasses.replace(both, deadline_s=None, max_abandoned_share=None)
    out = assess(ts, TICK, only_storm, 0.0, 40.0)
    assert out["failure_criterion"] == "metastable" and out["failure_time_s"] == 40.0


def test_optional_columns_may_be_missing() -> None:
    # no reconnects, dropped, trying or join_capacity_per_s: zeros, derived, not judged
    assert not {"reconnects", "dropped", "trying", "join_capacity_per_s"} & set(FILLING)
    out = assess(FILLING, TICK, CRIT, 0.0, 60.0)
    assert out["dropped"] == 0 and out["metastable"] is False
    assert "trying" in series(FILLING, TICK, CRIT)
    dropped = FILLING | {"dropped": np.array([0, 0, 0, 7, 0, 5, 0])}
    assert assess(dropped, TICK, CRIT, 0.0, 60.0)["dropped"] == 12
    # a given trying is used, not re-derived (and not returned again)
    given = FILLING | {"trying": np.array([0, 0, 0, 0, 0, 0, 0])}
    assert "trying" not in series(given, TICK, CRIT)
    assert series(given, TICK, CRIT)["connected_share"].tolist() == [1.0] * 7


def test_derived_trying_equals_the_given_one_on_a_consistent_series() -> None:
    # 5 people arrive at 0-10 s; 2 join at once, 1 is rejected twice and joins in tick 2, 1
    # abandons in tick 1; a crash drops 2 listeners in tick 2 and both reconnect in tick 3 and
    # join there. Trying at each end: 5-2 = 3; 3-1 = 2 (the one abandoning); 2-1 = 1; 1+2-2 = 1;
    # the last one abandons in tick 4: 0
    given = np.array([3, 2, 1, 1, 0])
    ts = _ts(
        arrivals=[5, 0, 0, 0, 0],
        reconnects=[0, 0, 0, 2, 0],
        joining=[2, 0, 1, 2, 0],
        abandoned=[0, 1, 0, 0, 1],
        trying=given,
    )
    assert derive_trying(ts).tolist() == given.tolist()
    del ts["trying"]
    assert series(ts, TICK, CRIT)["trying"].tolist() == given.tolist()


def test_goodput_counts_the_surge_window_pro_rata() -> None:
    ts = _ts(joined=[10, 20, 40, 80])
    # [5, 25): half of tick 0 (5), tick 1 (20), half of tick 2 (20) = 45 over 20 s
    assert assess(ts, TICK, CRIT, 5.0, 25.0)["goodput_joins_per_s"] == pytest.approx(45 / 20)
    assert assess(ts, TICK, CRIT, 10.0, 30.0)["goodput_joins_per_s"] == pytest.approx(60 / 20)


def test_no_arrivals_means_no_amplification_or_abandoned_share() -> None:
    out = assess(_ts(concurrent=[0, 0]), TICK, CRIT, 0.0, 20.0)
    assert math.isnan(out["retry_amplification"]) and math.isnan(out["abandoned_share"])
    assert out["time_to_stable_s"] == 0.0  # an empty room, nobody trying, is stable


def test_bad_input_is_refused() -> None:
    with pytest.raises(KeyError, match="joined"):
        series({k: v for k, v in FILLING.items() if k != "joined"}, TICK, CRIT)
    with pytest.raises(ValueError, match="tick_s"):
        series(FILLING, 0.0, CRIT)
    with pytest.raises(ValueError, match="dropped"):
        series(FILLING | {"dropped": np.zeros(3)}, TICK, CRIT)
    with pytest.raises(ValueError, match="empty"):
        assess(FILLING, TICK, CRIT, 60.0, 60.0)


def test_hold_ticks_and_first_held() -> None:
    assert [hold_ticks(h, 10.0) for h in (0.1, 10.0, 10.5, 30.0, 30.000000001)] == [1, 1, 2, 3, 3]
    cond = np.array([1, 0, 1, 1, 0, 1, 1, 1], dtype=bool)
    assert first_held(cond, 0, 2) == 2
    assert first_held(cond, 3, 2) == 5
    assert first_held(cond, 0, 4) is None
    assert first_held(cond, 0, 4, to_end=True) == 5
    assert first_held(cond[:5], 0, 4, to_end=True) is None


BAD_FIELDS = [
    ("name", ""),
    ("stable_share", 0.0),
    ("stable_share", 1.5),
    ("stable_share", float("nan")),
    ("stable_p99_s", 0.0),
    ("stable_hold_s", -1.0),
    ("deadline_s", 0.0),
    ("max_abandoned_share", 1.0),
    ("max_abandoned_share", -0.1),
    ("metastable_goodput_share", 0.0),
    ("metastable_hold_s", 0.0),
    ("trigger_end_s", float("inf")),  # times before the scenario's start: tests/test_clock.py
    ("metastable_fails", "yes"),
    ("max_reject_share", 1.0),
    ("max_reject_share", -0.5),
    ("reject_share_from_s", float("-inf")),
    ("reject_share_from_s", float("nan")),
]


@pytest.mark.parametrize(("key", "value"), BAD_FIELDS)
def test_problems_name_the_key_the_value_and_what_is_allowed(key: str, value: Any) -> None:
    problems = list(dataclasses.replace(CriterionConfig(), **{key: value}).problems())
    assert len(problems) == 1, problems
    (k, v, allowed) = problems[0]
    assert k == key and (v == value or (v != v and value != value))
    assert isinstance(allowed, str) and allowed


def test_every_field_is_checked_and_good_values_pass() -> None:
    assert {f.name for f in dataclasses.fields(CriterionConfig)} == {k for k, _ in BAD_FIELDS}
    assert list(CriterionConfig().problems()) == []
    nulls = CriterionConfig(deadline_s=None, max_abandoned_share=None, trigger_end_s=0.0)
    assert list(nulls.problems()) == []
    edges = CriterionConfig(stable_share=1.0, max_abandoned_share=0.0, metastable_fails=False)
    assert list(edges.problems()) == []


def _load(name: str) -> tuple[list[Any], CriterionConfig]:
    raw = OmegaConf.load(CONF / f"{name}.yaml")
    defaults = list(raw.pop("defaults"))
    typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(CriterionConfig), raw))
    assert isinstance(typed, CriterionConfig)
    return defaults, typed


@pytest.mark.parametrize("name", ["default", "metastable"])
def test_the_criterion_yaml_files_load_into_the_schema(name: str) -> None:
    text = (CONF / f"{name}.yaml").read_text()
    assert text.startswith("# ") and text.splitlines()[1] == "defaults:"
    defaults, typed = _load(name)
    assert defaults == ["/schema/criterion/criterion@_here_", "_self_"]
    assert list(typed.problems()) == []


def test_the_default_yaml_is_the_dataclass_default_and_metastable_has_no_deadline() -> None:
    assert _load("default")[1] == CriterionConfig()
    storm = _load("metastable")[1]
    assert storm.deadline_s is None and storm.metastable_fails is True
    assert storm.name == "metastable"
