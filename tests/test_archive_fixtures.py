"""Frozen archives of every released schema version, read back field by field, forever.

The files in ``tests/data/`` are never written again (``tests/data/README.md`` says how each was
made); the expectations below are literal on purpose: a reader change that alters any of them
breaks archives that users keep.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.archive import read_config, read_events, read_record, read_summary, read_timeseries

DATA = Path(__file__).parent / "data"
LIBRARIES_0_1 = {
    "numpy": "2.4.6",
    "numba": "0.68.1",
    "simpy": "4.1.2",
    "scipy": "1.17.1",
    "h5py": "3.16.0",
    "hydra-core": "1.3.8",
    "omegaconf": "2.3.1",
}
BENCH_300 = ["experiment=bench_surge", "scenario.expected_arrivals=300", "platform.nodes=2"]
BENCH_300_PARAMS = {"experiment": "bench_surge", "scenario.expected_arrivals": 300.0}
TS_COLUMNS_0_1 = [  # 0.1.0 listed its datasets by name; the reader puts t_s first
    "run",
    "t_s",
    "abandoned",
    "admitted",
    "arrivals",
    "attempts",
    "concurrent",
    "connections",
    "join_latency_p50_s",
    "join_latency_p99_s",
    "joined",
    "joining",
    "left",
    "nodes_up",
    "rejected_bucket",
    "rejected_full",
    "rejected_queue",
    "rejected_timeout",
    "retries_pending",
    "waiting",
]
TS_COLUMNS_1_0 = [  # 1.0.0 keeps the engine's order
    "run",
    "t_s",
    "arrivals",
    "attempts",
    "admitted",
    "joining",
    "abandoned",
    "joined",
    "left",
    "rejected_bucket",
    "rejected_full",
    "rejected_queue",
    "rejected_timeout",
    "concurrent",
    "waiting",
    "connections",
    "nodes_up",
    "retries_pending",
    "join_latency_p50_s",
    "join_latency_p99_s",
]
# the per-tick sums of the bench_surge run at 300 arrivals, 2 nodes, seed 3 (in both versions)
TS_SUMS_300 = {
    "t_s": 1751256.0,
    "arrivals": 274,
    "attempts": 277,
    "admitted": 274,
    "joining": 274,
    "abandoned": 0,
    "joined": 274,
    "left": 274,
    "rejected_bucket": 3,
    "rejected_full": 0,
    "rejected_queue": 0,
    "rejected_timeout": 0,
    "concurrent": 78190,
    "waiting": 0,
    "connections": 78236,
    "nodes_up": 3742,
    "retries_pending": 3,
}


def test_run_0_1_0() -> None:
    path = DATA / "run-0.1.0.h5"
    r = read_record(path)
    assert r["schema_version"] == "0.1.0" and r["software_version"] == "0.1.0"
    assert r["run"] == 0 and r["job_num"] is None
    assert r["status"] == "ok" and r["error"] == ""
    assert r["created"] == "" and r["config_sha256"] == ""  # not recorded in 0.1.0
    assert r["overrides"] == [*BENCH_300, "seed=3"]
    assert r["parameters"] == BENCH_300_PARAMS | {"platform.nodes": 2, "seed": 3}
    assert r["seeds"] == {"seed": 3}
    assert r["time_base"]["tick_s"] == 1.0
    assert r["provenance"] == {
        "git_revision": "59f6ece0b11354388cf21e646f8bb9aa8c3461af",
        "host": "vm",
        "platform": "Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36",
        "python": "3.11.7",
        "libraries": LIBRARIES_0_1,
    }
    assert r["summary"] == {
        "abandoned": 0,
        "arrivals": 274,
        "attempts": 277,
        "expected_arrivals": 300.0,
        "failed": False,
        "failure_reason": None,  # written as "" by 0.1.0
        "join_latency_p50_s": 0.12269559403424068,
        "join_latency_p99_s": 0.7218786534316776,
        "joined": 274,
        "nodes": 2,
        "peak_concurrent": 161,
        "peak_time_s": 225.9874709020187,
        "scale": 0.03687860427192826,
        "seed": 3,
        "sim_end_s": 1871.0,
        "ticks": 1871,
        "wall_s": 0.18025801799996088,
        "rejected": {"bucket": 3, "full": 0, "queue": 0, "timeout": 0},
    }
    assert r["summary_units"]["peak_time_s"] == "s" and r["summary_units"]["failed"] == ""
    assert r["timeseries_units"]["t_s"] == "s" and r["timeseries_units"]["joined"] == "count"
    assert r["timeseries_units"]["join_latency_p99_s"] == "s"

    row = read_summary(path)
    assert row.shape == (1, 26) and row["run"].tolist() == [0]
    assert row["status"].tolist() == ["ok"] and row["rejected.bucket"].tolist() == [3]
    assert row.attrs["units"]["peak_time_s"] == "s"

    ts = read_timeseries(path)
    assert list(ts.columns) == TS_COLUMNS_0_1 and len(ts) == 1871
    assert {k: ts[k].sum() for k in TS_SUMS_300} == TS_SUMS_300
    assert ts["t_s"].iloc[[0, -1]].tolist() == [1.0, 1871.0]
    assert ts["join_latency_p99_s"].sum() == pytest.approx(38.317857863569905, rel=1e-12)
    assert read_events(path).empty
    cfg = read_config(path)
    assert cfg["seed"] == 3 and cfg["platform"]["nodes"] == 2
    assert cfg["scenario"]["name"] == "bench_surge" and cfg["engine"]["tick_s"] == 1.0


def test_failed_run_0_1_0() -> None:
    path = DATA / "run-0.1.0-failed.h5"
    r = read_record(path)
    assert r["status"] == "failed" and r["error"] == "RuntimeError: node table corrupted"
    assert r["parameters"]["seed"] == 5
    s = r["summary"]
    assert s["failed"] is True and s["failure_reason"] == "RuntimeError: node table corrupted"
    assert math.isnan(s["join_latency_p50_s"]) and math.isnan(s["peak_time_s"])
    assert s["rejected"] == {"bucket": 0, "full": 0, "queue": 0, "timeout": 0}
    assert read_timeseries(path).empty
    ev = read_events(path)
    assert ev["kind"].tolist() == ["failure"] and ev["target"].tolist() == [""]
    assert math.isnan(ev["t_s"][0])
    assert ev["detail"][0].startswith("Traceback (most recent call last):\n")
    assert ev["detail"][0].endswith("RuntimeError: node table corrupted\n")


def test_run_1_0_0() -> None:
    path = DATA / "run-1.0.0.h5"
    r = read_record(path)
    assert r["schema_version"] == "1.0.0" and r["software_version"] == "0.1.0"
    assert r["created"] == "2026-12-02T03:11:36+00:00"
    assert r["run"] == 7 and r["job_num"] == 7 and r["status"] == "ok" and r["error"] == ""
    assert r["config_sha256"] == "2099c3da14e676ed95403856d60098b290a5712c474a2cc2730aa8be94bc89fb"
    assert r["overrides"] == ["seed=11", "platform.nodes=4", "scenario=fixture"]
    assert r["parameters"] == {"seed": 11, "platform.nodes": 4, "scenario": "fixture"}
    assert r["seeds"] == {"seed": 11, "streams": ["arrivals", "service"], "derivation": "fixture"}
    assert r["time_base"] == {
        "time": "t_s",
        "tick_s": 0.5,
        "time_base": "t_s is the end of each tick, in s from the start of the simulation",
    }
    prov = r["provenance"]
    assert prov["git_revision"] == "745a26935509f48c7e2464ff0e38f71d04b832b0"
    assert prov["git_dirty"] == "false" and prov["host"] == "vm" and prov["python"] == "3.11.7"
    assert prov["command_line"] == "spacesim run -m seed=11 platform.nodes=4 scenario=fixture"
    assert prov["libraries"] == LIBRARIES_0_1
    s = r["summary"]
    assert math.isnan(s.pop("peak_time_s"))
    assert s == {
        "arrivals": 950,
        "attempts": 1210,
        "joined": 900,
        "abandoned": 50,
        "rejected": {"bucket": 200, "full": 0, "queue": 60, "timeout": 50},
        "join_latency_p50_s": 0.125,
        "join_latency_p99_s": 1.75,
        "peak_concurrent": 870,
        "join_rate_per_s": 40.5,
        "egress_peak_gbps": 2.25,
        "delivered_share": 0.875,
        "retry_amplification": 1.25,
        "wall_s": 0.0625,
        "seed": 11,
        "failed": False,
        "failure_reason": None,
    }
    assert r["summary_units"]["egress_peak_gbps"] == "Gb/s"
    assert r["summary_units"]["rejected.bucket"] == "count"
    assert r["timeseries_units"] == {
        "t_s": "s",
        "attempts": "count",
        "concurrent": "count",
        "join_latency_p99_s": "s",
        "egress_gbps": "Gb/s",
    }

    row = read_summary(path)
    assert list(row.columns[:5]) == ["run", "status", "seed", "platform.nodes", "scenario"]
    assert row.iloc[0]["rejected.queue"] == 60 and row.iloc[0]["scenario"] == "fixture"
    units = row.attrs["units"]
    assert [units[k] for k in ("join_rate_per_s", "egress_peak_gbps", "delivered_share")] == [
        "1/s",
        "Gb/s",
        "1",
    ]
    assert [units[k] for k in ("retry_amplification", "wall_s", "failed", "arrivals")] == [
        "1",
        "s",
        "",
        "count",
    ]

    ts = read_timeseries(path)
    assert ts["run"].tolist() == [7] * 5
    assert ts["t_s"].tolist() == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert ts["attempts"].tolist() == [10, 400, 500, 250, 50]
    assert ts["concurrent"].tolist() == [5, 300, 870, 860, 850]
    np.testing.assert_array_equal(ts["join_latency_p99_s"], [np.nan, 0.5, 1.75, 1.0, 0.25])
    assert ts["egress_gbps"].tolist() == [0.0, 0.75, 2.25, 2.0, 1.5]

    ev = read_events(path)
    assert ev.to_dict("list") == {
        "run": [7, 7, 7],
        "t_s": [1.0, 2.0, 2.5],
        "kind": ["crash", "restart", "operator"],
        "target": ["node-2", "node-2", "room"],
        "detail": ["overloaded 30 s", "", 'cap\n{"cap": 900}'],
    }
    assert read_config(path) == {
        "scenario": {"name": "fixture", "expected_arrivals": 1000.0},
        "platform": {"nodes": 4},
        "engine": {"tick_s": 0.5},
        "seed": 11,
    }


def test_sweep_1_0_0() -> None:
    path = DATA / "sweep-1.0.0.h5"
    table = read_summary(path)
    assert table.attrs["parameters"] == [
        "experiment",
        "scenario.expected_arrivals",
        "platform.nodes",
        "seed",
        "engine.max_sim_s",
    ]
    assert list(table.columns) == [
        "run",
        "status",
        *table.attrs["parameters"],
        "arrivals",
        "attempts",
        "joined",
        "abandoned",
        "rejected.bucket",
        "rejected.full",
        "rejected.queue",
        "rejected.timeout",
        "join_latency_p50_s",
        "join_latency_p99_s",
        "peak_concurrent",
        "peak_time_s",
        "expected_arrivals",
        "scale",
        "nodes",
        "sim_end_s",
        "ticks",
        "wall_s",
        "failed",
        "failure_reason",
    ]
    t = table.to_dict("list")
    assert t["run"] == [0, 1] and t["status"] == ["failed", "ok"]
    assert t["engine.max_sim_s"] == [50.0, 1e6] and t["seed"] == [3, 3]
    assert t["arrivals"] == [3, 274] and t["attempts"] == [3, 277]
    assert t["rejected.bucket"] == [0, 3] and t["peak_concurrent"] == [3, 161]
    assert t["peak_time_s"] == [44.160815551420804, 225.9874709020187]
    assert t["join_latency_p99_s"] == [0.14504016903615807, 0.7218786534316776]
    assert t["ticks"] == [50, 1871] and t["failed"] == [True, False]
    assert t["failure_reason"][0] == "engine.max_sim_s = 50.0 s reached before every listener left"
    assert math.isnan(t["failure_reason"][1])
    assert table.attrs["units"]["engine.max_sim_s"] == "s"

    failed, ok = read_record(path, 0), read_record(path, 1)
    assert failed["status"] == "failed" and failed["error"] == t["failure_reason"][0]
    assert failed["overrides"] == [*BENCH_300, "seed=3", "engine.max_sim_s=50"]
    assert ok["overrides"] == [*BENCH_300, "seed=3", "engine.max_sim_s=1000000.0"]
    assert ok["config_sha256"] == "97dc8bb1b205df19e3b2d2be64c725b68a1f9b8ecece2774ed07409e9ba32b07"
    assert ok["summary"]["failure_reason"] is None
    assert ok["provenance"]["command_line"] == (
        "spacesim run -m experiment=bench_surge scenario.expected_arrivals=300 platform.nodes=2 "
        "seed=3 engine.max_sim_s=50,1e6 hydra.sweep.dir=/tmp/fxs"
    )

    ts = read_timeseries(path)
    assert list(ts.columns) == TS_COLUMNS_1_0
    assert ts.groupby("run").size().to_dict() == {0: 50, 1: 1871}
    mine = read_timeseries(path, run=1)
    assert {k: mine[k].sum() for k in TS_SUMS_300} == TS_SUMS_300  # the 0.1.0 run, again
    assert read_events(path).empty
    assert read_config(path, run=0)["engine"]["max_sim_s"] == 50.0
    assert read_config(path, run=1)["admission"]["rate_per_s"] == 2.950288341754261
