"""The ``spacesim`` command as a user runs it: help, a run, a multirun on two launchers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import pandas as pd
import pytest

from sim.archive import SCHEMA_VERSION, read_record, read_summary, read_timeseries

SMALL = ["experiment=bench_surge", "scenario.expected_arrivals=1e4"]
SUMMARY_KEYS = {
    "arrivals",
    "attempts",
    "joined",
    "abandoned",
    "rejected",
    "join_latency_p50_s",
    "join_latency_p99_s",
    "peak_concurrent",
    "peak_time_s",
    "wall_s",
    "seed",
    "failed",
    "failure_reason",
    "status",
}


def spacesim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("spacesim")
    env = os.environ | {"HYDRA_FULL_ERROR": "1"}
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def _stable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "wall_s"}


def test_top_level_help(tmp_path: Path) -> None:
    out = spacesim("--help", cwd=tmp_path)
    assert out.returncode == 0
    assert "run [overrides]" in out.stdout
    assert (
        "inspect ARCHIVE [--json]" in out.stdout
        and "sweep [--workers N] [--resume DIR]" in out.stdout
    )
    assert "threshold [--workers N] [--resume DIR]" in out.stdout


def test_run_help_lists_groups_and_examples(tmp_path: Path) -> None:
    out = spacesim("run", "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for word in ("scenario:", "admission:", "bench_surge", "hydra.run.dir", "-m"):
        assert word in out.stdout, word
    assert not (tmp_path / "results").exists()


def test_run_writes_summary_and_archive(tmp_path: Path) -> None:
    run_dir = tmp_path / "bench"
    out = spacesim("run", *SMALL, "seed=4", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert set(summary["rejected"]) >= {"bucket", "full", "queue", "timeout"}
    assert summary["seed"] == 4 and summary["failed"] is False
    assert "peak_concurrent" in out.stdout and str(run_dir) in out.stdout
    assert summary["status"] == "ok"
    with h5py.File(run_dir / "run.h5", "r") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert "bench_surge" in f["config"].attrs["yaml"]
    record = read_record(run_dir / "run.h5")
    nan_as_null = json.loads(json.dumps(record["summary"]).replace("NaN", "null"))
    assert nan_as_null | {"status": "ok"} == summary  # summary.json and run.h5 agree
    assert read_timeseries(run_dir / "run.h5")["attempts"].sum() == summary["attempts"]
    assert record["parameters"] == {
        "experiment": "bench_surge",
        "scenario.expected_arrivals": 1e4,
        "seed": 4,
    }
    assert "spacesim run" in record["provenance"]["command_line"]
    assert not list(run_dir.glob("*.tmp")) and not (run_dir / "sweep.h5").exists()


@pytest.mark.slow
def test_multirun_is_the_same_on_both_launchers_and_any_worker_count(tmp_path: Path) -> None:
    """A 4-run multirun, basic (one worker) and joblib (two): the same runs, one sweep.h5 each."""
    seeds = "seed=1,2,3,4"
    basic = tmp_path / "basic"
    joblib = tmp_path / "joblib"
    a = spacesim("run", "-m", *SMALL, seeds, f"hydra.sweep.dir={basic}", cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    b = spacesim(
        "run",
        "-m",
        *SMALL,
        seeds,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={joblib}",
        cwd=tmp_path,
    )
    assert b.returncode == 0, b.stderr
    assert f"sweep archive: {joblib / 'sweep.h5'} (4 runs, 0 not ok)" in b.stdout
    for job in ("0", "1", "2", "3"):
        sa = json.loads((basic / job / "summary.json").read_text())
        sb = json.loads((joblib / job / "summary.json").read_text())
        assert _stable(sa) == _stable(sb)
    assert _stable(json.loads((basic / "0/summary.json").read_text())) != _stable(
        json.loads((basic / "1/summary.json").read_text())
    )
    # the merge: one row per run, a column per swept parameter and per metric
    table = read_summary(joblib / "sweep.h5")
    assert table["run"].tolist() == [0, 1, 2, 3] and table["seed"].tolist() == [1, 2, 3, 4]
    assert table.attrs["parameters"] == ["experiment", "scenario.expected_arrivals", "seed"]
    assert (table["status"] == "ok").all()
    for job in range(4):
        own = json.loads((joblib / str(job) / "summary.json").read_text())
        assert table["attempts"][job] == own["attempts"]
        assert table["rejected.bucket"][job] == own["rejected"]["bucket"]
    ts = read_timeseries(joblib / "sweep.h5")
    assert ts.groupby("run")["attempts"].sum().tolist() == table["attempts"].tolist()
    # whatever the number of workers, the same table (but for wall-clock time)
    wall = [c for c in table.columns if c == "wall_s"]
    pd.testing.assert_frame_equal(
        read_summary(basic / "sweep.h5").drop(columns=wall), table.drop(columns=wall)
    )
