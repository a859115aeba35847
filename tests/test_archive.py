"""The archive in-process: write → read of every field, units, the merge, damaged files, resume."""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest

from sim import archive, runner
from sim.archive import (
    ArchiveError,
    RunRecord,
    merge_sweep,
    read_config,
    read_events,
    read_record,
    read_summary,
    read_timeseries,
    units_of,
    write_run,
)

CONFIG_YAML = "scenario:\n  name: tiny\nengine:\n  tick_s: 0.5\nseed: 7\n"
EVENTS = [
    {"t_s": 12.5, "kind": "crash", "target": "node-3", "detail": "overload 30 s"},
    {"t_s": 42.0, "kind": "restart", "target": "node-3", "detail": ""},
    {"t_s": 60.0, "kind": "operator", "target": "room", "detail": "cap 10000", "by": "sre"},
    {"kind": "failure", "detail": "Traceback ..."},
]


def summary(seed: int = 7, **extra: Any) -> dict[str, Any]:
    return {
        "arrivals": 100 + seed,
        "rejected": {"bucket": seed, "full": 0, "timeout": 2},
        "join_latency_p99_s": 0.25 * seed,
        "peak_time_s": math.nan,
        "egress_peak_gbps": 1.5,
        "join_rate_per_s": 30.0,
        "delivered_share": 0.99,
        "retry_amplification": 1.2,
        "seed": seed,
        "failed": False,
        "failure_reason": None,
        **extra,
    }


def record(seed: int = 7, job_num: int | None = 3, **kw: Any) -> RunRecord:
    t = np.arange(1, 5, dtype=np.float64) * 0.5
    fields: dict[str, Any] = {
        "summary": summary(seed),
        "timeseries": {
            "t_s": t,
            "attempts": np.array([1, 2, 3, seed], dtype=np.int64),
            "join_latency_p99_s": np.array([math.nan, 0.1, 0.2, 0.3]),
            "egress_gbps": np.array([0.5, 1.0, 1.5, 1.0]),
        },
        "events": EVENTS,
        "config_yaml": CONFIG_YAML,
        "overrides": [f"seed={seed}", "platform.nodes=4", "admission=none"],
        "parameters": {"seed": seed, "platform.nodes": 4, "admission": "none"},
        "seeds": {"seed": seed, "streams": ["arrivals", "retry"]},
        "job_num": job_num,
        "tick_s": 0.5,
        "command_line": "spacesim run -m seed=1,2",
    }
    return RunRecord(**(fields | kw))


def test_units_follow_the_key_suffix() -> None:
    assert units_of("wall_s", 1.0) == "s"
    assert units_of("join_rate_per_s", 1.0) == "1/s"
    assert units_of("egress_gbps", 1.0) == "Gb/s"
    assert units_of("delivered_share", 1.0) == "1"
    assert units_of("queue_ratio", 1.0) == "1"
    assert units_of("retry_amplification", 1.0) == "1"
    assert units_of("rejected.timeout", 3) == "count"
    assert units_of("failure_reason", "x") == ""
    assert units_of("failed", True) == ""
    assert units_of("failure_reason", None) == ""
    assert units_of("peak_time_s", None) == "s"


def test_every_field_round_trips(tmp_path: Path) -> None:
    rec = record()
    write_run(tmp_path, rec)
    path = tmp_path / "run.h5"
    assert not list(tmp_path.glob("*.tmp"))

    with h5py.File(path) as f:  # the layout of docs/archive.md
        assert f.attrs["schema_name"] == "spacesim.run"
        assert f.attrs["schema_version"] == "1.0.0"
        assert f.attrs["status"] == "ok" and f.attrs["error"] == ""
        assert f.attrs["job_num"] == 3
        datetime.fromisoformat(str(f.attrs["created"]))
        s = f["summary"]  # one row, a field per scalar, a unit per field
        assert s.shape == (1,)
        assert dict(zip(s.dtype.names, s.attrs["units"], strict=True)) == {
            "arrivals": "count",
            "rejected.bucket": "count",
            "rejected.full": "count",
            "rejected.timeout": "count",
            "join_latency_p99_s": "s",
            "peak_time_s": "s",
            "egress_peak_gbps": "Gb/s",
            "join_rate_per_s": "1/s",
            "delivered_share": "1",
            "retry_amplification": "1",
            "seed": "count",
            "failed": "",
            "failure_reason": "",
        }
        assert s.attrs["missing"].tolist() == ["failure_reason"]  # None, not ""
        assert s.dtype["arrivals"] == np.int64 and s.dtype["failed"] == np.bool_
        for name, unit in {"t_s": "s", "attempts": "count", "egress_gbps": "Gb/s"}.items():
            assert f["timeseries"][name].attrs["units"] == unit, name
        for d in f["timeseries"].values():
            assert d.compression == "gzip" and d.shuffle
        assert f["events"].dtype.names == ("t_s", "kind", "target", "detail")

    got = read_record(path)
    assert got["status"] == "ok" and got["error"] == "" and got["job_num"] == 3
    assert got["schema_version"] == "1.0.0" and got["software_version"]
    assert got["config_sha256"] == archive.config_sha256(CONFIG_YAML)
    assert got["overrides"] == list(rec.overrides)
    assert got["parameters"] == rec.parameters
    assert got["seeds"] == rec.seeds
    assert got["time_base"]["tick_s"] == 0.5 and got["time_base"]["time"] == "t_s"
    prov = got["provenance"]
    assert prov["command_line"] == "spacesim run -m seed=1,2"
    assert {"git_revision", "host", "python", "platform"} <= set(prov)
    assert set(prov["libraries"]) >= {"numpy", "h5py", "numba", "hydra-core"}
    s = got["summary"]
    assert math.isnan(s.pop("peak_time_s"))
    expected = summary()
    del expected["peak_time_s"]
    assert s == expected and list(s) == list(expected)  # values, types and order
    assert type(s["failed"]) is bool and type(s["arrivals"]) is int

    assert read_config(path) == {
        "scenario": {"name": "tiny"},
        "engine": {"tick_s": 0.5},
        "seed": 7,
    }

    ts = read_timeseries(path)
    assert list(ts.columns) == ["run", "t_s", "attempts", "join_latency_p99_s", "egress_gbps"]
    assert (ts["run"] == 3).all()
    for k, v in rec.timeseries.items():
        np.testing.assert_array_equal(ts[k].to_numpy(), v)
    assert ts.attrs["units"]["egress_gbps"] == "Gb/s"

    ev = read_events(path)
    assert list(ev.columns) == ["run", "t_s", "kind", "target", "detail"]
    assert ev["kind"].tolist() == ["crash", "restart", "operator", "failure"]
    assert ev["target"].tolist() == ["node-3", "node-3", "room", ""]
    assert ev["t_s"].iloc[0] == 12.5 and math.isnan(ev["t_s"].iloc[3])
    assert ev["detail"].iloc[2] == 'cap 10000\n{"by": "sre"}'  # extra keys are kept

    row = read_summary(path)
    assert len(row) == 1
    assert list(row.columns[:5]) == ["run", "status", "seed", "platform.nodes", "admission"]
    assert row["rejected.bucket"].iloc[0] == 7 and row["status"].iloc[0] == "ok"
    assert row.attrs["units"]["join_latency_p99_s"] == "s"
    assert row.attrs["parameters"] == ["seed", "platform.nodes", "admission"]

    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["status"] == "ok" and on_disk["peak_time_s"] is None
    assert on_disk["rejected"] == {"bucket": 7, "full": 0, "timeout": 2}


def test_failed_and_interrupted_runs_say_so(tmp_path: Path) -> None:
    failed = record(summary=summary(failed=True, failure_reason="engine.max_sim_s reached"))
    write_run(tmp_path / "f", failed)
    got = read_record(tmp_path / "f" / "run.h5")
    assert got["status"] == "failed" and got["error"] == "engine.max_sim_s reached"
    write_run(tmp_path / "i", record(status="interrupted", error="SIGINT"))
    assert read_record(tmp_path / "i" / "run.h5")["status"] == "interrupted"
    assert json.loads((tmp_path / "i" / "summary.json").read_text())["status"] == "interrupted"
    with pytest.raises(ArchiveError, match="status 'done'"):
        write_run(tmp_path / "x", record(status="done"))


def test_a_record_the_schema_cannot_hold_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="summary value bad"):
        write_run(tmp_path, record(summary={"bad": [1, 2]}))
    with pytest.raises(ArchiveError, match=r"has a '\.'"):
        write_run(tmp_path, record(summary={"p99.p50": 1.0}))
    with pytest.raises(ArchiveError, match="cannot name"):
        write_run(tmp_path, record(timeseries={"p99/p50": np.zeros(3)}))
    assert not list(tmp_path.iterdir())


def test_an_empty_run_has_empty_tables(tmp_path: Path) -> None:
    write_run(tmp_path, RunRecord(summary={"failed": True, "failure_reason": "boom"}))
    path = tmp_path / "run.h5"
    assert read_events(path).empty and list(read_events(path).columns)[:2] == ["run", "t_s"]
    assert read_timeseries(path).empty
    assert read_summary(path)["status"].tolist() == ["failed"]


def test_damaged_files_are_reported_not_read(tmp_path: Path) -> None:
    write_run(tmp_path, record())
    good = (tmp_path / "run.h5").read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ArchiveError, match="not a readable HDF5 file"):
        read_summary(truncated)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(ArchiveError, match=r"notes\.h5"):
        read_summary(text)
    with pytest.raises(ArchiveError, match="no such file"):
        read_summary(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["title"] = "someone else's file"
    with pytest.raises(ArchiveError, match="not a spacesim archive"):
        read_summary(tmp_path / "other.h5")
    with h5py.File(tmp_path / "run.h5", "r+") as f:  # whole file, a layout that is not 1.0.0
        del f["summary"]
    with pytest.raises(ArchiveError, match=r"run\.h5: damaged archive"):
        read_summary(tmp_path / "run.h5")


def test_an_unknown_major_version_is_refused_by_name(tmp_path: Path) -> None:
    write_run(tmp_path, record())
    with h5py.File(tmp_path / "run.h5", "r+") as f:
        f.attrs["schema_version"] = "2.0.0"
    with pytest.raises(ArchiveError) as err:
        read_summary(tmp_path / "run.h5")
    msg = str(err.value)
    assert "run.h5" in msg and "2.0.0" in msg and "0.1.x and 1.x" in msg
    assert isinstance(err.value, ValueError)


def test_a_newer_minor_version_is_read(tmp_path: Path) -> None:
    write_run(tmp_path, record())
    with h5py.File(tmp_path / "run.h5", "r+") as f:
        f.attrs["schema_version"] = "1.7.0"
        f.create_group("something_new")
    assert read_summary(tmp_path / "run.h5")["arrivals"].tolist() == [107]


def _sweep(tmp_path: Path, n: int) -> Path:
    sweep = tmp_path / "sweep"
    for i in range(n):
        extra = {"new_metric_share": 0.5} if i == 2 else {}
        s = summary(seed=i + 1, **extra)
        if i == 1:
            s |= {"failed": True, "failure_reason": "boom"}
            del s["rejected"]
        write_run(sweep / str(i), record(seed=i + 1, job_num=i, summary=s))
    return sweep


def test_merge_joins_runs_and_a_table_of_their_union(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, 4)
    (sweep / "4").mkdir()
    (sweep / "4" / "run.h5.tmp").write_bytes(b"half a file")
    report = merge_sweep(sweep, overrides=["seed=1,2,3,4"])
    assert report.runs == [0, 1, 2, 3] and report.not_ok == {1: "failed"}
    assert len(report.problems) == 1 and "run.h5.tmp" in report.problems[0]
    path = sweep / "sweep.h5"
    assert not (sweep / "sweep.h5.tmp").exists()

    table = read_summary(path)
    assert table["run"].tolist() == [0, 1, 2, 3]
    assert table["seed"].tolist() == [1, 2, 3, 4]
    assert table["status"].tolist() == ["ok", "failed", "ok", "ok"]
    # a run without rejections: NaN in a number column; missing text is missing too
    assert np.isnan(table["rejected.bucket"].iloc[1]) and table["rejected.bucket"].iloc[0] == 1
    assert table["failure_reason"].isna().tolist() == [True, False, True, True]
    assert table["failure_reason"].iloc[1] == "boom"
    assert np.isnan(table["new_metric_share"].iloc[0]) and table["new_metric_share"].iloc[2] == 0.5
    assert table.attrs["units"]["new_metric_share"] == "1"
    assert table.attrs["parameters"] == ["seed", "platform.nodes", "admission"]

    # each row is what read_summary gives for the run's own file
    for i in (0, 3):
        own = read_summary(sweep / str(i) / "run.h5")
        mine = table.iloc[[i]].reset_index(drop=True)[own.columns]
        pd.testing.assert_frame_equal(mine, own, check_dtype=False)
    # the runs themselves, copied whole
    ts = read_timeseries(path)
    assert sorted(set(ts["run"])) == [0, 1, 2, 3] and len(ts) == 16
    assert read_timeseries(path, run=2)["attempts"].tolist() == [1, 2, 3, 3]
    assert read_events(path, run=3)["kind"].tolist()[0] == "crash"
    assert read_config(path, run=1)["seed"] == 7
    with pytest.raises(ArchiveError, match="holds 4 runs"):
        read_config(path)
    with pytest.raises(ArchiveError, match="no run 9"):
        read_events(path, run=9)
    with h5py.File(path) as f:
        assert f.attrs["schema_name"] == "spacesim.sweep"
        assert f["problems"].asstr()[:].tolist() == report.problems
        assert f["summary"].compression == "gzip" and f["summary"].shape == (4,)


def test_merge_reports_damaged_and_duplicate_files(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, 3)
    data = (sweep / "2" / "run.h5").read_bytes()
    (sweep / "2" / "run.h5").write_bytes(data[:4000])  # truncated under its final name
    write_run(sweep / "copy_of_0", record(seed=1, job_num=0))
    write_run(sweep / "single", record(job_num=None))
    report = merge_sweep(sweep)
    assert report.runs == [0, 1]
    text = "\n".join(report.problems)
    assert "2/run.h5: not a readable HDF5 file" in text
    assert "job 0 again" in text and "no job number" in text
    assert read_summary(sweep / "sweep.h5")["run"].tolist() == [0, 1]


def test_an_empty_sweep_merges_to_an_empty_table(tmp_path: Path) -> None:
    report = merge_sweep(tmp_path)
    assert report.runs == [] and read_summary(tmp_path / "sweep.h5").empty


def test_a_dir_resolves_to_its_archive(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, 2)
    merge_sweep(sweep)
    assert len(read_summary(sweep)) == 2
    assert len(read_summary(sweep / "0")) == 1
    with pytest.raises(ArchiveError, match="neither"):
        read_summary(tmp_path)


def test_resume_keeps_only_complete_runs_of_the_same_config(tmp_path: Path) -> None:
    sha = archive.config_sha256(CONFIG_YAML)
    assert runner.completed_run(tmp_path, sha) is None  # nothing there
    write_run(tmp_path, record())
    kept = runner.completed_run(tmp_path, sha)
    assert kept is not None and kept["arrivals"] == 107
    (tmp_path / "summary.json").unlink()  # killed between the two files: rewritten
    assert runner.completed_run(tmp_path, sha) is not None
    assert json.loads((tmp_path / "summary.json").read_text())["arrivals"] == 107
    # a different config: run again, and the stale files go first
    assert runner.completed_run(tmp_path, "0" * 64) is None
    assert not (tmp_path / "run.h5").exists() and not (tmp_path / "summary.json").exists()
    # a deterministic failure is kept; an interrupted run is run again
    write_run(tmp_path, record(status="failed", error="boom"))
    assert runner.completed_run(tmp_path, sha) is not None
    write_run(tmp_path, record(status="interrupted"))
    assert runner.completed_run(tmp_path, sha) is None
    # a damaged file is run again
    write_run(tmp_path, record())
    (tmp_path / "run.h5").write_bytes(b"\0" * 100)
    assert runner.completed_run(tmp_path, sha) is None


def test_the_writer_publishes_by_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renames: list[tuple[str, str]] = []
    real = os.replace

    def spy(src: Any, dst: Any) -> None:
        assert Path(src).exists() and not Path(dst).exists()
        renames.append((Path(src).name, Path(dst).name))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_run(tmp_path, record())
    assert renames == [("summary.json.tmp", "summary.json"), ("run.h5.tmp", "run.h5")]


def test_the_hydra_callback_merges_and_keeps_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omegaconf import OmegaConf

    from sim import callbacks

    sweep = _sweep(tmp_path, 2)
    cfg = OmegaConf.create(
        {"hydra": {"sweep": {"dir": str(sweep)}, "overrides": {"task": ["a=1,2"]}}}
    )
    callbacks.reset()
    callbacks.MergeSweep().on_multirun_end(cfg)
    report = callbacks.last_report()
    assert report is not None and report.runs == [0, 1] and report.failed == 1
    assert read_record(sweep / "sweep.h5", 0)["overrides"] == [
        "seed=1",
        "platform.nodes=4",
        "admission=none",
    ]
    with h5py.File(sweep / "sweep.h5") as f:
        assert f["config/overrides"].asstr()[:].tolist() == ["a=1,2"]

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(callbacks, "merge_sweep", broken)
    callbacks.MergeSweep().on_multirun_end(cfg)  # Hydra would turn a raise into a warning only
    report = callbacks.last_report()
    assert report is not None and report.problems == ["merge failed: OSError: disk full"]
