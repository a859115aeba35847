"""The engine on the reference workload: conservation, all rejection reasons, determinism."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.engine import simulate
from sim.hydra_app import conf_dir
from tests.conftest import typed_config

BENCH = ["experiment=bench_surge", "scenario.expected_arrivals=1e4"]
# what may differ between runs of the same config and seed: the clock and the tick grid
VOLATILE = ("wall_s", "ticks", "sim_end_s")
# the criterion's verdict is read off the per-tick series, so it is resolved to ticks
TICK_RESOLVED = (
    "failure_time_s",
    "time_to_stable_s",
    "stability_lost_s",
    "goodput_joins_per_s",
    "metastable_since_s",
    "start_delay_s",  # from time_to_stable_s
    "room_end_s",
)


def _stable(summary: dict[str, Any], *, ticks: bool = True) -> dict[str, Any]:
    drop = VOLATILE if ticks else VOLATILE + TICK_RESOLVED
    nan = [k for k, v in summary.items() if isinstance(v, float) and np.isnan(v)]
    return {k: "nan" if k in nan else v for k, v in summary.items() if k not in drop}


@pytest.fixture(scope="module")
def bench_run() -> Any:
    return simulate(typed_config([*BENCH, "seed=3"]))


def test_counts_are_conserved(bench_run: Any) -> None:
    s = bench_run.summary
    assert s["arrivals"] == s["joined"] + s["abandoned"]
    assert s["attempts"] == s["joined"] + sum(s["rejected"].values())
    assert not s["engine_failed"]


def test_all_four_rejection_reasons_occur(bench_run: Any) -> None:
    rejected = bench_run.summary["rejected"]
    assert set(rejected) >= {"bucket", "full", "queue", "timeout"}
    assert all(rejected[r] > 0 for r in ("bucket", "full", "queue", "timeout")), rejected


def test_arrivals_match_the_expected_count(bench_run: Any) -> None:
    s = bench_run.summary
    assert abs(s["arrivals"] - 1e4) < 4 * np.sqrt(1e4)


def test_everyone_leaves_and_the_peak_respects_the_connection_cap(bench_run: Any) -> None:
    s = bench_run.summary
    ts = bench_run.timeseries
    assert ts["concurrent"][-1] == 0
    assert ts["joined"].sum() == ts["left"].sum() == s["joined"]
    # the peak is exact: at least every tick-end count, at most the fleet's connection cap
    assert ts["concurrent"].max() <= s["peak_concurrent"] <= s["nodes"] * 1000
    assert ts["t_s"][0] - 1.0 <= s["peak_time_s"] <= ts["t_s"][-1]
    assert 0 < s["join_latency_p50_s"] <= s["join_latency_p99_s"]


def test_timeseries_columns_add_up(bench_run: Any) -> None:
    s = bench_run.summary
    ts = bench_run.timeseries
    assert ts["arrivals"].sum() == s["arrivals"]
    assert ts["attempts"].sum() == s["attempts"]
    for reason, n in s["rejected"].items():
        assert ts[f"rejected_{reason}"].sum() == n
    assert np.all(np.diff(ts["t_s"]) > 0)


def test_same_seed_same_summary() -> None:
    a = simulate(typed_config([*BENCH, "seed=5"])).summary
    b = simulate(typed_config([*BENCH, "seed=5"])).summary
    c = simulate(typed_config([*BENCH, "seed=6"])).summary
    assert _stable(a) == _stable(b)
    assert _stable(a) != _stable(c)


@pytest.mark.parametrize("tick_s", [0.25, 7.0])
def test_results_do_not_depend_on_the_tick(tick_s: float, bench_run: Any) -> None:
    """Queueing inside a tick is exact, so with no tick-boundary interactions the tick is moot."""
    other = simulate(typed_config([*BENCH, "seed=3", f"engine.tick_s={tick_s}"]))
    assert _stable(other.summary, ticks=False) == _stable(bench_run.summary, ticks=False)


def test_max_sim_s_marks_the_run_failed() -> None:
    s = simulate(typed_config([*BENCH, "engine.max_sim_s=100"])).summary
    assert s["failed"]
    assert "max_sim_s" in s["failure_reason"]


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from sim.runner import run_simulation

    run_simulation(typed_config([*BENCH, "engine.progress=true"]))
    assert "simulating" in capsys.readouterr().err
    run_simulation(typed_config(BENCH))  # progress: null and stderr is not a terminal here
    assert "simulating" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["admission=none", "client=constant", "client.delay_s=0"],
        ["client=none", "platform.placement=random"],
        ["platform.placement=least_loaded", "platform.join_queue_cap=0"],
        *([f"admission={p.stem}"] for p in sorted((conf_dir() / "admission").glob("*.yaml"))),
        *([f"client={p.stem}"] for p in sorted((conf_dir() / "client").glob("*.yaml"))),
        *(
            [f"platform.placement={name}"]
            for name in ("power_of_d", "consistent_hash", "random", "least_loaded")
        ),
        ["platform.auth_workers=4", "platform.auth_service_mean_s=0.02"],
        ["platform.timeout_wastes_work=true", "admission=none", "client=immediate"],
        ["client.patience=lognormal", "client.patience_mean_s=30"],
    ],
)
def test_default_scenario_and_policy_choices_run_and_conserve(overrides: list[str]) -> None:
    s = simulate(typed_config(overrides)).summary
    assert not s["engine_failed"]
    assert s["arrivals"] > 0
    assert s["arrivals"] == s["joined"] + s["abandoned"]
    assert s["attempts"] == s["joined"] + sum(s["rejected"].values())
