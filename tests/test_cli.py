"""The ``spacesim`` command as a user runs it: help, a run, a multirun on two launchers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import pytest

from sim.archive import SCHEMA_VERSION

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
    with h5py.File(run_dir / "run.h5", "r") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f["summary"].attrs["attempts"] == summary["attempts"]
        assert f["timeseries/attempts"][:].sum() == summary["attempts"]
        assert "bench_surge" in f["config"].attrs["yaml"]
    assert not list(run_dir.glob("*.tmp"))


@pytest.mark.slow
def test_multirun_is_the_same_on_both_launchers_and_any_worker_count(tmp_path: Path) -> None:
    seeds = "seed=1,2"
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
    for job in ("0", "1"):
        sa = json.loads((basic / job / "summary.json").read_text())
        sb = json.loads((joblib / job / "summary.json").read_text())
        assert _stable(sa) == _stable(sb)
    assert _stable(json.loads((basic / "0/summary.json").read_text())) != _stable(
        json.loads((basic / "1/summary.json").read_text())
    )
