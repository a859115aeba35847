"""The runner writes every run's record through the one writer, also when the run fails."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sim import runner
from sim.archive import read_events, read_record
from sim.kernels.reasons import REASONS
from tests.conftest import compose_config

BENCH = ["experiment=bench_surge", "scenario.expected_arrivals=1e4"]


def test_a_run_that_does_not_end_writes_a_failed_record(tmp_path: Path) -> None:
    cfg = compose_config([*BENCH, "engine.max_sim_s=50"])
    summary = runner.run_job(cfg, tmp_path, ["engine.max_sim_s=50"])
    assert summary["failed"] and "max_sim_s" in summary["failure_reason"]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["failed"] is True and on_disk["failure_reason"] == summary["failure_reason"]
    assert on_disk["status"] == "failed"
    record = read_record(tmp_path / "run.h5")
    assert record["status"] == "failed" and record["error"] == summary["failure_reason"]
    assert record["summary"]["failed"] is True


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
    assert set(on_disk["rejected"]) == set(REASONS)
    assert read_record(tmp_path / "run.h5")["error"] == "RuntimeError: node table corrupted"
    events = read_events(tmp_path / "run.h5")
    assert events["kind"].tolist() == ["failure"] and events["target"].tolist() == ["run"]
    assert math.isnan(events["t_s"][0]) and "node table corrupted" in events["detail"][0]
