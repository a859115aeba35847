"""The sweepers of ``spacesim``: which jobs a multirun launches, in which batches and order.

Hydra splits a multirun into a *sweeper*, which decides the jobs (their overrides), and a
*launcher*, which runs a batch of jobs somewhere (in this process, joblib workers, a Ray cluster,
SLURM through submitit) and hands back their return values. Both sweepers here only decide jobs
and call ``launcher.launch(batch, initial_job_idx)``, so every launcher runs them unchanged, and
the job numbers (``hydra.job.num``: the job's subdirectory of the sweep dir) follow the order in
which the jobs are planned, whatever runs them.

- ``DesignSweeper`` (``hydra/sweeper=design``, the default of ``conf/config.yaml``): the grid of
  the discrete overrides (``a=1,2 b=x,y``, and ``hydra.sweeper.params``), as Hydra's basic sweeper
  orders it, crossed with an optional space-filling design over ``ranges`` (``sim.design``: Sobol,
  Latin hypercube) and ``replications`` with common random numbers (replication ``r`` runs with
  ``seed = seed + r`` at every point).
- ``ThresholdSweeper`` (``hydra/sweeper=threshold``, ``spacesim threshold``): an adaptive search
  (``sim.threshold``) for the value of one parameter at which P(failure) crosses a target, one
  search per grid cell (a second parameter gives a capacity curve). It proposes a batch of values,
  launches it, reads each job's verdict (``failed`` of its summary), and proposes again until the
  interval is narrow enough or the budget is spent. Run ``k`` of a search runs with the seed
  ``run_seed(seed, k)``, the same in every cell. It writes ``threshold.json`` to the sweep dir.

Both launch in batches and show a progress bar (runs done, failed, time left; none when not on a
terminal) and log a summary line (runs, wall time, runs per minute) that ``last_stats`` keeps for
the command line. A job returns a small dict (``sim.cli``: ``failed``, ``engine_failed``,
``failure_reason``); every job also wrote its ``run.h5``, which the ``MergeSweep`` callback merges
into ``sweep.h5`` after the sweeper returns.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from sim import design
from sim.threshold import SearchSpec, ThresholdResult, ThresholdSearch

log = logging.getLogger(__name__)

THRESHOLD_JSON = "threshold.json"


@dataclass
class SweepStats:
    """What a sweeper did: for the summary line of the command line."""

    kind: str
    runs: int = 0
    failed: int = 0  # rooms that failed (the criterion), engine failures included
    errors: int = 0  # runs whose engine failed or whose job raised
    wall_s: float = 0.0
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None  # threshold.json, calibration.json
    calibration: dict[str, Any] | None = None  # sim.calibration: the fit

    def line(self) -> str:
        per_min = 60 * self.runs / self.wall_s if self.wall_s > 0 else math.nan
        return (
            f"{self.kind}: {self.runs} runs in {self.wall_s:.1f} s ({per_min:.1f} runs/min),"
            f" {self.failed} failed, {self.errors} errors"
        )


_stats: list[SweepStats] = []


def last_stats() -> SweepStats | None:
    """The stats of the last sweep of this process (``None``: no sweeper of ours ran)."""
    return _stats[-1] if _stats else None


def reset() -> None:
    _stats.clear()


def grid_cells(arguments: Sequence[str], params: Mapping[str, Any] | None) -> list[list[str]]:
    """The discrete grid of a multirun, in the order of Hydra's basic sweeper."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    parsed = OverridesParser.create().parse_overrides(lines)
    return [list(cell) for cell in BasicSweeper.split_arguments(parsed, None)[0]]


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _without_seed(cells: list[list[str]], seed_key: str) -> tuple[list[list[str]], set[str]]:
    """The cells without their ``seed_key`` override, and the distinct values it had."""
    seeds = {o.split("=", 1)[1] for c in cells for o in c if _key(o) == seed_key}
    return [[o for o in c if _key(o) != seed_key] for c in cells], seeds


def plan_design(
    arguments: Sequence[str], sweeper: Mapping[str, Any], base_seed: int
) -> list[list[str]]:
    """Every job of a ``DesignSweeper`` with this config, in launch order (raises ValueError)."""
    cells = grid_cells(arguments, sweeper.get("params"))
    kind = str(sweeper.get("design", "grid"))
    replications = int(sweeper.get("replications", 1))
    seed_key = str(sweeper.get("seed_key", "seed"))
    problems: list[design.Problem] = []
    if kind not in ("grid", *design.DESIGNS):
        allowed = f"one of grid, {', '.join(design.DESIGNS)}"
        problems.append(("hydra.sweeper.design", kind, allowed))
    if replications < 1:
        problems.append(("hydra.sweeper.replications", replications, "an integer >= 1"))
    problems += _runs_per_job_problems(sweeper)
    ranges: list[design.Range] = []
    if kind != "grid":
        ranges, more = design.parse_ranges(sweeper.get("ranges") or {})
        problems += [(f"hydra.sweeper.{k}", v, a) for k, v, a in more]
        if int(sweeper.get("points", 0)) < 1:
            problems.append(("hydra.sweeper.points", sweeper.get("points"), "an integer >= 1"))
    if kind == "grid" and replications == 1:
        if problems:
            raise ValueError(_problem_text(problems))
        return cells  # exactly Hydra's grid
    cells, seeds = _without_seed(cells, seed_key)
    if len(seeds) > 1:
        allowed = "one value: replications set the seed of each run (seed + r)"
        problems.append((seed_key, ",".join(sorted(seeds)), allowed))
    if problems:
        raise ValueError(_problem_text(problems))
    points: list[dict[str, float | int]] = [{}]
    if kind != "grid":
        points = design.design_points(
            ranges, kind, int(sweeper["points"]), int(sweeper.get("seed", 0))
        )
    return design.job_overrides(points, replications, base_seed, cells, seed_key)


def _problem_text(problems: Sequence[design.Problem]) -> str:
    return "\n".join(f"invalid config: {k} = {v!r}; allowed: {a}" for k, v, a in problems)


def search_spec(sweeper: Mapping[str, Any]) -> SearchSpec:
    """The ``SearchSpec`` of a threshold sweeper config (raises ValueError naming bad keys)."""
    names = SearchSpec.__dataclass_fields__
    own = {"parameter", "params", "runs_per_job", "_target_"}
    unknown = sorted(set(sweeper) - set(names) - own)
    if unknown:
        allowed = f"a key of the threshold search: parameter, params, {', '.join(names)}"
        raise ValueError(_problem_text([(f"hydra.sweeper.{unknown[0]}", "?", allowed)]))
    values = {k: sweeper[k] for k in names if k in sweeper}
    try:
        spec = SearchSpec(**values)
    except TypeError as exc:
        raise ValueError(f"invalid config: hydra.sweeper: {exc}") from exc
    problems = [(f"hydra.sweeper.{k}", v, a) for k, v, a in spec.problems()]
    problems += _runs_per_job_problems(sweeper)
    if not str(sweeper.get("parameter") or ""):
        problems.insert(0, ("hydra.sweeper.parameter", sweeper.get("parameter"), "a config key"))
    if problems:
        raise ValueError(_problem_text(problems))
    return spec


def cell_settings(cfg: DictConfig, parameter: str) -> dict[str, Any]:
    """The threshold sweeper's settings as the composed config ``cfg`` of a cell resolves them."""
    node = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
    assert isinstance(node, dict)
    names = set(SearchSpec.__dataclass_fields__) | {"runs_per_job"}
    return {"parameter": parameter, **{str(k): v for k, v in node.items() if k in names}}


def run_seed(base_seed: int, k: int) -> int:
    """The seed of run ``k`` of a threshold search started with ``seed = base_seed``.

    ``SeedSequence([base_seed, k])``: searches with different base seeds never share a run's
    seed (``base_seed + k`` would: the searches of seeds 0 and 1 would share all but one run),
    and run ``k`` has the same seed in every cell (common random numbers along a capacity
    curve). A non-negative 63-bit integer, as ``seed`` allows.
    """
    import numpy as np

    state = np.random.SeedSequence([base_seed, k]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def _format_x(x: float, spec: SearchSpec) -> str:
    return design.format_value(round(x) if spec.integer else float(x))


def _value(r: Any) -> dict[str, Any]:
    """What a job returned, or a failed run's dict when it raised."""
    try:
        value = r.return_value  # raises the job's exception if it raised
    except Exception as exc:
        log.error("job %s raised: %s", getattr(r, "overrides", "?"), exc)
        value = {"failed": True, "engine_failed": True, "failure_reason": str(exc)}
    return dict(value) if isinstance(value, Mapping) else {"failed": None}


GROUPS_DIR = "groups"  # the Hydra job dirs of jobs of several runs: groups/N/
POINTS_JSON = "points.json"  # in such a job dir: its runs (number, overrides, values to set)
GROUP_SUBDIR = "hydra.sweep.subdir=" + GROUPS_DIR + "/${hydra.job.num}"
MAX_RUNS_PER_JOB = 32


def group_runs(batch: Sequence[Sequence[str]], size: int, is_value: Any) -> list[list[int]]:
    """Consecutive runs of ``batch`` that one Hydra job can run, up to ``size`` per job.

    Runs share a job when they differ only in the values of the same keys (``seed=1`` and
    ``seed=2``; ``x=1.5 seed=7`` and ``x=2.25 seed=8``): the job's config is composed for the
    first, and each run sets its own values on a copy of it, as Hydra would after composing
    (``sim.job_config``). A different config group or any other kind of override starts a job.
    """
    groups: list[list[int]] = []
    last: tuple[str, ...] | None = None
    for i, job in enumerate(batch):
        shape = tuple(_key(o) + "=" if is_value(o) else o for o in job)
        if groups and shape == last and len(groups[-1]) < size:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = shape
    return groups


class _Batches:
    """Launch batches through the launcher, with the progress bar and the stats."""

    def __init__(self, sweeper: Any, kind: str, total: int) -> None:
        self.sweeper = sweeper
        self.next_idx = 0  # the number (run dir) of the next run
        self.next_group = 0  # the Hydra job number of the next job of several runs
        self.stats = SweepStats(kind)
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=total, desc=kind, unit=" runs", disable=None, leave=False)

    def launch(self, batch: list[list[str]]) -> list[dict[str, Any]]:
        """Run ``batch`` (one override list per run); each run's small result dict, in order."""
        size = self.sweeper.runs_per_job_for(len(batch))
        if size > 1:
            values = self._launch_grouped(batch, size)
        else:
            returns = self.sweeper.launcher.launch(batch, initial_job_idx=self.next_idx)
            values = [_value(r) for r in returns]
        self.next_idx += len(batch)
        for value in values:
            self.stats.runs += 1
            self.stats.failed += bool(value.get("failed"))
            self.stats.errors += bool(value.get("engine_failed"))
        self.bar.update(len(batch))
        self.bar.set_postfix(failed=self.stats.failed, errors=self.stats.errors)
        return values

    def _launch_grouped(self, batch: list[list[str]], size: int) -> list[dict[str, Any]]:
        """Launch ``batch`` as Hydra jobs of up to ``size`` runs each (see ``group_runs``)."""
        loader = self.sweeper.hydra_context.config_loader
        value = {o: loader.is_value_override(o) for job in batch for o in job}  # parsed once
        groups = group_runs(batch, size, value.__getitem__)
        root = Path(str(self.sweeper.config.hydra.sweep.dir)) / GROUPS_DIR
        jobs = []
        for j, group in enumerate(groups):
            points = [
                {
                    "num": self.next_idx + i,
                    "overrides": batch[i],
                    "values": [o for o in batch[i] if value[o]],
                }
                for i in group
            ]
            folder = root / str(self.next_group + j)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / POINTS_JSON).write_text(json.dumps(points, indent=1) + "\n")
            jobs.append([*batch[group[0]], GROUP_SUBDIR])
        returns = self.sweeper.launcher.launch(jobs, initial_job_idx=self.next_group)
        self.next_group += len(groups)
        out: list[dict[str, Any]] = [{} for _ in batch]
        for group, r in zip(groups, returns, strict=True):
            value = _value(r)
            runs = value.get("points")
            if not isinstance(runs, list) or len(runs) != len(group):  # the whole job failed
                runs = [value] * len(group)
            for i, run in zip(group, runs, strict=True):
                out[i] = dict(run) if isinstance(run, Mapping) else {"failed": None}
        return out

    def close(self) -> SweepStats:
        self.bar.close()
        self.stats.wall_s = time.perf_counter() - self.t0
        log.info("%s", self.stats.line())
        _stats.append(self.stats)
        return self.stats


class _Base(Sweeper):
    """What both sweepers share: Hydra's setup, the sweep dir, the launcher."""

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        from sim.job_config import wrap

        hydra_context = wrap(hydra_context)  # each job's config without composing conf/ again
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _sweep_dir(self) -> Path:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        return sweep_dir

    def runs_per_job_for(self, n: int) -> int:
        """How many of a batch of ``n`` runs one Hydra job runs (``runs_per_job``; null: about
        a quarter of the batch per worker, at most ``MAX_RUNS_PER_JOB``). 1 when the job
        configs come from another config loader or run dirs are not named by job number."""
        from sim.job_config import SweepConfigLoader

        if not isinstance(self.hydra_context.config_loader, SweepConfigLoader):
            return 1
        sweep = OmegaConf.to_container(self.config.hydra.sweep, resolve=False)
        if not isinstance(sweep, dict) or sweep.get("subdir") != "${hydra.job.num}":
            return 1
        if self.runs_per_job is not None:
            return max(1, int(self.runs_per_job))
        launcher = self.config.hydra.launcher
        workers = next(
            (
                int(launcher[k])
                for k in ("n_jobs", "array_parallelism")
                if isinstance(launcher.get(k), int) and launcher[k] > 0
            ),
            1 if str(launcher.get("_target_", "")).endswith("BasicLauncher") else 8,
        )
        return max(1, min(MAX_RUNS_PER_JOB, math.ceil(n / (4 * workers))))

    max_batch_size: int | None = None
    runs_per_job: int | None = None
    config: DictConfig
    hydra_context: Any


def _runs_per_job_problems(sweeper: Mapping[str, Any]) -> list[design.Problem]:
    value = sweeper.get("runs_per_job")
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return []
    return [("hydra.sweeper.runs_per_job", value, "null (automatic) or an integer >= 1")]


def _runs_per_job(value: Any) -> int | None:
    problems = _runs_per_job_problems({"runs_per_job": value})
    if problems:
        raise ValueError(_problem_text(problems))
    return int(value) if value is not None else None


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


class DesignSweeper(_Base):
    """Grids, space-filling designs and replications (see the module docstring)."""

    def __init__(
        self,
        design: str = "grid",
        points: int = 0,
        replications: int = 1,
        seed: int = 0,
        seed_key: str = "seed",
        ranges: Any = None,
        params: Any = None,
        max_batch_size: int | None = None,
        runs_per_job: int | None = None,
    ) -> None:
        self.options = {
            "design": design,
            "points": points,
            "replications": replications,
            "seed": seed,
            "seed_key": seed_key,
            "ranges": _plain(ranges) or {},
            "params": _plain(params) or {},
        }
        self.max_batch_size = max_batch_size
        self.runs_per_job = _runs_per_job(runs_per_job)

    def sweep(self, arguments: list[str]) -> list[Any]:
        jobs = plan_design(arguments, self.options, int(self.config.get("seed", 0)))
        self._sweep_dir()
        batches = _Batches(self, "sweep", len(jobs))
        # null: the whole sweep in one launch (the largest jobs of several runs)
        size = max(1, len(jobs) if self.max_batch_size is None else int(self.max_batch_size))
        returns: list[Any] = []
        with logging_redirect_tqdm():
            for i in range(0, len(jobs), size):
                returns.append(batches.launch(jobs[i : i + size]))
        batches.close()
        return returns


class ThresholdSweeper(_Base):
    """An adaptive threshold search per grid cell (see the module docstring)."""

    def __init__(
        self,
        parameter: str = "",
        params: Any = None,
        runs_per_job: int | None = None,
        **search: Any,
    ) -> None:
        self.runs_per_job = _runs_per_job(runs_per_job)
        self.parameter = parameter
        self.params = _plain(params) or {}
        self.search = {k: _plain(v) for k, v in search.items()}
        self.max_batch_size = None

    def _cell_spec(self, cell: list[str], spec: SearchSpec) -> SearchSpec:
        """The search of one cell: the sweeper's settings resolved in that cell's config, so a
        bracket that refers to a swept value (``lo: ${mul:0.25,${workers}}``) follows it."""
        if not cell:
            return spec
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(cell))
        return search_spec(cell_settings(cfg, self.parameter))

    def sweep(self, arguments: list[str]) -> list[Any]:
        spec = search_spec({"parameter": self.parameter, **self.search})
        seed_key = "seed"
        cells, _ = _without_seed(grid_cells(arguments, self.params), seed_key)
        cells = [[o for o in c if _key(o) != self.parameter] for c in cells]
        base_seed = int(self.config.get("seed", 0))
        sweep_dir = self._sweep_dir()
        specs = [self._cell_spec(cell, spec) for cell in cells]
        searches = [ThresholdSearch(cell_spec) for cell_spec in specs]
        counts = [0] * len(cells)
        batches = _Batches(self, "threshold", spec.budget * len(cells))
        returns: list[Any] = []
        errors: list[str | None] = [None] * len(cells)
        job_nums: list[list[int]] = [[] for _ in cells]  # the job (run dir) of each told run
        with logging_redirect_tqdm():
            while True:
                plan: list[tuple[int, list[float]]] = []
                for i, s in enumerate(searches):
                    if errors[i] is None and not s.done:
                        xs = s.propose()
                        if xs:
                            plan.append((i, xs))
                if not plan:
                    break
                jobs: list[list[str]] = []
                for i, xs in plan:
                    for x in xs:
                        value = _format_x(x, specs[i])
                        seed = run_seed(base_seed, counts[i])
                        jobs.append([*cells[i], f"{self.parameter}={value}", f"{seed_key}={seed}"])
                        counts[i] += 1
                first_job = batches.next_idx
                results = batches.launch(jobs)
                returns.append(results)
                k = 0
                for i, xs in plan:
                    got = results[k : k + len(xs)]
                    bad = [r.get("failure_reason") for r in got if r.get("engine_failed")]
                    if bad:
                        errors[i] = f"{len(bad)} run(s) could not finish: {bad[0]}"
                    else:
                        searches[i].tell(xs, [bool(r.get("failed")) for r in got])
                        job_nums[i].extend(range(first_job + k, first_job + k + len(xs)))
                    k += len(xs)
        stats = batches.close()
        stats.thresholds = [
            _cell_result(self.parameter, cells[i], s.result(), errors[i]) | {"jobs": job_nums[i]}
            for i, s in enumerate(searches)
        ]
        stats.path = write_threshold(sweep_dir, self.parameter, stats.thresholds, spec)
        return returns


def _cell_result(
    parameter: str, cell: list[str], result: ThresholdResult, error: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"parameter": parameter, "overrides": cell, **result.to_dict()}
    if error is not None:
        out["stop_reason"] = "run_failed"
        out["error"] = error
    return out


def format_thresholds(cells: Sequence[Mapping[str, Any]]) -> str:
    """One line per searched cell: the estimate, its interval, the runs and why it stopped."""
    lines = []
    for c in cells:
        where = " ".join(c.get("overrides") or []) or "-"
        est, lo, hi = (c.get(k) for k in ("estimate", "ci_low", "ci_high"))
        value = "n/a" if est is None else f"{est:.6g} [{_g(lo)}, {_g(hi)}]"
        lines.append(
            f"  {c['parameter']} at P(failure) = {c.get('target')}: {value}"
            f" ({100 * float(c.get('confidence') or 0):g}% interval), {c.get('runs')} runs,"
            f" {c.get('stop_reason')}  [{where}]"
        )
    return "\n".join(lines)


def _g(x: Any) -> str:
    return "n/a" if x is None else f"{x:.6g}"


def write_threshold(
    sweep_dir: Path, parameter: str, cells: list[dict[str, Any]], spec: SearchSpec
) -> Path:
    """``threshold.json``: the first (or only) cell's result at the top, every cell under
    ``cells``; written to a temporary name and renamed."""
    first = cells[0]
    doc: dict[str, Any] = {
        "parameter": parameter,
        "target": spec.target,
        "confidence": spec.confidence,
        "log_scale": spec.log_scale,
        "increasing": spec.increasing,
        **{k: first.get(k) for k in ("estimate", "ci_low", "ci_high", "stop_reason")},
        "runs": sum(int(c["runs"]) for c in cells),
        "cells": cells,
    }
    path = sweep_dir / THRESHOLD_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path
