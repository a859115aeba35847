"""Edge cases with defined results (issue 23, item 3); the table is in docs/model.md."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sim.engine import simulate
from tests.conftest import typed_config
from tests.test_cli import spacesim

NO_ARRIVALS = "scenario.profile=[{t_s: 0, rate_per_s: 0},{t_s: 60, rate_per_s: 0}]"


def test_no_arrivals_with_expected_arrivals_is_refused(tmp_path: Path) -> None:
    out = spacesim(
        "run", NO_ARRIVALS, "scenario.expected_arrivals=1000", "hydra.run.dir=r", cwd=tmp_path
    )
    assert out.returncode == 2, out.stderr
    assert "scenario.expected_arrivals" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists()


def test_no_nodes_is_refused(tmp_path: Path) -> None:
    out = spacesim("run", "platform.nodes=0", "hydra.run.dir=r", cwd=tmp_path)
    assert out.returncode == 2 and "platform.nodes = 0" in out.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("engine", ["batched", "reference"])
def test_no_arrivals_runs_empty(engine: str) -> None:
    eng = "default" if engine == "batched" else engine
    s = simulate(typed_config([NO_ARRIVALS, f"engine={eng}"])).summary
    assert s["arrivals"] == 0 and s["joined"] == 0 and s["attempts"] == 0
    assert math.isnan(s["join_latency_p50_s"]) and s["engine_failed"] is False


def test_zero_patience_is_refused() -> None:
    from sim.config import ConfigError

    with pytest.raises(ConfigError, match=r"client\.patience_mean_s"):
        typed_config(["client.patience=fixed", "client.patience_mean_s=0"])


SHORT = "scenario.profile=[{t_s: 0, rate_per_s: 50},{t_s: 0.5, rate_per_s: 50}]"
STRETCH = (
    "scenario.profile=[{t_s: 0, rate_per_s: 20},{t_s: 30, rate_per_s: 20},"
    "{t_s: 30.001, rate_per_s: 0},{t_s: 90, rate_per_s: 0},{t_s: 90.001, rate_per_s: 20},"
    "{t_s: 120, rate_per_s: 20}]"
)


@pytest.mark.parametrize("engine", ["default", "reference"])
def test_horizon_shorter_than_a_tick_runs_and_conserves(engine: str) -> None:
    r = simulate(typed_config([SHORT, f"engine={engine}"]))
    s = r.summary
    assert s["arrivals"] == r.timeseries["arrivals"].sum() > 0
    assert s["arrivals"] == s["joined"] + s["abandoned"] and s["engine_failed"] is False


@pytest.mark.parametrize("engine", ["default", "reference"])
def test_zero_rate_stretch_has_no_arrivals(engine: str) -> None:
    r = simulate(typed_config([STRETCH, f"engine={engine}"]))
    ts = r.timeseries
    quiet = (ts["t_s"] > 32) & (ts["t_s"] <= 90)
    assert ts["arrivals"][quiet].sum() == 0
    assert r.summary["arrivals"] == r.summary["joined"] + r.summary["abandoned"]


# ---------------------------------------------------------------- a single listener
# expected_arrivals=1 on a 1 s profile: a Poisson count of mean 1; seed 6 draws exactly one
# arrival (seeds 0-3 draw none), the same one in both engines (the same arrivals stream)
ONE = ["scenario.profile=[{t_s: 0, rate_per_s: 1},{t_s: 1, rate_per_s: 1}]"]
ONE += ["scenario.expected_arrivals=1", "scenario.session_mean_s=20", "seed=6"]


@pytest.mark.parametrize("engine", ["default", "reference"])
def test_a_single_listener_joins_and_the_room_is_stable(engine: str) -> None:
    r = simulate(typed_config([*ONE, f"engine={engine}"]))
    s, ts = r.summary, r.timeseries
    assert (s["arrivals"], s["attempts"], s["joined"], s["abandoned"]) == (1, 1, 1, 0)
    assert s["peak_concurrent"] == 1 and ts["concurrent"].max() == 1
    assert ts["arrivals"].sum() == ts["joined"].sum() == ts["left"].sum() == 1
    assert ts["concurrent"][-1] == 0 and ts["trying"][-1] == 0
    assert not any(s["rejected"].values()) and s["retry_amplification"] == 1.0
    assert s["join_latency_p50_s"] == s["join_latency_p99_s"] > 0  # one join: one latency
    assert s["failed"] is False and s["failure_reason"] is None and s["time_to_stable_s"] == 0


RAMP_EMPTY = "scenario.profile=[{t_s: 0, rate_per_s: 0},{t_s: 1, rate_per_s: 2}]"


@pytest.mark.parametrize("engine", ["default", "reference"])
def test_a_room_over_by_the_surge_start_is_not_failed(engine: str) -> None:
    # the ramp peaks at its last point: the surge starts (1 s) when the run ends (seed 0: nobody
    # came); no tick ends after the surge start, the room's last tick judges it: stable at once
    s = simulate(typed_config([RAMP_EMPTY, "scenario.expected_arrivals=1", f"engine={engine}"]))
    s = s.summary
    assert (s["arrivals"], s["ticks"], s["surge_start_s"]) == (0, 1, 1.0)
    assert s["failed"] is False and s["failure_reason"] is None and s["time_to_stable_s"] == 0


# ---------------------------------------------------------------- 10^5 join workers
BURST = "scenario.profile=[{t_s: 0, rate_per_s: 1000},{t_s: 5, rate_per_s: 1000}]"
WIDE = [BURST, "platform.join_workers=100000", "admission=none", "client=none"]
WIDE += ["scenario.session_mean_s=10"]


@pytest.mark.parametrize("engine", ["default", "reference"])
def test_a_hundred_thousand_join_workers_serve_everyone_at_once(engine: str) -> None:
    import tracemalloc

    cfg = typed_config([*WIDE, f"engine={engine}"])
    tracemalloc.start()
    try:
        r = simulate(cfg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    s, ts = r.summary, r.timeseries
    # 16 nodes x 10^5 workers: M/M/inf, nobody waits; 16,000 connections hold ~5,000 listeners
    assert s["arrivals"] == s["attempts"] == s["joined"] > 4500 and s["abandoned"] == 0
    assert not any(s["rejected"].values()) and ts["waiting"].max() == 0
    mean = cfg.platform.join_service_mean_s  # 0.1667 s
    assert ts["join_capacity_per_s"][0] == pytest.approx(16 * 100000 / mean)
    # join latency = the service time, exponential of that mean: the median mean·ln 2 (standard
    # error ~0.0024 s at n ~ 5,000) and the 99th percentile mean·ln 100 (~0.024 s); 5 errors
    assert abs(s["join_latency_p50_s"] - mean * math.log(2)) < 0.012
    assert abs(s["join_latency_p99_s"] - mean * math.log(100)) < 0.12
    assert s["failed"] is False and s["engine_failed"] is False
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB traced"


# ---------------------------------------------------------------- every node down at t = 0
# nobody arrives before t = 0 (the first tick, [-1, 0), is empty); the operator crashes all 16
# nodes at its end, t = 0: they are down for the ticks [0, 60) and back at 60 (restart_s = 60)
DOWN = [
    "scenario.profile=[{t_s: -1, rate_per_s: 0},{t_s: 0, rate_per_s: 0},"
    "{t_s: 0.001, rate_per_s: 20},{t_s: 120, rate_per_s: 20}]",
    "scenario.actions=[{t_s: 0, do: crash_nodes, count: 16}]",
    "admission=none",
    "client=none",
    "scenario.session_mean_s=30",
]


@pytest.mark.parametrize("engine", ["default", "reference"])
def test_every_node_down_at_zero_rejects_until_the_restart(engine: str) -> None:
    r = simulate(typed_config([*DOWN, f"engine={engine}"]))
    s, ts, t = r.summary, r.timeseries, r.timeseries["t_s"]
    down = (t > 0) & (t <= 60)
    assert ts["nodes_up"][t == 0] == 16 and (ts["nodes_up"][down] == 0).all()
    assert (ts["nodes_up"][t > 60] == 16).all()
    crashes = [e for e in r.events if e["kind"] == "crash"]
    restarts = [e for e in r.events if e["kind"] == "restart"]
    assert len(crashes) == len(restarts) == s["crashes"] == 16
    assert {e["t_s"] for e in crashes} == {0.0} and {e["t_s"] for e in restarts} == {60.0}
    assert all(e["detail"].endswith("down until 60 s") for e in crashes)  # the scenario clock
    # everyone who came while the fleet was down was rejected ("down") and gave up (no retries)
    came_down = int(ts["arrivals"][down].sum())
    assert came_down > 1000 and ts["joined"][down].sum() == ts["concurrent"][down].sum() == 0
    assert {k: v for k, v in s["rejected"].items() if v} == {"down": came_down}
    assert s["abandoned"] == came_down and s["joined"] == s["arrivals"] - came_down > 1000
    assert ts["joined"][t == 61] > 0  # the first tick after the restart
    assert s["arrivals"] == s["attempts"] == s["joined"] + s["abandoned"]
    assert s["failed"] is True and s["failure_criterion"] == "abandoned"
    assert s["failure_reason"].startswith(f"abandoned share {came_down / s['arrivals']:.4g} >")


# ---------------------------------------------------------------- archive of a horizon < tick
EMPTY_SHORT = "scenario.profile=[{t_s: 0, rate_per_s: 0},{t_s: 0.5, rate_per_s: 0}]"


def test_a_horizon_shorter_than_a_tick_reads_back_from_the_archive(tmp_path: Path) -> None:
    from sim.archive import read_events, read_record, read_summary, read_timeseries
    from tests.conftest import make_archives

    dirs = make_archives(
        tmp_path,
        {
            "batched": ["run", SHORT],
            "reference": ["run", SHORT, "engine=reference"],
            "empty": ["run", EMPTY_SHORT],
        },
    )
    for name in ("batched", "reference"):
        h5 = dirs[name] / "run.h5"
        row = read_summary(h5).iloc[0]
        ts = read_timeseries(h5)
        assert read_record(h5)["status"] == "ok" and row["status"] == "ok"
        assert len(ts) == row["ticks"] and (ts["t_s"] == 1.0 + ts.index).all()
        assert ts["arrivals"].iloc[0] == ts["arrivals"].sum() == row["arrivals"] > 0
        assert row["arrivals"] == row["joined"] + row["abandoned"] and not row["failed"]
    # nobody came: one tick, one row of zeros, no events
    h5 = dirs["empty"] / "run.h5"
    row, ts = read_summary(h5).iloc[0], read_timeseries(h5)
    assert (len(ts), row["ticks"], row["arrivals"], bool(row["failed"])) == (1, 1, 0, False)
    assert ts["t_s"].tolist() == [1.0] and ts[["arrivals", "joined", "concurrent"]].sum().sum() == 0
    assert len(read_events(h5)) == 0
