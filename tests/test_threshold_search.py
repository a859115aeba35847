"""The threshold search against queueing theory: ``experiment=threshold_erlang_b``.

A pure loss system (one node, ``workers`` join workers, no queue, no retries, no connection cap,
Poisson arrivals at rate λ, exponential service at rate μ) rejects, in the long run, the share
Erlang B(λ/μ, workers) of its arrivals (PASTA). A run fails when more than ``max_reject_share``
of its attempts after the warm-up were rejected, so the λ at which P(failure) = 0.5 tends to the
λ* with Erlang B(λ*/μ, workers) = max_reject_share as the horizon grows
(``sim.theory.erlang_b_load``). Over a 1,000 s horizon at ~15 arrivals/s the reject share has a
standard deviation of ~0.003 around its mean, so P(failure) climbs from 0 to 1 within a few
percent of λ*, and the search's interval (3% wide) must cover λ*.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict
from scipy import stats

from sim import sweep
from sim.archive import read_summary
from sim.config import Config, register, to_config
from sim.engine import simulate
from sim.hydra_app import conf_dir
from sim.theory import erlang_b_load
from sim.threshold import ThresholdSearch
from tests.test_cli import spacesim


def _threshold(sweep_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((sweep_dir / sweep.THRESHOLD_JSON).read_text())
    return doc


@pytest.mark.slow
def test_the_issue_command_covers_the_exact_erlang_b_rate(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "eb"
    out = spacesim(
        "threshold",
        "experiment=threshold_erlang_b",
        "workers=20",
        "service_rate_per_s=1",
        "max_reject_share=0.05",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    doc = _threshold(sweep_dir)
    exact = erlang_b_load(20, 0.05) * 1.0
    assert {"parameter", "target", "estimate", "ci_low", "ci_high", "confidence", "runs"} <= set(
        doc
    )
    assert doc["parameter"] == "arrival_rate_per_s" and doc["target"] == 0.5
    assert doc["confidence"] == 0.95 and doc["stop_reason"] == "precision"
    assert doc["ci_low"] <= exact <= doc["ci_high"], (doc["ci_low"], exact, doc["ci_high"])
    assert doc["ci_high"] - doc["ci_low"] <= 0.03 * doc["estimate"] + 1e-9
    assert "arrival_rate_per_s at P(failure) = 0.5" in out.stdout
    # every run is in the sweep archive, with the value it ran at and its verdict
    table = read_summary(sweep_dir / "sweep.h5").sort_values("run")
    (cell,) = doc["cells"]
    assert len(table) == doc["runs"] == len(cell["x"])
    assert np.allclose(table["arrival_rate_per_s"], cell["x"])
    assert table["failed"].tolist() == cell["failed"]
    # the failed runs are those whose reject share exceeded the limit
    assert ((table["reject_share"] > 0.05) == table["failed"]).all()
    # run k of the search runs with run_seed(seed, k)
    assert table["seed"].tolist() == [sweep.run_seed(0, k) for k in range(len(table))]


@pytest.mark.slow
def test_a_capacity_curve_covers_erlang_b_at_each_worker_count(tmp_path: Path) -> None:
    """A second parameter (workers=5,10) gives one search per value, at another μ and limit."""
    sweep_dir = tmp_path / "curve"
    out = spacesim(
        "threshold",
        "experiment=threshold_erlang_b",
        "workers=5,10",
        "service_rate_per_s=2",
        "max_reject_share=0.1",
        "horizon_s=600",
        "--workers",
        "2",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    doc = _threshold(sweep_dir)
    assert len(doc["cells"]) == 2
    for cell, c in zip(doc["cells"], (5, 10), strict=True):
        assert f"workers={c}" in cell["overrides"]
        exact = erlang_b_load(c, 0.1) * 2.0
        assert cell["ci_low"] <= exact <= cell["ci_high"], (c, cell["ci_low"], exact)
        # each cell's bracket is the experiment's lo/hi (0.25 and 1.5 x workers x mu) for its
        # own workers, not for the default: the search starts at its ends and needs no widening
        assert min(cell["x"]) == pytest.approx(0.25 * c * 2.0)
        assert max(cell["x"]) == pytest.approx(1.5 * c * 2.0)
    assert doc["runs"] == sum(c["runs"] for c in doc["cells"])
    assert len(read_summary(sweep_dir / "sweep.h5")) == doc["runs"]
    # resuming the finished search runs nothing again and gives the same result
    again = spacesim("threshold", "--resume", str(sweep_dir), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "(complete: not run again)" in again.stdout
    assert _threshold(sweep_dir)["cells"] == doc["cells"]


def _erlang_setup(overrides: list[str]) -> tuple[Config, dict[str, Any]]:
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    settings = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
    assert isinstance(settings, dict)
    with open_dict(cfg):
        del cfg["hydra"]  # as Hydra hands a job its config
    return to_config(cfg), {str(k): v for k, v in settings.items()}


def _search_in_process(base: Config, settings: dict[str, Any], seed: int) -> tuple[float, float]:
    """The search of ``spacesim threshold``, its runs simulated here (same seeds, no Hydra)."""
    search = ThresholdSearch(sweep.search_spec(settings))
    k = 0
    while xs := search.propose():
        failed = []
        for x in xs:
            points = [dataclasses.replace(p, rate_per_s=x) for p in base.scenario.profile]
            cfg = dataclasses.replace(
                base,
                seed=sweep.run_seed(seed, k),
                scenario=dataclasses.replace(base.scenario, profile=points),
            )
            failed.append(bool(simulate(cfg).summary["failed"]))
            k += 1
        search.tell(xs, failed)
    r = search.result()
    return r.ci_low, r.ci_high


@pytest.mark.slow
def test_the_interval_covers_erlang_b_at_its_nominal_rate_over_seeds() -> None:
    """40 searches with independent seeds (10 workers, μ = 1, 10% loss, 300 s horizon): the share
    of 95% intervals that cover λ* is a Binomial(40, p) draw. The test asks for at least 34 of
    40 (the 1% quantile under p = 0.95; fewer happen with probability 0.34%), so a method whose
    real coverage were 0.8 would pass only with probability 0.29."""
    base, settings = _erlang_setup(
        [
            "experiment=threshold_erlang_b",
            "workers=10",
            "service_rate_per_s=1",
            "max_reject_share=0.1",
            "horizon_s=300",
            "engine.progress=false",
        ]
    )
    exact = erlang_b_load(10, 0.1)
    seeds = range(100, 140)
    intervals = [_search_in_process(base, settings, s) for s in seeds]
    covered = sum(lo <= exact <= hi for lo, hi in intervals)
    assert stats.binom.cdf(covered, len(seeds), 0.95) > 0.01, (covered, intervals)
    assert all(math.isfinite(lo) and lo < hi for lo, hi in intervals)
    # the intervals are not trivially wide: each meets the precision the experiment asks for
    assert max((hi - lo) / exact for lo, hi in intervals) <= 0.031
