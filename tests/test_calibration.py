"""Calibration (sim.calibration, `spacesim calibrate`): it recovers what it is fitted to.

The data points are made by the model itself: ``experiment=calibrate_check`` run at known values
of the demand (``scenario.expected_arrivals``) and of the control plane's workers
(``platform.auth_workers``) with the seeds the calibration uses, measured as a replay measures
its event (``summary.data``), with bands of ±8% around them. The calibration, started from a
design over wide ranges, must come back inside every band and cover the known values with its
95% intervals.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim import calibration, observations
from sim.engine import simulate
from sim.sweep import run_seed
from tests.conftest import typed_config
from tests.test_cli import spacesim

TRUTH = {"scenario.expected_arrivals": 40000.0, "platform.auth_workers": 6}
# what a replay measures (listeners at times, the start delay, a peak), on the scenario clock
POINTS = [
    ("at_start", "listeners", 0.0, None),
    ("at_1800", "listeners", 1800.0, None),
    ("at_2520", "listeners", 2520.0, None),
    ("at_6000", "listeners", 6000.0, None),
    ("peak", "peak_listeners", 2520.0, 10020.0),
    ("start_delay_s", "start_delay_s", None, None),
]


def _truth_file(path: Path, replications: int) -> list[observations.Observation]:
    """The data points of runs at ``TRUTH``: the mean over the calibration's seeds ± 8%."""
    runs = []
    for r in range(replications):
        over = [f"{k}={v}" for k, v in TRUTH.items()]
        cfg = typed_config(["experiment=calibrate_check", *over, f"seed={run_seed(0, r)}"])
        runs.append(simulate(cfg))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(observations.COLUMNS)
        for pid, quantity, t, t_to in POINTS:
            obs = observations.Observation(
                pid, quantity, t, t_to, 0.0, 0.0, 0.0, "", "fit", False, "", ""
            )
            got = [observations.measure(obs, r.timeseries, r.summary) for r in runs]
            value = float(np.mean(got))
            unit = observations.UNITS[quantity]
            w.writerow([pid, quantity, t, t_to, value, 0.92 * value, 1.08 * value, unit, "fit",
                        "false", "the model at TRUTH", ""])  # fmt: skip
    return observations.load(str(path))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("calibrate")
    data = root / "truth.csv"
    points = _truth_file(data, replications=2)
    assert all(p.value > 0 for p in points)  # the runs made every figure
    sweep_dir = root / "sweep"
    out = spacesim(
        "calibrate",
        "experiment=calibrate_check",
        f"scenario.event={data}",
        f"hydra.sweep.dir={sweep_dir}",
        "--workers",
        "2",
        cwd=root,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc: dict[str, Any] = json.loads((sweep_dir / calibration.CALIBRATION_JSON).read_text())
    return {"doc": doc, "stdout": out.stdout, "dir": sweep_dir}


def test_the_fit_lands_inside_every_band(fitted: dict[str, Any]) -> None:
    doc = fitted["doc"]
    assert doc["inside_all_bands"], [r for r in doc["data_points"] if not r["inside"]]
    assert doc["band_loss"] == 0.0
    assert {r["id"] for r in doc["data_points"]} == {p[0] for p in POINTS}
    assert doc["runs"] == doc["evaluations"] * doc["replications"] <= 24 * 2


def test_the_intervals_cover_the_values_the_data_were_made_with(fitted: dict[str, Any]) -> None:
    doc = fitted["doc"]
    for name, truth in TRUTH.items():
        lo, hi = doc["ci"][name]
        assert doc["identified"][name], name
        assert lo <= truth <= hi, (name, truth, lo, hi, doc["best"][name])
        p = doc["parameters"][name]
        assert (hi - lo) < 0.5 * (p["hi"] - p["lo"]), (name, lo, hi)  # the data narrow it down


def test_the_command_reports_the_fit_and_writes_a_config(fitted: dict[str, Any]) -> None:
    out = fitted["stdout"]
    assert "calibration of " in out and "platform.auth_workers = " in out
    assert f"calibration: {fitted['dir'] / calibration.CALIBRATION_JSON}" in out
    yaml = (fitted["dir"] / calibration.CALIBRATED_YAML).read_text()
    assert yaml.startswith("# @package _global_") and "auth_workers:" in yaml
    assert (fitted["dir"] / "sweep.h5").is_file()
    best = fitted["doc"]["best"]
    assert isinstance(best["platform.auth_workers"], int)
    assert math.isfinite(best["scenario.expected_arrivals"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("hydra.sweeper.replications=0", "hydra.sweeper.replications"),
        (
            "hydra.sweeper.parameters={platform.auth_workers: {lo: 0, hi: 9, log: true}}",
            "hydra.sweeper.parameters.platform.auth_workers.lo = 0",
        ),
        ("scenario.event=null", "scenario.event"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(tmp_path: Path, override: str, key: str) -> None:
    out = spacesim(
        "calibrate", "experiment=calibrate_check", override,
        f"hydra.sweep.dir={tmp_path / 's'}", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert key in out.stderr and "Traceback" not in out.stderr


def test_the_search_starts_from_the_experiments_values_when_all_are_in_range() -> None:
    from omegaconf import OmegaConf

    from sim.calibration import start_point
    from sim.fit import Parameter

    cfg = OmegaConf.create({"platform": {"auth_workers": 37}, "x": 2.5, "flag": True})
    params = [Parameter("platform.auth_workers", 10, 400, True, True), Parameter("x", 1, 3)]
    assert start_point(cfg, params) == {"platform.auth_workers": 37.0, "x": 2.5}
    # one value outside its range, missing, or not a number: the start design alone
    assert start_point(cfg, [*params, Parameter("y", 0, 1)]) is None
    assert start_point(cfg, [Parameter("x", 3, 4)]) is None
    assert start_point(cfg, [Parameter("flag", 0, 1)]) is None


def test_start_from_config_is_a_checked_switch() -> None:
    settings = {
        "parameters": {"x": {"lo": 1, "hi": 3}},
        "replications": 1,
        "budget": 10,
        "batch": 4,
        "tol": 0.02,
        "weak_weight": 0.5,
    }
    assert calibration.spec_of(settings).start_from_config  # the default
    assert not calibration.spec_of({**settings, "start_from_config": False}).start_from_config
    with pytest.raises(ValueError, match=r"hydra\.sweeper\.start_from_config = 'yes'"):
        calibration.spec_of({**settings, "start_from_config": "yes"})
