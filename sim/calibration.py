"""Calibration: which platform reproduces an event's public timeline (``spacesim calibrate``).

A replay scenario names its event (``scenario.event``); the event's public data points
(``sim.observations``) are bands, not numbers. Calibration searches the unknown parameters the
experiment declares (``hydra.sweeper.parameters``: fleet size, join and control-plane capacity,
crash thresholds, the demand) for the values whose runs land inside every band of the data points
whose role is ``fit``:

- each parameter point runs ``replications`` times, replication ``r`` with the same seed at every
  point (common random numbers: ``sim.sweep.run_seed(seed, r)``), so the objective is a
  deterministic function of the point and two points differ by their parameters, not by luck;
- each run reports the simulated value of every data point (its summary's ``data``, written on
  the scenario clock by ``sim.clock``); the sweeper turns them into centred residuals
  ``z = (simulated - centre) / half_width`` (a data point from a weak source counts
  ``weak_weight`` as much; a value a run could not produce, such as the start delay of a room that
  never started, counts as ``MISSING_Z`` half-widths off);
- ``sim.fit`` chooses the points (a batched trust region: every batch goes through the launcher,
  so a calibration runs on joblib workers, SLURM or Ray as any sweep does), and estimates each
  fitted parameter's uncertainty from the residuals' sensitivity to it.

It writes ``calibration.json`` to the sweep dir (the fit, its uncertainty, the residual of every
data point at the fit, the runs of the best point) and ``calibrated.yaml`` (the fitted values as
a config to compose, with a comment naming the fit); every run is in ``sweep.h5``. Method, data
and limits: ``docs/calibration.md``.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from tqdm.contrib.logging import logging_redirect_tqdm

from sim import design, observations
from sim.fit import FitResult, Parameter, band_part, centred_residual, fit
from sim.sweep import _Base, _Batches, _plain, _runs_per_job, run_seed

log = logging.getLogger(__name__)

CALIBRATION_JSON = "calibration.json"
CALIBRATED_YAML = "calibrated.yaml"
MISSING_Z = 10.0  # a data point a run could not produce: this many half-widths off its band


@dataclass(frozen=True)
class CalibrationSpec:
    """The sweeper's settings, checked: what is fitted and how much it may cost."""

    parameters: tuple[Parameter, ...]
    replications: int
    budget: int
    batch: int
    tol: float
    weak_weight: float
    start_from_config: bool = True


def spec_of(settings: Mapping[str, Any]) -> CalibrationSpec:
    """The settings of ``hydra.sweeper`` as a spec; ``ValueError`` naming every bad key."""
    problems: list[tuple[str, Any, str]] = []
    params: list[Parameter] = []
    raw = settings.get("parameters") or {}
    if not isinstance(raw, Mapping) or not raw:
        problems.append(("parameters", raw, "a mapping {config key: {lo, hi, log, integer}}"))
        raw = {}
    for name, p in raw.items():
        if not isinstance(p, Mapping) or not {"lo", "hi"} <= set(p):
            problems.append((f"parameters.{name}", p, "a mapping with lo and hi"))
            continue
        extra = set(p) - {"lo", "hi", "log", "integer"}
        if extra:
            problems.append((f"parameters.{name}", sorted(extra), "only lo, hi, log, integer"))
        try:
            param = Parameter(
                str(name),
                float(p["lo"]),
                float(p["hi"]),
                bool(p.get("log", False)),
                bool(p.get("integer", False)),
            )
        except (TypeError, ValueError):
            problems.append((f"parameters.{name}", dict(p), "numbers lo < hi"))
            continue
        problems += [(f"parameters.{k}", v, a) for k, v, a in param.problems()]
        params.append(param)
    ints = {"replications": 1, "budget": 2, "batch": 1}
    for key, least in ints.items():
        v = settings.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            problems.append((key, v, f"an integer >= {least}"))
    tol, weak = settings.get("tol"), settings.get("weak_weight")
    if not isinstance(tol, int | float) or not 0 < tol < 1:
        problems.append(("tol", tol, "a trust-region radius in (0, 1) of the unit cube"))
        tol = 0.0
    if not isinstance(weak, int | float) or not 0 <= weak <= 1:
        problems.append(("weak_weight", weak, "a weight in [0, 1]"))
        weak = 0.0
    start = settings.get("start_from_config", True)
    if not isinstance(start, bool):
        problems.append(("start_from_config", start, "true or false"))
    if problems:
        raise ValueError(
            "; ".join(f"hydra.sweeper.{k} = {v!r}; allowed: {a}" for k, v, a in problems)
        )
    return CalibrationSpec(
        tuple(params),
        int(settings["replications"]),
        int(settings["budget"]),
        int(settings["batch"]),
        float(tol),
        float(weak),
        bool(start),
    )


def residuals(
    points: Sequence[observations.Observation],
    runs: Sequence[Mapping[str, Any] | None],
    weak_weight: float,
) -> np.ndarray:
    """Centred residuals ``(len(runs), len(points))`` of runs' ``data`` (module docstring)."""
    low = np.array([p.low for p in points])
    high = np.array([p.high for p in points])
    weight = np.array([weak_weight if p.weak else 1.0 for p in points])
    out = np.full((len(runs), len(points)), MISSING_Z)
    for i, data in enumerate(runs):
        sim = np.array([float((data or {}).get(p.id, math.nan)) for p in points])
        z = centred_residual(sim, low, high)
        out[i] = np.where(np.isfinite(z), z, MISSING_Z) * weight
    return out


def start_point(config: Any, parameters: Sequence[Parameter]) -> dict[str, float] | None:
    """The composed config's values of the parameters, if every one is a number inside its
    range: the search starts there (a replay experiment holds the last fit), else ``None``."""
    x0: dict[str, float] = {}
    for p in parameters:
        v = OmegaConf.select(config, p.name, default=None, throw_on_missing=False)
        if isinstance(v, bool) or not isinstance(v, int | float) or not p.lo <= v <= p.hi:
            return None
        x0[p.name] = float(v)
    return x0


def point_overrides(point: Mapping[str, float]) -> list[str]:
    return [f"{k}={design.format_value(v)}" for k, v in point.items()]


class CalibrationSweeper(_Base):
    """Fits ``parameters`` to the data points of ``scenario.event`` (module docstring)."""

    def __init__(
        self,
        parameters: Any = None,
        replications: int = 2,
        budget: int = 48,
        batch: int = 8,
        tol: float = 0.02,
        weak_weight: float = 0.5,
        start_from_config: bool = True,
        runs_per_job: int | None = None,
    ) -> None:
        self.settings = {
            "parameters": _plain(parameters) or {},
            "replications": replications,
            "budget": budget,
            "batch": batch,
            "tol": tol,
            "weak_weight": weak_weight,
            "start_from_config": start_from_config,
        }
        self.runs_per_job = _runs_per_job(runs_per_job)
        self.max_batch_size = None

    def sweep(self, arguments: list[str]) -> list[Any]:
        spec = spec_of(self.settings)
        event = self.config.scenario.get("event")
        if event is None:
            raise ValueError(
                "scenario.event = None; allowed: a scenario that replays an event"
                f" ({', '.join(observations.events())}): calibration fits its data points"
            )
        points = [o for o in observations.load(str(event)) if o.role == "fit"]
        if not points:
            raise ValueError(f"scenario.event = {event!r} has no data point with role 'fit'")
        if any("," in a for a in arguments):
            raise ValueError(f"calibration fits one config: no sweep over values ({arguments})")
        base_seed = int(self.config.get("seed", 0))
        sweep_dir = self._sweep_dir()
        R = spec.replications
        batches = _Batches(self, "calibrate", spec.budget * R)
        runs: dict[tuple[str, ...], list[tuple[int, dict[str, Any] | None]]] = {}
        returns: list[Any] = []

        def evaluate(batch: list[dict[str, float]]) -> np.ndarray:
            jobs = [
                [*arguments, *point_overrides(p), f"seed={run_seed(base_seed, r)}"]
                for p in batch
                for r in range(R)
            ]
            first = batches.next_idx
            results = batches.launch(jobs)
            returns.append(results)
            data = [None if r.get("engine_failed") else r.get("data") for r in results]
            for i, p in enumerate(batch):
                got = [(first + i * R + r, data[i * R + r]) for r in range(R)]
                runs[tuple(point_overrides(p))] = got
            return residuals(points, data, spec.weak_weight).reshape(len(batch), R, len(points))

        offset = np.array(
            [(p.value - (p.low + p.high) / 2) / ((p.high - p.low) / 2) for p in points]
        )
        x0 = start_point(self.config, spec.parameters) if spec.start_from_config else None
        if x0:
            log.info("the search starts from the experiment's values: %s", x0)
        with logging_redirect_tqdm():
            result = fit(
                evaluate,
                spec.parameters,
                budget=spec.budget,
                batch=spec.batch,
                seed=base_seed,
                x0=x0,
                tol=spec.tol,
                value_offset=offset,
            )
        stats = batches.close()
        best_runs = runs.get(tuple(point_overrides(result.best)), [])
        doc = calibration_doc(str(event), arguments, points, result, best_runs, spec, stats.runs)
        stats.path = write_calibration(sweep_dir, doc)
        stats.calibration = doc
        return returns


def calibration_doc(
    event: str,
    arguments: Sequence[str],
    points: Sequence[observations.Observation],
    result: FitResult,
    best_runs: Sequence[tuple[int, Mapping[str, Any] | None]],
    spec: CalibrationSpec,
    runs: int,
) -> dict[str, Any]:
    """What ``calibration.json`` holds (docs/calibration.md)."""
    fitted = result.to_dict()
    rows = []
    for p in points:
        values = [float((d or {}).get(p.id, math.nan)) for _, d in best_runs]
        finite = [v for v in values if math.isfinite(v)]
        mean = float(np.mean(finite)) if finite else math.nan
        z = float(centred_residual(mean, p.low, p.high)) if finite else math.nan
        rows.append(
            {
                "id": p.id,
                "quantity": p.quantity,
                "t_s": p.t_s,
                "value": p.value,
                "low": p.low,
                "high": p.high,
                "weak": p.weak,
                "simulated": _num(mean),
                "simulated_runs": [_num(v) for v in values],
                "band_residual": _num(float(band_part(z))) if finite else None,
                "inside": bool(finite and p.low <= mean <= p.high),
            }
        )
    return {
        "event": event,
        "overrides": list(arguments),
        "parameters": {
            p.name: {"lo": p.lo, "hi": p.hi, "log": p.log, "integer": p.integer}
            for p in spec.parameters
        },
        "best": fitted["best"],
        "stderr": fitted["stderr"],
        "ci": fitted["ci"],
        "identified": fitted["identified"],
        "loss": fitted["loss"],
        "band_loss": fitted["band_loss"],
        "inside_all_bands": all(r["inside"] for r in rows),
        "data_points": rows,
        "replications": spec.replications,
        "evaluations": result.evaluations,
        "runs": runs,
        "best_jobs": [num for num, _ in best_runs],
        "converged": result.converged,
        "message": result.message,
    }


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def write_calibration(sweep_dir: Path, doc: dict[str, Any]) -> Path:
    """``calibration.json`` (renamed into place) and ``calibrated.yaml`` in ``sweep_dir``."""
    path = sweep_dir / CALIBRATION_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    tree: dict[str, Any] = {}
    for key, value in doc["best"].items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"# @package _global_\n# Fitted by spacesim calibrate ({when}) to the data points of"
        f" {doc['event']}: band loss {doc['band_loss']:.4g}, {doc['runs']} runs,"
        f" {doc['replications']} replications per point;\n# inside every band:"
        f" {doc['inside_all_bands']}. The fit: {sweep_dir / CALIBRATION_JSON}\n"
    )
    (sweep_dir / CALIBRATED_YAML).write_text(head + OmegaConf.to_yaml(OmegaConf.create(tree)))
    return path


def format_calibration(doc: Mapping[str, Any]) -> str:
    """The fit as a few lines: each parameter with its interval, each data point's residual."""
    lines = [f"  calibration of {doc['event']}: band loss {doc['band_loss']:.4g}"]
    for name, value in doc["best"].items():
        lo, hi = doc["ci"].get(name) or (None, None)
        known = "" if doc["identified"].get(name) else "  (not identified by the data)"
        lines.append(f"    {name} = {value:.6g}  95% [{_g(lo)}, {_g(hi)}]{known}")
    for r in doc["data_points"]:
        mark = "in band" if r["inside"] else f"residual {_g(r['band_residual'])}"
        lines.append(
            f"    {r['id']}: simulated {_g(r['simulated'])} vs {r['value']:.6g}"
            f" [{r['low']:.6g}, {r['high']:.6g}]  {mark}"
        )
    return "\n".join(lines)


def _g(x: Any) -> str:
    return "n/a" if x is None else f"{x:.6g}"
