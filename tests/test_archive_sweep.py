"""Sweeps end to end: killed with SIGKILL and resumed, ``spacesim sweep``, ``spacesim inspect``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from sim import cli
from sim.archive import RunRecord, read_summary, read_timeseries, write_run

EXE = Path(sys.executable).with_name("spacesim")
DATA = Path(__file__).parent / "data"
SWEEP = [
    "experiment=bench_surge",
    "scenario.expected_arrivals=2000",
    "platform.nodes=4",
    "seed=1,2,3,4,5,6",
]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
SKIPPED = "(complete: not run again)"


def spacesim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _without_wall_time(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in df.columns if c == "wall_s"])


@pytest.mark.slow
def test_a_sweep_killed_midway_resumes_to_the_same_table(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    cmd = [str(EXE), "run", "-m", *SWEEP, *JOBLIB, f"hydra.sweep.dir={killed}"]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        start_new_session=True,  # its own process group: the parent and every loky worker
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    try:
        while not list(killed.glob("*/run.h5")):
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no run finished in time"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    finished = sorted(killed.glob("*/run.h5"))
    assert 1 <= len(finished) < 6 and not (killed / "sweep.h5").exists()
    for path in finished:  # every finished run reads back
        assert read_summary(path)["status"].tolist() == ["ok"]
        assert not read_timeseries(path).empty
    for path in killed.rglob("summary.json"):  # nothing under a final name is partial
        json.loads(path.read_text())

    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(SKIPPED) == len(finished)
    assert not list(killed.rglob("*.tmp"))

    fresh = tmp_path / "fresh"  # uninterrupted, one worker
    whole = spacesim("run", "-m", *SWEEP, f"hydra.sweep.dir={fresh}", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    resumed_table = _without_wall_time(read_summary(killed / "sweep.h5"))
    assert resumed_table["run"].tolist() == [0, 1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(
        resumed_table, _without_wall_time(read_summary(fresh / "sweep.h5"))
    )


def test_sweep_resume_reuses_the_recorded_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = {
        "hydra": {
            "overrides": {
                "hydra": [
                    "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2",
                    f"hydra.sweep.dir={tmp_path}",
                    "hydra.mode=MULTIRUN",
                ],
                "task": ["experiment=bench_surge", "seed=1,2,3"],
            }
        }
    }
    OmegaConf.save(OmegaConf.create(recorded), tmp_path / "multirun.yaml")
    calls: list[list[str]] = []

    def run(args: list[str], command: Sequence[str] = ()) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(cli, "cmd_run", run)
    assert cli.main(["sweep", "--resume", str(tmp_path)]) == 0
    assert calls[-1] == [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "experiment=bench_surge",
        "seed=1,2,3",
        f"hydra.sweep.dir={tmp_path}",
    ]
    # another launcher drops the old one's settings; a key given again replaces the old value
    assert cli.main(["sweep", "--resume", str(tmp_path), "hydra/launcher=basic", "seed=4"]) == 0
    assert calls[-1] == [
        "-m",
        "experiment=bench_surge",
        "hydra/launcher=basic",
        "seed=4",
        f"hydra.sweep.dir={tmp_path}",
    ]


def test_the_sweep_command_refuses_a_dir_that_holds_runs(tmp_path: Path) -> None:
    write_run(tmp_path / "0", RunRecord(summary={"failed": False}, job_num=0))
    out = spacesim("sweep", "seed=1,2", f"hydra.sweep.dir={tmp_path}", cwd=tmp_path)
    assert out.returncode == 2
    assert f"spacesim sweep --resume {tmp_path}" in out.stderr
    out = spacesim("sweep", "--resume", str(tmp_path / "0"), cwd=tmp_path)
    assert out.returncode == 2 and "no multirun.yaml" in out.stderr


def test_inspect_a_sweep_as_text_and_json(tmp_path: Path) -> None:
    text = spacesim("inspect", str(DATA / "sweep-1.0.0.h5"), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    for word in ("spacesim.sweep 1.0.0", "git_revision", "runs: 2 (1 not ok)", "/summary"):
        assert word in text.stdout, word
    assert "join_latency_p99_s [s]" in text.stdout and "50.0 s reached" in text.stdout
    out = spacesim("inspect", "--json", str(DATA / "sweep-1.0.0.h5"), cwd=tmp_path)
    info = json.loads(out.stdout)
    assert info["schema_version"] == "1.0.0" and [r["status"] for r in info["runs"]] == [
        "failed",
        "ok",
    ]
    assert info["units"]["peak_time_s"] == "s"
    paths = {d["path"]: d for d in info["datasets"]}
    assert paths["/runs/0/timeseries/t_s"]["units"] == "s"
    assert {"name": "arrivals", "dtype": "int64", "units": "count"} in paths["/summary"]["fields"]


def test_inspect_reads_a_0_1_0_run(tmp_path: Path) -> None:
    out = spacesim("inspect", str(DATA / "run-0.1.0.h5"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "spacesim.run 0.1.0" in out.stdout and "runs: 1 (0 not ok)" in out.stdout


def test_inspect_reports_a_damaged_file_in_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "run.h5"
    broken.write_bytes((DATA / "run-1.0.0.h5").read_bytes()[:3000])
    out = spacesim("inspect", str(broken), cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) <= 2 and "Traceback" not in out.stderr
    assert "not a readable HDF5 file" in lines[0] and str(broken) in lines[0]
