"""Jobs of several runs (``hydra.sweeper.runs_per_job``): the same runs as one job per run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim import cli, sweep
from sim.archive import read_record, read_summary

SMALL = ["experiment=bench_surge", "scenario.expected_arrivals=2000", "engine.progress=false"]
GRID = ["seed=range(0,5)", "platform.nodes=1,2"]  # 10 runs, two values of a second key


def _sweep(sweep_dir: Path, *extra: str) -> pd.DataFrame:
    assert cli.main(["sweep", *SMALL, *GRID, *extra, f"hydra.sweep.dir={sweep_dir}"]) == 0
    return read_summary(sweep_dir / "sweep.h5").drop(columns=["wall_s"])


def _hashes(sweep_dir: Path, runs: int) -> list[str]:
    return [read_record(sweep_dir / str(n) / "run.h5")["config_sha256"] for n in range(runs)]


def test_jobs_of_several_runs_give_the_runs_of_one_job_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = _sweep(tmp_path / "single", "hydra.sweeper.runs_per_job=1")
    grouped = _sweep(tmp_path / "grouped", "hydra.sweeper.runs_per_job=4")
    pd.testing.assert_frame_equal(single, grouped)
    # the same in two joblib workers, each job of 3 runs composed and copied in the worker
    workers = _sweep(tmp_path / "joblib", "hydra.sweeper.runs_per_job=3", "--workers", "2")
    pd.testing.assert_frame_equal(single, workers)
    assert len(list((tmp_path / "joblib" / sweep.GROUPS_DIR).iterdir())) == 4
    assert single["seed"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    # the same config (hash) in every run file: a grouped sweep resumes an ungrouped one
    assert _hashes(tmp_path / "single", 10) == _hashes(tmp_path / "grouped", 10)
    assert not (tmp_path / "single" / sweep.GROUPS_DIR).exists()
    jobs = sorted((tmp_path / "grouped" / sweep.GROUPS_DIR).iterdir())
    assert [j.name for j in jobs] == ["0", "1", "2"]  # 4 + 4 + 2 runs
    assert all((j / sweep.POINTS_JSON).is_file() for j in jobs)
    # cut off: two runs lost; resuming runs those two only, into the same table
    for n in (3, 8):
        (tmp_path / "grouped" / str(n) / "run.h5").unlink()
    capsys.readouterr()
    assert cli.main(["sweep", "--resume", str(tmp_path / "grouped")]) == 0
    assert capsys.readouterr().out.count("(complete: not run again)") == 8
    resumed = read_summary(tmp_path / "grouped" / "sweep.h5").drop(columns=["wall_s"])
    pd.testing.assert_frame_equal(single, resumed)


def test_runs_share_a_job_only_when_they_differ_in_values() -> None:
    def is_value(o: str) -> bool:
        return not o.startswith("experiment=")

    batch = [
        ["experiment=a", "x=1", "seed=0"],
        ["experiment=a", "x=2", "seed=0"],
        ["experiment=a", "x=3", "seed=0"],
        ["experiment=b", "x=1", "seed=0"],  # another config group: another job
        ["experiment=b", "x=2", "seed=0", "y=1"],  # another key: another job
        ["experiment=b", "x=3", "seed=0", "y=2"],
    ]
    assert sweep.group_runs(batch, 2, is_value) == [[0, 1], [2], [3], [4, 5]]
    assert sweep.group_runs(batch, 1, is_value) == [[i] for i in range(6)]


def test_a_bad_runs_per_job_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_dir = tmp_path / "bad"
    code = cli.main(
        [
            "sweep",
            *SMALL,
            "seed=1,2",
            "hydra.sweeper.runs_per_job=0",
            f"hydra.sweep.dir={sweep_dir}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "hydra.sweeper.runs_per_job = 0" in err and "integer >= 1" in err
    assert not sweep_dir.exists()
