"""``spacesim main``: the project's main job (``make run``), one study in a few minutes.

The job replays the two public incidents with the shipped calibration, estimates where the default
platform breaks under a Trump-like launch, renders one HTML report of it all and answers in one
line each:

1. (``--calibrate`` only) ``spacesim calibrate experiment=calibrate_trump_2024`` (and
   ``calibrate_desantis_2023`` when that experiment exists) into ``STUDY/calibrate_<event>``; the
   replays then run with the fitted values of each ``calibrated.yaml`` as overrides.
2. ``spacesim run experiment=replay_trump_2024`` into ``STUDY/trump_2024`` and
   ``experiment=replay_desantis_2023`` into ``STUDY/desantis_2023`` (ordinary run dirs:
   ``summary.json``, ``run.h5``).
3. ``spacesim threshold experiment=threshold_audience`` with a budget of ``--budget`` runs
   (default 48: about 45 s on 2 cores, an interval ~3% wide) into ``STUDY/threshold``.
4. The counterfactuals: what would have started each room on time. ``spacesim threshold
   experiment=ontime_trump_2024`` (the control-plane workers, without the operator's cap) into
   ``STUDY/ontime_trump_2024`` and ``experiment=ontime_desantis_2023`` (the edge fleet) into
   ``STUDY/ontime_desantis_2023``, each with a budget of ``--ontime-budget`` runs (default 16);
   each answer compares the threshold with the replay's (fitted) value.
5. ``sim.report.build_report(STUDY, STUDY / "report")`` after ``STUDY/study.json`` (title, the
   answers, one part per step's directory) is written.

Every simulation step is a subprocess of the same command line (``python -m sim.cli``), whose
output goes to ``STUDY/<step>.log``; with ``--workers`` 2 or more (the default: 2) the two replays
run at the same time. A failed step is logged with its reason and the job goes on
with the next one; the exit status is 1 when any step failed. ``STUDY/main.json`` records each
step's command, status, reason and wall time; ``STUDY/main.log`` this job's log.

Overrides: ``KEY=VALUE`` goes to every simulation step (both replays, the threshold search and
the calibrations); ``STEP:KEY=VALUE`` to one step only, where STEP is ``trump``, ``desantis``,
``replay`` (both replays), ``threshold``, ``ontime`` (both counterfactuals), ``ontime_trump``,
``ontime_desantis`` or ``calibrate`` (both calibrations). Example, a quick
look at reduced scale::

    spacesim main --budget 16 replay:scenario.expected_arrivals=1e5
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.observations import Observation, band_residual, load

log = logging.getLogger(__name__)

STUDY_JSON = "study.json"
MAIN_JSON = "main.json"
REPORT_DIR = "report"
DEFAULT_BUDGET = 48
DEFAULT_ONTIME_BUDGET = 16


@dataclass(frozen=True)
class Counterfactual:
    """An on-time counterfactual of the job: the experiment, and how its answer names things."""

    event: str  # the replay it starts from: trump_2024 or desantis_2023
    title: str
    room: str  # the room in the answer
    what: str  # the searched parameter in the answer, plural
    without: str  # what the counterfactual leaves out of the replay, for the answer ("" if none)


ONTIME: dict[str, Counterfactual] = {
    "ontime_trump_2024": Counterfactual(
        "trump_2024",
        "Counterfactual: the control plane that would have started the Musk-Trump Space on time",
        "the Musk-Trump Space",
        "control-plane workers",
        "without the operator's cap",
    ),
    "ontime_desantis_2023": Counterfactual(
        "desantis_2023",
        "Counterfactual: the edge fleet that would have started the DeSantis room on time",
        "the DeSantis room",
        "edge nodes",
        "",
    ),
}
"""The counterfactual steps (``experiment=<name>``; docs/calibration.md), by step name."""
MAX_REL_WIDTH = 0.10
"""The widest threshold interval (relative to the estimate) the job accepts without a warning."""

PREFIXES: dict[str, tuple[str, ...]] = {
    "trump": ("trump_2024",),
    "desantis": ("desantis_2023",),
    "replay": ("trump_2024", "desantis_2023"),
    "threshold": ("threshold",),
    "ontime": ("ontime_trump_2024", "ontime_desantis_2023"),
    "ontime_trump": ("ontime_trump_2024",),
    "ontime_desantis": ("ontime_desantis_2023",),
    "calibrate": ("calibrate_trump_2024", "calibrate_desantis_2023"),
}
"""``STEP:`` prefixes of the overrides, and the steps each one reaches."""

STEP_NAMES = (
    "trump_2024",
    "desantis_2023",
    "threshold",
    "ontime_trump_2024",
    "ontime_desantis_2023",
    "report",
)
"""The steps ``--steps`` can choose from (the calibrations come with ``--calibrate``)."""

TITLE = (
    "spacesim main job: the Trump 2024 and DeSantis 2023 replays, and where the default platform "
    "fails a Trump-like launch, and what would have started each room on time"
)

USAGE_EPILOG = """\
overrides:
  KEY=VALUE          a Hydra override for every simulation step
  STEP:KEY=VALUE     for one step only; STEP: trump, desantis, replay (both replays),
                     threshold, ontime (both counterfactuals), ontime_trump,
                     ontime_desantis, calibrate (both calibrations)

outputs (in --out, default results/main/DATE/TIME):
  trump_2024/, desantis_2023/   the replays' run dirs (summary.json, run.h5)
  threshold/                    the threshold search's sweep dir (threshold.json, sweep.h5)
  ontime_*/                     the counterfactuals' sweep dirs (threshold.json, sweep.h5)
  calibrate_*/                  with --calibrate: the calibrations (calibrated.yaml)
  report/report.html            the report of the whole study
  study.json                    title, one-line answers, the parts of the report
  main.json, main.log, *.log    each step's command, status, reason, wall time; the logs

examples:
  spacesim main
  spacesim main --calibrate
  spacesim main --budget 16 replay:scenario.expected_arrivals=1e5 engine.progress=false
"""


@dataclass
class Step:
    """One step of the job: a ``spacesim`` command (``kind``) or the report."""

    name: str
    title: str
    kind: str  # "run", "threshold", "calibrate" or "report"
    overrides: list[str] = field(default_factory=list)
    fit_from: str | None = None  # a calibration step whose calibrated.yaml feeds this replay
    command: list[str] = field(default_factory=list)
    status: str = "pending"  # "ok", "failed" or "skipped"
    reason: str = ""
    wall_s: float = 0.0


# -- overrides ----------------------------------------------------------------------------------


def split_overrides(args: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``(common, per step)`` from the command line's overrides (``STEP:KEY=VALUE`` per step).

    A ``:`` before any ``=`` whose left side is not a known prefix raises ``ValueError``.
    """
    common: list[str] = []
    per_step: dict[str, list[str]] = {}
    for a in args:
        if a == "--":
            continue
        head, sep, rest = a.partition(":")
        if sep and "=" not in head and "/" not in head:
            if head not in PREFIXES:
                known = ", ".join(PREFIXES)
                raise ValueError(f"{a!r}: unknown step {head!r}; allowed: {known}")
            for step in PREFIXES[head]:
                per_step.setdefault(step, []).append(rest)
        else:
            common.append(a)
    return common, per_step


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]


def merge_overrides(*groups: Iterable[str]) -> list[str]:
    """The overrides of ``groups`` in order; a later override of the same key replaces an earlier
    one (and takes its own place in the order)."""
    out: dict[str, str] = {}
    for group in groups:
        for o in group:
            out.pop(_key(o), None)
            out[_key(o)] = o
    return list(out.values())


def _value(v: Any) -> str:
    """``v`` in Hydra's override grammar."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a quoted string: safe for any character
    return json.dumps(v)  # a list of numbers or strings


def calibrated_overrides(path: Path) -> list[str]:
    """The fitted values of a ``calibrated.yaml`` (``# @package _global_``, nested or dotted keys)
    as Hydra overrides ``key=value``."""
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: not a mapping of config keys to values")
    out: list[str] = []

    def walk(node: Mapping[Any, Any], prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping):
                walk(v, key + ".")
            else:
                out.append(f"{key}={_value(v)}")

    walk(tree, "")
    return out


# -- the plan -----------------------------------------------------------------------------------


def _experiment_exists(name: str) -> bool:
    from sim.hydra_app import conf_dir

    return (conf_dir() / "experiment" / f"{name}.yaml").is_file()


def plan(
    args: Sequence[str] = (),
    *,
    calibrate: bool = False,
    budget: int = DEFAULT_BUDGET,
    ontime_budget: int = DEFAULT_ONTIME_BUDGET,
    workers: int = 2,
    steps: Sequence[str] = STEP_NAMES,
) -> list[Step]:
    """The job's steps, in order, with their overrides (``args``: the command line's)."""
    common, per_step = split_overrides(args)
    workers_args = ["--workers", str(workers)]
    out: list[Step] = []
    events = {"trump_2024": "Trump 2024", "desantis_2023": "DeSantis 2023"}
    if calibrate:
        for event, label in events.items():
            name = f"calibrate_{event}"
            step = Step(name, f"Calibration: {label}", "calibrate")
            step.overrides = [
                *workers_args,
                *merge_overrides([f"experiment={name}"], common, per_step.get(name, [])),
            ]
            if not _experiment_exists(name):
                step.status = "skipped"
                step.reason = f"no experiment {name} (conf/experiment/{name}.yaml)"
            out.append(step)
    titles = {
        "trump_2024": "Replay: the Musk-Trump Space, 12 Aug 2024",
        "desantis_2023": "Replay: the DeSantis launch, 24 May 2023",
    }
    for event in events:
        if event not in steps:
            continue
        step = Step(
            event, titles[event], "run", fit_from=f"calibrate_{event}" if calibrate else None
        )
        step.overrides = merge_overrides(
            [f"experiment=replay_{event}"], common, per_step.get(event, [])
        )
        out.append(step)
    if "threshold" in steps:
        step = Step(
            "threshold", "Threshold: the audience at which a Trump-like launch fails", "threshold"
        )
        step.overrides = [
            *workers_args,
            *merge_overrides(
                ["experiment=threshold_audience", f"hydra.sweeper.budget={budget}"],
                common,
                per_step.get("threshold", []),
            ),
        ]
        out.append(step)
    for name, cf in ONTIME.items():
        if name not in steps:
            continue
        step = Step(
            name, cf.title, "threshold", fit_from=f"calibrate_{cf.event}" if calibrate else None
        )
        step.overrides = [
            *workers_args,
            *merge_overrides(
                [f"experiment={name}", f"hydra.sweeper.budget={ontime_budget}"],
                common,
                per_step.get(name, []),
            ),
        ]
        out.append(step)
    if "report" in steps:
        out.append(Step("report", "Report", "report"))
    return out


def command(step: Step, study: Path, fitted: Sequence[str] = ()) -> list[str]:
    """The ``spacesim`` arguments of a simulation step writing into ``study / step.name``
    (``fitted``: a calibration's overrides, before the command line's)."""
    where = study / step.name
    if step.kind == "run":
        head, *rest = step.overrides  # experiment=... first: then the fit, then the user's
        return ["run", *merge_overrides([head], fitted, rest), f"hydra.run.dir={where}"]
    flags, overrides = step.overrides[:2], step.overrides[2:]  # --workers N, then experiment=
    head, *rest = overrides
    args = merge_overrides([head], fitted, rest)
    return [step.kind, *flags, *args, f"hydra.sweep.dir={where}"]


# -- the answers --------------------------------------------------------------------------------


def _obs(observations: Iterable[Observation], id_: str) -> Observation | None:
    return next((o for o in observations if o.id == id_), None)


def _num(x: Any) -> float:
    try:
        return math.nan if x is None else float(x)
    except (TypeError, ValueError):
        return math.nan


def _mio(x: float) -> str:
    """Listeners: ``0.87 M`` from 100,000 up, else ``12,345``."""
    if math.isnan(x):
        return "n/a"
    return f"{x / 1e6:.2f} M" if abs(x) >= 1e5 else f"{x:,.0f}"


def _mins(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x / 60:.0f} min"


def _public(observations: Iterable[Observation], id_: str, fmt: Any) -> str:
    o = _obs(observations, id_)
    return "n/a" if o is None else str(fmt(o.value))


def bands_met(summary: Mapping[str, Any], observations: Iterable[Observation]) -> tuple[int, int]:
    """``(inside, total)``: how many of the ``fit`` data points the run's ``summary["data"]``
    puts inside their bands (a missing figure counts as outside)."""
    data = summary.get("data") or {}
    fit = [o for o in observations if o.role == "fit"]
    inside = sum(1 for o in fit if band_residual(o, _num(data.get(o.id))) == 0.0)
    return inside, len(fit)


def _bands(summary: Mapping[str, Any], observations: Sequence[Observation]) -> str:
    inside, total = bands_met(summary, observations)
    return f"{inside} of {total} public data points inside their bands"


def trump_answer(summary: Mapping[str, Any], observations: Sequence[Observation]) -> str:
    """The one-line answer of the Trump 2024 replay from its ``summary.json``."""
    data = summary.get("data") or {}
    delay = _num(summary.get("start_delay_s"))
    start = (
        "the conversation never starts"
        if math.isnan(delay)
        else f"the conversation starts {_mins(delay)} late"
    )
    return (
        f"Trump 2024 replay: {start} (public: {_public(observations, 'start_delay_s', _mins)}), "
        f"{_mio(_num(data.get('listeners_at_conversation_start')))} listeners at the start "
        f"(public: {_public(observations, 'listeners_at_conversation_start', _mio)}), "
        f"peak {_mio(_num(summary.get('peak_concurrent')))} "
        f"(public: {_public(observations, 'peak_conversation', _mio)}); "
        f"{_bands(summary, observations)}."
    )


def desantis_answer(summary: Mapping[str, Any], observations: Sequence[Observation]) -> str:
    """The one-line answer of the DeSantis 2023 replay from its ``summary.json``."""
    data = summary.get("data") or {}
    end = _num(summary.get("room_end_s"))
    ended = (
        "the first room is never ended"
        if math.isnan(end)
        else f"the first room ends at {_mins(end)}"
    )
    return (
        f"DeSantis 2023 replay: {ended} (public: {_public(observations, 'first_room_end', _mins)})"
        f" with {_mio(_num(data.get('first_room_at_end')))} listeners in it "
        f"(public: {_public(observations, 'first_room_at_end', _mio)}), the relaunched room "
        f"peaks at {_mio(_num(data.get('relaunch_peak')))} "
        f"(public: {_public(observations, 'relaunch_peak', _mio)}); "
        f"{_bands(summary, observations)}."
    )


def threshold_width(doc: Mapping[str, Any]) -> float:
    """The interval's width relative to the estimate (NaN without an estimate or interval)."""
    est, lo, hi = (_num(doc.get(k)) for k in ("estimate", "ci_low", "ci_high"))
    if any(math.isnan(x) or math.isinf(x) for x in (est, lo, hi)) or est == 0:
        return math.nan
    return (hi - lo) / abs(est)


def threshold_answer(doc: Mapping[str, Any]) -> str:
    """The one-line answer of the threshold search from its ``threshold.json``."""
    est, lo, hi = (_num(doc.get(k)) for k in ("estimate", "ci_low", "ci_high"))
    level = f"{100 * _num(doc.get('confidence', 0.95)):g}%"
    if math.isnan(est):
        return (
            "The threshold search found no failure threshold of a Trump-like surge "
            f"(scenario=launch) on the default platform (stop: {doc.get('stop_reason')})."
        )

    def people(x: float) -> str:
        return "n/a" if math.isnan(x) or math.isinf(x) else f"{x:,.0f}"

    width = threshold_width(doc)
    wide = "n/a" if math.isnan(width) else f"{100 * width:.1f}%"
    return (
        "The default platform fails a Trump-like surge (scenario=launch) above "
        f"{people(est)} people ({level} CI [{people(lo)}, {people(hi)}]; P(failure) = "
        f"{doc.get('target')} there, {doc.get('runs')} runs, interval {wide} wide)."
    )


def ontime_answer(doc: Mapping[str, Any], cf: Counterfactual, base: float | None) -> str:
    """The one-line answer of an on-time counterfactual from its ``threshold.json``; ``base``:
    the searched parameter's value in the replay (the fitted platform), if known."""
    est, lo, hi = (_num(doc.get(k)) for k in ("estimate", "ci_low", "ci_high"))
    label = f"Counterfactual, {cf.room}"
    without = f"{cf.without}, " if cf.without else ""
    if math.isnan(est):
        return (
            f"{label}: {without}the search found no number of {cf.what} that starts it on time "
            f"(stop: {doc.get('stop_reason')}, {doc.get('runs')} runs)."
        )
    level = f"{100 * _num(doc.get('confidence', 0.95)):g}%"
    more = not bool(doc.get("increasing", True))  # more of it, fewer late starts
    side = "more" if more else "fewer"
    line = (
        f"{label}: {without}it starts on time with {side} than {est:,.0f} {cf.what} "
        f"({level} CI [{lo:,.0f}, {hi:,.0f}], {doc.get('runs')} runs)"
    )
    if base is None or math.isnan(base):
        return line + "."
    enough = base > hi if more else base < lo
    short = base < lo if more else base > hi
    if enough:
        verdict = "enough: the late start came from elsewhere in the replay"
    elif short:
        change = est / base - 1 if more else 1 - est / base
        verdict = f"short: it needs {change:.0%} {'more' if more else 'fewer'}"
    else:
        verdict = "inside the interval: more runs (--ontime-budget) would tell if it was enough"
    return line + f"; the replay's platform has {base:,.0f}, {verdict}."


def _base_value(step: Step, parameter: str) -> float | None:
    """The value of ``parameter`` in the config the counterfactual starts from (the sweep's
    base config, composed again with the step's own overrides); None if it cannot be composed."""
    from omegaconf import OmegaConf

    from sim.hydra_app import compose_config

    args = [a for a in step.command[1:] if "=" in a and not a.startswith("hydra.sweep.dir=")]
    try:
        value = OmegaConf.select(compose_config(args), parameter)
        return None if value is None else float(value)
    except Exception as exc:  # the answer goes on without the comparison
        log.warning("%s: no base value of %s: %s", step.name, parameter, exc)
        return None


def answer(step: Step, study: Path) -> str:
    """The one-line answer of a finished step (``ValueError`` when its results are unreadable)."""
    where = study / step.name
    if step.name == "trump_2024":
        return trump_answer(_read_json(where / "summary.json"), load("trump_2024"))
    if step.name == "desantis_2023":
        return desantis_answer(_read_json(where / "summary.json"), load("desantis_2023"))
    if step.name == "threshold":
        return threshold_answer(_read_json(where / "threshold.json"))
    if step.name in ONTIME:
        doc = _read_json(where / "threshold.json")
        base = _base_value(step, str(doc.get("parameter")))
        return ontime_answer(doc, ONTIME[step.name], base)
    raise ValueError(f"no answer for step {step.name}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a JSON object")
    return doc


# -- running ------------------------------------------------------------------------------------


def _reason(log_path: Path, returncode: int) -> str:
    """Why a command failed, from the end of its log: its ``spacesim:`` lines, else the last
    line that names an error, else the last line."""
    try:
        lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines()]
    except OSError:
        lines = []
    lines = [ln for ln in lines if ln]
    own = [ln for ln in lines if ln.startswith("spacesim")]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    picked = own[-3:] or errors[-1:] or lines[-1:]
    text = "; ".join(picked) or "no output"
    return f"exit status {returncode}: {text}"


def _check(step: Step, study: Path) -> str:
    """What a simulation step that exited 0 still lacks ("" when its results are there)."""
    where = study / step.name
    need = {"run": "summary.json", "threshold": "threshold.json", "calibrate": "calibrated.yaml"}
    path = where / need[step.kind]
    if not path.is_file():
        return f"{path} was not written"
    if step.kind == "threshold":
        doc = _read_json(path)
        if doc.get("estimate") is None:
            return f"no estimate (stop: {doc.get('stop_reason')}; {doc.get('error') or ''})"
    return ""


@dataclass
class _Running:
    """A step's ``spacesim`` command under way: the process and its log."""

    step: Step
    proc: subprocess.Popen[bytes]
    log_path: Path
    start: float


def start_command(step: Step, study: Path, args: list[str]) -> _Running:
    """Start ``spacesim ARGS`` for ``step`` (``python -m sim.cli``), its output going to
    ``study/<step>.log``."""
    step.command = ["spacesim", *args]
    log_path = study / f"{step.name}.log"
    log.info("%s: %s", step.name, " ".join(step.command))
    env = os.environ | {"HYDRA_FULL_ERROR": "1"}
    with log_path.open("w") as out:  # the child holds its own copy of the file
        proc = subprocess.Popen(
            [sys.executable, "-m", "sim.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    return _Running(step, proc, log_path, time.perf_counter())


def finish_command(running: _Running, study: Path) -> None:
    """Wait for a step's command; set the step's status, reason and wall time."""
    step = running.step
    returncode = running.proc.wait()
    step.wall_s = time.perf_counter() - running.start
    if returncode != 0:
        step.status, step.reason = "failed", _reason(running.log_path, returncode)
        return
    missing = _check(step, study)
    step.status, step.reason = ("failed", missing) if missing else ("ok", "")


def run_command(step: Step, study: Path, args: list[str]) -> None:
    """Run ``spacesim ARGS`` for ``step``, its output in ``study/<step>.log``; set its status."""
    finish_command(start_command(step, study, args), study)


def batches(steps: Sequence[Step], parallel: bool) -> list[list[Step]]:
    """The steps in the order they run: with ``parallel``, consecutive replays (one process
    each) run at the same time; the searches use ``--workers`` processes themselves."""
    out: list[list[Step]] = []
    for s in steps:
        if parallel and s.kind == "run" and out and all(t.kind == "run" for t in out[-1]):
            out[-1].append(s)
        else:
            out.append([s])
    return out


def report_supports_studies() -> bool:
    """Whether ``sim.report.build_report`` knows study dirs (``study.json``) yet."""
    import sim.report

    return STUDY_JSON in Path(sim.report.__file__).read_text()


def run_report(step: Step, study: Path, progress: bool) -> Path | None:
    """``build_report`` of the study dir into ``study/report``; the HTML, or None on failure."""
    from sim.report import build_report

    step.command = ["build_report", str(study), str(study / REPORT_DIR)]
    try:
        result = build_report(study, study / REPORT_DIR, progress=progress)
    except Exception as exc:  # the report must not take the answers down with it
        step.status = "failed"
        step.reason = f"{type(exc).__name__}: {exc}"
        if not report_supports_studies():
            step.reason += " (this sim.report does not render study dirs yet)"
        return None
    for name, why in result.skipped.items():
        log.info("report: left out %s: %s", name, why)
    if not result.html.is_file():
        step.status, step.reason = "failed", f"{result.html} was not written"
        return None
    left_out = getattr(result, "parts_left_out", {})  # a study's parts that could not be read
    if left_out:
        step.status = "failed"
        step.reason = "parts left out of the report: " + "; ".join(
            f"{name}: {why}" for name, why in left_out.items()
        )
        return result.html
    step.status = "ok"
    return result.html


def write_study(study: Path, steps: Sequence[Step], answers: Sequence[str]) -> Path:
    """``study.json``: the title, the answers and one part per step that left a directory."""
    parts = [
        {"dir": s.name, "title": s.title}
        for s in steps
        if s.kind != "report" and s.status == "ok" and (study / s.name).is_dir()
    ]
    doc = {"title": TITLE, "answers": list(answers), "parts": parts}
    path = study / STUDY_JSON
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def _write_main(study: Path, steps: Sequence[Step], answers: Sequence[str], wall: float) -> None:
    doc = {
        "title": TITLE,
        "wall_s": wall,
        "ok": all(s.status != "failed" for s in steps),
        "answers": list(answers),
        "steps": [asdict(s) for s in steps],
    }
    (study / MAIN_JSON).write_text(json.dumps(doc, indent=2) + "\n")


@dataclass
class MainResult:
    """What the job did: its steps, the answers, the report (None if not written), wall time."""

    study: Path
    steps: list[Step]
    answers: list[str]
    report: Path | None
    wall_s: float

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status == "failed"]


def run_main(
    steps: list[Step], study: Path, progress: bool = False, parallel: bool = False
) -> MainResult:
    """Run ``steps`` into ``study`` (``parallel``: the replays at the same time); each step's
    failure is logged and the job goes on."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    start = time.perf_counter()
    study.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(study / "main.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    answers: list[str] = []
    html: Path | None = None
    try:
        # on a terminal, log lines go above the bar (tqdm.write) instead of through it
        with logging_redirect_tqdm() if progress else contextlib.nullcontext():
            bar = tqdm(total=len(steps), desc="main", unit="step", disable=not progress)
            for batch in batches(steps, parallel):
                bar.set_postfix_str(" + ".join(s.name for s in batch))
                todo = [s for s in batch if s.status != "skipped"]
                for s in batch:
                    if s.status == "skipped":
                        log.info("%s: skipped: %s", s.name, s.reason)
                if todo and todo[0].kind == "report":
                    t0 = time.perf_counter()
                    write_study(study, steps, answers)
                    html = run_report(todo[0], study, progress)
                    todo[0].wall_s = time.perf_counter() - t0
                else:
                    running = [
                        start_command(s, study, command(s, study, _fitted(s, steps, study)))
                        for s in todo
                    ]
                    for r in running:
                        while r.proc.poll() is None:  # the bar's clock keeps going meanwhile
                            bar.refresh()
                            time.sleep(0.25)
                        finish_command(r, study)
                for s in todo:
                    answers += _after(s, study)
                bar.update(len(batch))
            bar.close()
        write_study(study, steps, answers)
        wall = time.perf_counter() - start
        _write_main(study, steps, answers, wall)
    finally:
        log.removeHandler(handler)
        handler.close()
    return MainResult(study, list(steps), answers, html, wall)


def _after(step: Step, study: Path) -> list[str]:
    """Log how a finished step went; its answer (none for the report and the calibrations)."""
    if step.status == "failed":
        log.error("%s failed after %.1f s: %s", step.name, step.wall_s, step.reason)
        return (
            [f"{step.title}: failed ({step.reason})"] if step.kind in ("run", "threshold") else []
        )
    log.info("%s: done in %.1f s", step.name, step.wall_s)
    if step.kind not in ("run", "threshold"):
        return []
    try:
        line = answer(step, study)
    except ValueError as exc:
        step.status, step.reason = "failed", f"unreadable results: {exc}"
        log.error("%s: %s", step.name, step.reason)
        return [f"{step.title}: failed ({step.reason})"]
    if step.kind == "threshold":
        _check_width(study / step.name / "threshold.json")
    return [line]


def _fitted(step: Step, steps: Sequence[Step], study: Path) -> list[str]:
    """The fitted overrides of ``step``'s calibration, if it ran (else none, with a note)."""
    if step.fit_from is None:
        return []
    fit = next((s for s in steps if s.name == step.fit_from), None)
    if fit is None or fit.status != "ok":
        why = "was skipped" if fit is not None and fit.status == "skipped" else "did not succeed"
        log.warning("%s: calibration %s %s: the shipped values", step.name, step.fit_from, why)
        return []
    path = study / fit.name / "calibrated.yaml"
    try:
        fitted = calibrated_overrides(path)
    except (OSError, ValueError) as exc:
        log.error("%s: cannot read %s (%s): the shipped values", step.name, path, exc)
        return []
    log.info("%s: fitted values from %s: %s", step.name, path, " ".join(fitted))
    return fitted


def _check_width(path: Path) -> None:
    width = threshold_width(_read_json(path))
    if math.isnan(width) or width > MAX_REL_WIDTH:
        log.warning(
            "threshold: the interval is %s wide, more than %.0f%% of the estimate: raise --budget",
            "n/a" if math.isnan(width) else f"{100 * width:.1f}%",
            100 * MAX_REL_WIDTH,
        )


def _duration(s: float) -> str:
    m, sec = divmod(round(s), 60)
    return f"{m} min {sec} s" if m else f"{s:.1f} s"


def summary_line(result: MainResult) -> str:
    """``main: 4 of 4 steps ok in 1 min 32 s (trump_2024 8.1 s, ...)``."""
    ran = [s for s in result.steps if s.status != "skipped"]
    ok = sum(1 for s in ran if s.status == "ok")
    each = ", ".join(f"{s.name} {_duration(s.wall_s)}" for s in ran)
    failed = "".join(f"; {s.name} FAILED" for s in result.failed)
    return f"main: {ok} of {len(ran)} steps ok in {_duration(result.wall_s)} ({each}){failed}"


def default_out(now: datetime.datetime | None = None) -> Path:
    """``results/main/DATE/TIME``."""
    now = now or datetime.datetime.now()
    return Path("results") / "main" / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spacesim main",
        description=(__doc__ or "").splitlines()[0],
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="calibrate first (spacesim calibrate experiment=calibrate_<event>), then replay "
        "with the fitted values (takes far longer than 5 minutes at the shipped budget)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="the study dir (default: results/main/DATE/TIME)"
    )
    p.add_argument(
        "--workers", type=int, default=2, help="processes of the threshold search and calibrations"
    )
    p.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_BUDGET,
        help=f"runs of the threshold search (default {DEFAULT_BUDGET})",
    )
    p.add_argument(
        "--ontime-budget",
        type=int,
        default=DEFAULT_ONTIME_BUDGET,
        help=f"runs of each on-time counterfactual (default {DEFAULT_ONTIME_BUDGET})",
    )
    p.add_argument(
        "--steps",
        default=",".join(STEP_NAMES),
        help=f"the steps to run, comma-separated (default: all: {','.join(STEP_NAMES)})",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", help="Hydra overrides: KEY=VALUE or STEP:KEY=VALUE")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``spacesim main [options] [overrides]``: 0 when every step succeeded, 1 when one failed,
    2 for a bad command line."""
    p = parser()
    ns = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    steps_wanted = [s.strip() for s in ns.steps.split(",") if s.strip()]
    unknown = [s for s in steps_wanted if s not in STEP_NAMES]
    if unknown:
        p.error(f"--steps: unknown {', '.join(unknown)}; allowed: {', '.join(STEP_NAMES)}")
    if ns.workers < 1 or ns.budget < 1 or ns.ontime_budget < 1:
        p.error("--workers, --budget and --ontime-budget take an integer >= 1")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        steps = plan(
            ns.overrides,
            calibrate=ns.calibrate,
            budget=ns.budget,
            ontime_budget=ns.ontime_budget,
            workers=ns.workers,
            steps=steps_wanted,
        )
    except ValueError as exc:
        p.error(str(exc))
    study = (ns.out or default_out()).resolve()
    progress = not ns.no_progress and sys.stderr.isatty()
    result = run_main(steps, study, progress=progress, parallel=ns.workers >= 2)
    line = summary_line(result)
    (log.error if result.failed else log.info)("%s", line)
    for s in result.failed:
        log.error("%s failed: %s", s.name, s.reason)
    # the job's output: the answers, then where everything is
    for a in result.answers:
        print(a)
    print(line)
    print(f"study: {result.study}")
    if result.report is not None:
        print(f"report: {result.report}")
    else:
        why = next((f" ({s.reason})" for s in result.failed if s.kind == "report"), "")
        print(f"report: not written{why}")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
