"""The runner writes every run's record through the one writer, also when the run fails."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from sim import runner
from tests.conftest import compose_config

BENCH = ["experiment=bench_surge", "scenario.expected_arrivals=1e4"]


def test_a_run_that_does_not_end_writes_a_failed_record(tmp_path: Path) -> None:
    cfg = compose_config([*BENCH, "engine.max_sim_s=50"])
    summary = runner.run_job(cfg, tmp_path, ["engine.max_sim_s=50"])
    assert summary["failed"] and "max_sim_s" in summary["failure_reason"]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["failed"] is True and on_disk["failure_reason"] == summary["failure_reason"]
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert bool(f["summary"].attrs["failed"])


def test_a_run_that_raises_still_writes_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no valid config makes the engine raise, so the failure is injected at the engine's entry
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("node table corrupted")

    monkeypatch.setattr(runner, "simulate", boom)
    summary = runner.run_job(compose_config(BENCH), tmp_path, [])
    assert summary["failed"]
    assert summary["failure_reason"] == "RuntimeError: node table corrupted"
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["failure_reason"] == "RuntimeError: node table corrupted"
    assert set(on_disk["rejected"]) == {"bucket", "full", "queue", "timeout"}
    with h5py.File(tmp_path / "run.h5", "r") as f:
        events = json.loads(f["events"].attrs["json"])["events"]
        assert events[0]["kind"] == "failure" and "node table corrupted" in events[0]["traceback"]
