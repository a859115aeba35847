"""Sweeps: space-filling designs (``sim.design``), the design sweeper's plan, and ``spacesim sweep``
over a Sobol design run, merged and read back."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from sim import design, sweep
from sim.archive import read_summary
from tests.test_cli import spacesim

# ---------------------------------------------------------------------------- designs


@pytest.mark.parametrize("kind", design.DESIGNS)
def test_a_design_stays_in_its_box_and_repeats_with_its_seed(kind: str) -> None:
    ranges = [design.Range("a", 2.0, 5.0), design.Range("b", 10.0, 1e4, log=True)]
    pts = design.design_points(ranges, kind, 16, seed=3)
    assert len(pts) == 16
    a = np.array([p["a"] for p in pts])
    b = np.array([p["b"] for p in pts])
    assert a.min() >= 2 and a.max() <= 5 and b.min() >= 10 and b.max() <= 1e4
    assert len(set(a)) == 16 and len(set(b)) == 16  # every point its own values
    assert pts == design.design_points(ranges, kind, 16, seed=3)
    assert pts != design.design_points(ranges, kind, 16, seed=4)


@pytest.mark.parametrize("kind", design.DESIGNS)
def test_each_of_n_strata_holds_one_point_per_dimension(kind: str) -> None:
    """Latin hypercube by construction; a scrambled Sobol set of 2^k points is a (0, k, 2)-net in
    base 2, so its 1-D projections are stratified too."""
    u = design.unit_points(kind, 16, 3, seed=11)
    for j in range(3):
        assert sorted(np.floor(u[:, j] * 16).astype(int)) == list(range(16))


def test_log_ranges_spread_over_decades_and_integers_cover_their_levels() -> None:
    (pts,) = [design.design_points([design.Range("x", 1e3, 1e6, log=True)], "lhs", 30, seed=0)]
    logs = np.log10([p["x"] for p in pts])
    # one point per stratum of log10(x): 10 points in each decade
    assert np.histogram(logs, bins=[3, 4, 5, 6])[0].tolist() == [10, 10, 10]
    ints = design.design_points([design.Range("n", 4, 7, integer=True)], "lhs", 8, seed=0)
    values = [p["n"] for p in ints]
    assert all(isinstance(v, int) for v in values)
    assert sorted(values) == [4, 4, 5, 5, 6, 6, 7, 7]  # each level in 2 of the 8 strata


def test_range_problems_name_the_key() -> None:
    _, problems = design.parse_ranges(
        {
            "a": {"low": 3, "high": 1},
            "b": {"low": 0, "high": 10, "log": True},
            "c": {"low": 0.5, "high": 3, "integer": True},
            "d": {"low": 1},
            "e": {"low": 1, "high": 2, "step": 1},
        }
    )
    keys = [k for k, _, _ in problems]
    assert keys == ["ranges.a.high", "ranges.b.low", "ranges.c.low", "ranges.d", "ranges.e"]
    assert design.parse_ranges({})[1] == [("ranges", {}, "at least one parameter range")]


def test_replications_use_common_random_numbers_across_points_and_cells() -> None:
    points = [{"x": 1.5, "n": 4}, {"x": 2.5, "n": 8}]
    jobs = design.job_overrides(points, 3, base_seed=10, grid=[["admission=none"], ["c=1"]])
    assert len(jobs) == 2 * 2 * 3
    assert jobs[0] == ["admission=none", "x=1.5", "n=4", "seed=10"]
    assert jobs[5] == ["admission=none", "x=2.5", "n=8", "seed=12"]
    seeds = [next(o for o in j if o.startswith("seed=")) for j in jobs]
    assert seeds == ["seed=10", "seed=11", "seed=12"] * 4  # the same seeds at every point


def test_formatted_values_read_back_unchanged() -> None:
    parser = OverridesParser.create()
    for v in (0.1, 1e-7, 123456789.123, 3, 2**40):
        (o,) = parser.parse_overrides([f"k={design.format_value(v)}"])
        assert o.value() == v and type(o.value()) is type(v)


# ---------------------------------------------------------------------------- the sweeper's plan


def test_a_plain_grid_is_hydras_own_order() -> None:
    args = ["a=1,2,3", "b=x,y", "c=7"]
    expected = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(args), None)
    assert sweep.plan_design(args, {}, 0) == [list(j) for j in expected[0]]
    with_params = sweep.plan_design(["c=7"], {"params": {"a": "1,2"}}, 0)
    assert with_params == [["a=1", "c=7"], ["a=2", "c=7"]]


def test_a_design_crosses_the_grid_with_points_and_replications() -> None:
    cfg = {
        "design": "sobol",
        "points": 4,
        "replications": 2,
        "seed": 5,
        "ranges": {"scenario.expected_arrivals": {"low": 1e3, "high": 1e4}},
    }
    jobs = sweep.plan_design(["platform.nodes=4,8", "seed=7"], cfg, base_seed=7)
    assert len(jobs) == 2 * 4 * 2
    pts = design.design_points(
        [design.Range("scenario.expected_arrivals", 1e3, 1e4)], "sobol", 4, 5
    )
    expected = design.job_overrides(pts, 2, 7, [["platform.nodes=4"], ["platform.nodes=8"]])
    assert jobs == expected


@pytest.mark.parametrize(
    ("cfg", "args", "key"),
    [
        ({"design": "halton"}, [], "hydra.sweeper.design"),
        ({"replications": 0}, [], "hydra.sweeper.replications"),
        ({"design": "lhs", "points": 0, "ranges": {"a": {"low": 0, "high": 1}}}, [], "points"),
        ({"replications": 2}, ["seed=1,2"], "seed"),
    ],
)
def test_bad_sweeper_settings_name_the_key(
    cfg: dict[str, object], args: list[str], key: str
) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        sweep.plan_design(args, cfg, 0)


def test_threshold_run_seeds_are_distinct_across_base_seeds_and_shared_across_cells() -> None:
    seeds = {(b, k): sweep.run_seed(b, k) for b, k in itertools.product(range(20), range(50))}
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds.values())
    assert sweep.run_seed(3, 7) == sweep.run_seed(3, 7)


# ---------------------------------------------------------------------------- spacesim sweep


def test_a_sobol_design_of_8_points_x_2_replications_runs_merges_and_reads_back(
    tmp_path: Path,
) -> None:
    sweep_dir = tmp_path / "sobol"
    out = spacesim("sweep", "sweep=sobol_demo", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "sweep: 16 runs in" in out.stdout and "runs/min" in out.stdout
    table = read_summary(sweep_dir / "sweep.h5")
    assert len(table) == 16 and set(table["status"]) == {"ok"}
    ranges, _ = design.parse_ranges(
        {
            "scenario.expected_arrivals": {"low": 2000, "high": 20000, "log": True},
            "platform.nodes": {"low": 4, "high": 32, "integer": True},
        }
    )
    points = design.design_points(ranges, "sobol", 8, seed=0)
    table = table.sort_values("run")
    got = list(
        zip(
            table["scenario.expected_arrivals"], table["platform.nodes"], table["seed"], strict=True
        )
    )
    want = [
        (p["scenario.expected_arrivals"], p["platform.nodes"], r) for p in points for r in (0, 1)
    ]
    assert got == want
    # the runs used their point: the fleet and the scaled audience are in each summary
    assert (table["nodes"] == table["platform.nodes"]).all()
    assert np.allclose(table["expected_arrivals"], table["scenario.expected_arrivals"])
    # common random numbers: the same seed at the same point gives the same run again
    again = spacesim(
        "run",
        "sweep=sobol_demo",
        f"scenario.expected_arrivals={want[3][0]!r}",
        f"platform.nodes={want[3][1]}",
        "seed=1",
        f"hydra.run.dir={tmp_path / 'single'}",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    single = json.loads((tmp_path / "single" / "summary.json").read_text())
    row = table[table["run"] == 3].iloc[0]
    assert single["attempts"] == row["attempts"] and single["joined"] == row["joined"]


def test_a_design_point_that_is_invalid_stops_the_sweep_before_it_starts(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "bad"
    out = spacesim(
        "sweep",
        "sweep=sobol_demo",
        "+hydra.sweeper.ranges={platform.join_workers:{low:0,high:3,integer:true}}",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "platform.join_workers = 0" in out.stderr and "an integer >= 1" in out.stderr
    assert not sweep_dir.exists()
    out = spacesim("sweep", "sweep=sobol_demo", "hydra.sweeper.design=halton", cwd=tmp_path)
    assert out.returncode == 2 and "hydra.sweeper.design = 'halton'" in out.stderr
    assert not (tmp_path / "results").exists()


def test_workers_must_be_a_positive_integer(tmp_path: Path) -> None:
    out = spacesim("sweep", "--workers", "0", "seed=1,2", cwd=tmp_path)
    assert out.returncode == 2 and "--workers = '0'" in out.stderr
    out = spacesim("sweep", "--workers", "2", "hydra/launcher=basic", "seed=1,2", cwd=tmp_path)
    assert out.returncode == 2 and "not both" in out.stderr


# ---------------------------------------------------------------------------- shipped studies

STUDIES = {  # experiment: grid cells (one threshold search each)
    "threshold_erlang_b": 1,
    "threshold_audience": 1,
    "capacity_curve_nodes": 5,
    "policy_comparison": 18,
    "surge_sharpness": 4,
}


def _sweeper(overrides: list[str]) -> dict[str, object]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from sim.config import register
    from sim.hydra_app import conf_dir

    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
            node = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
    finally:
        GlobalHydra.instance().clear()
    assert isinstance(node, dict)
    return {str(k): v for k, v in node.items()}


CONF = Path(__file__).resolve().parents[1] / "conf"
SWEEP_FILES = sorted(p.stem for p in (CONF / "sweep").glob("*.yaml"))


@pytest.mark.parametrize("name", SWEEP_FILES)
def test_every_sweep_file_plans_and_checks(name: str) -> None:
    from sim.hydra_app import check_overrides

    settings = _sweeper([f"sweep={name}"])
    assert str(settings["_target_"]).endswith(".DesignSweeper")
    jobs = sweep.plan_design([f"sweep={name}"], settings, 0)
    points, reps = int(str(settings["points"])), int(str(settings["replications"]))
    assert len(jobs) % (points * reps) == 0 and len({tuple(j) for j in jobs}) == len(jobs)
    assert check_overrides([f"sweep={name}"], multirun=True) == []


@pytest.mark.parametrize(("name", "cells"), sorted(STUDIES.items()))
def test_every_threshold_study_searches_its_cells(name: str, cells: int) -> None:
    from sim.hydra_app import check_overrides

    settings = _sweeper([f"experiment={name}"])
    assert str(settings["_target_"]).endswith(".ThresholdSweeper")
    spec = sweep.search_spec(settings)
    assert spec.lo < spec.hi and spec.rel_width is not None and spec.rel_width <= 0.1
    params = settings.get("params") or {}
    assert isinstance(params, dict)
    assert len(sweep.grid_cells([f"experiment={name}"], params)) == cells
    assert check_overrides([f"experiment={name}"], multirun=True) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["threshold_audience", "capacity_curve_nodes", "surge_sharpness"])
def test_a_threshold_study_runs_at_a_tiny_budget(name: str, tmp_path: Path) -> None:
    """Each study's search runs end to end: one cell, two rounds of two runs, small audiences."""
    sweep_dir = tmp_path / name
    out = spacesim(
        "threshold",
        f"experiment={name}",
        "~hydra.sweeper.params",
        "hydra.sweeper.batch=2",
        "hydra.sweeper.budget=4",
        "hydra.sweeper.lo=2000",
        "hydra.sweeper.hi=20000",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads((sweep_dir / sweep.THRESHOLD_JSON).read_text())
    assert doc["runs"] == 4 and len(doc["cells"]) == 1
    assert doc["parameter"] == "scenario.expected_arrivals"
    cell = doc["cells"][0]
    assert all(isinstance(x, float) and x == int(x) for x in cell["x"])  # integer
    assert doc["log_scale"] is True and doc["increasing"] is True
    table = read_summary(sweep_dir / "sweep.h5").set_index("run")
    assert len(table) == 4 and sorted(cell["jobs"]) == [0, 1, 2, 3]
    # each told run points at its job's row of the archive
    for job, x in zip(cell["jobs"], cell["x"], strict=True):
        assert table.loc[job, "scenario.expected_arrivals"] == x
