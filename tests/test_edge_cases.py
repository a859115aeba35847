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
