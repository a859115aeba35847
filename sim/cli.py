"""The ``spacesim`` command line.

``spacesim run [overrides]`` is a Hydra application (``key=value`` overrides, ``-m`` multiruns,
``--cfg job`` to print the config); the config is checked before Hydra creates anything, and a bad
one exits with status 2 and a message naming the key, the value and what is allowed. So does a
run whose estimated peak memory exceeds the memory available (``sim.guard``; ``engine.guard=false``
runs it anyway); ``spacesim run --dry-run [overrides]`` prints the resolved config and the estimate
and runs nothing.

A multirun ends with one merged archive, ``sweep.h5`` in the sweep dir (the Hydra callback
``sim.callbacks.MergeSweep``). Run again into the same sweep dir, it skips the jobs whose
``run.h5`` is complete and made from the same config and runs the rest. ``spacesim sweep`` is the
same multirun, which refuses a sweep dir that already holds runs unless asked to ``--resume`` it
(then with the overrides the sweep was started with). ``spacesim inspect ARCHIVE`` describes a
``run.h5`` or ``sweep.h5``; an unreadable file exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

USAGE = """\
spacesim: capacity planning for live-audio rooms hit by launch surges

commands:
  run [overrides]     simulate one surge (Hydra overrides; -m for a multirun);
                      writes summary.json and run.h5 to the run dir.
                      `spacesim run --help` lists the config groups and values;
                      `spacesim run --dry-run [overrides]` prints the resolved config
                      and its estimated peak memory and time, and runs nothing.
  sweep [--workers N] [--resume DIR] [overrides]
                      a multirun (as `run -m`: grids, or Sobol/LHS designs with
                      hydra/sweeper=design) merged into DIR/sweep.h5; --resume DIR
                      continues a sweep that was cut off (skips its complete runs).
  threshold [--workers N] [--resume DIR] [overrides]
                      the value of one parameter at which P(failure) crosses a target,
                      with a confidence interval: an adaptive search; threshold.json.
  calibrate [--workers N] [--resume DIR] [overrides]
                      fit a replay's unknown parameters to its event's public data
                      points (scenario.event), with intervals; calibration.json.
  compare CAL_DIR CAL_DIR [...] [--json FILE]
                      which calibrated explanation of one event the data favour:
                      AIC, BIC and Akaike weights of the fits (calibration.json).
  main [--calibrate] [--out DIR] [overrides]
                      the main job (`make run`): replays Trump 2024 and DeSantis 2023,
                      the failure threshold of a Trump-like launch, one HTML report
                      and one-line answers, in results/main/DATE/TIME.
  inspect ARCHIVE [--json]
                      what a run.h5 or sweep.h5 holds: schema version, provenance,
                      runs with status and key metrics, datasets with shapes and units.
  report ARCHIVE [--out DIR]
                      an HTML report (figures, findings) of a run or a sweep, with every
                      figure as PNG and SVG; the sections the archive supports.
  validate ...        simulate the join queue against queueing theory (Erlang B/C/A,
                      M/M/c/K); `spacesim validate --help`.
  bench [--json]      throughput of the kernels and the engine on this machine.

examples:
  spacesim run
  spacesim main --calibrate
  spacesim run experiment=bench_surge scenario.expected_arrivals=1e5 hydra.run.dir=out/bench
  spacesim run -m seed=1,2,3 platform.nodes=32,64
  spacesim sweep --resume results/sweeps/2026-12-02/10-00-00_surge
  spacesim inspect results/sweeps/2026-12-02/10-00-00_surge/sweep.h5
  spacesim validate --lam 9.8 --mu 1 -c 10 --theta 0.5
"""

SWEEP_USAGE = """\
usage: spacesim sweep [--workers N] [--resume DIR] [overrides]

A multirun of `spacesim run` (the same overrides; `-m` is implied) whose jobs are merged into
one archive, sweep.h5 in the sweep dir (hydra.sweep.dir). A sweep dir that already holds runs is
refused unless --resume is given.

  --workers N    run N jobs at a time with the joblib launcher (1: in this process)
  --resume DIR   continue the sweep in DIR with the overrides it was started with (from
                 DIR/multirun.yaml; overrides given here replace those of the same key, and a
                 group option such as hydra/launcher=basic drops the old one's settings): runs
                 whose run.h5 is complete and made from the same config are not run again.
"""

THRESHOLD_USAGE = """\
usage: spacesim threshold [--workers N] [--resume DIR] [overrides]

Estimates the value of one parameter at which P(failure) crosses a target (default 0.5), where
failure is the configured criterion (criterion=...): an adaptive search that brackets the
threshold, then places batches of runs across the current confidence interval and stops when the
interval is narrow enough (hydra.sweeper.rel_width / abs_width) or the budget is spent. The
search is configured under hydra.sweeper (conf/hydra/sweeper/threshold.yaml; an experiment sets
it, e.g. experiment=threshold_erlang_b). A discrete sweep (platform.nodes=8,16,32) runs one search
per value: a capacity curve. Writes threshold.json (parameter, target, estimate, ci_low, ci_high,
confidence, runs, the fitted curve) and sweep.h5 to the sweep dir.

  --workers N    run N jobs at a time with the joblib launcher (1: in this process); on a
                 cluster use hydra/launcher=slurm or hydra/launcher=ray (docs/cluster.md)
  --resume DIR   continue a search that was cut off: complete runs are not run again

example:
  spacesim threshold experiment=threshold_erlang_b workers=20 service_rate_per_s=1 \\
      max_reject_share=0.05
"""

CALIBRATE_USAGE = """\
usage: spacesim calibrate [--workers N] [--resume DIR] [overrides]

Fits the unknown parameters of a replay (hydra.sweeper.parameters: fleet size, join and
control-plane capacity, the demand...) to the public data points of its event (scenario.event;
sim/data/events/): each point runs hydra.sweeper.replications times with common random numbers,
and a batched trust-region search moves the points until every simulated figure lands in its
band, or the budget (hydra.sweeper.budget points) is spent. Reports each fitted parameter with
a 95% interval and the residual of every data point; writes calibration.json, calibrated.yaml
(the fit as a config) and sweep.h5 to the sweep dir (docs/calibration.md).

  --workers N    run N jobs at a time with the joblib launcher (1: in this process); on a
                 cluster use hydra/launcher=slurm or hydra/launcher=ray (docs/cluster.md)
  --resume DIR   continue a calibration that was cut off: complete runs are not run again

example:
  spacesim calibrate experiment=calibrate_trump_2024 --workers 2
"""

_NO_RUN_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version")
_VALUED_FLAGS = ("--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-dir", "-cd")


def _split_hydra_args(args: Sequence[str]) -> tuple[list[str], bool, bool]:
    """``(overrides, multirun, runs)`` from the arguments of ``spacesim run``."""
    overrides: list[str] = []
    multirun = False
    runs = True
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-m", "--multirun"):
            multirun = True
        elif a in _NO_RUN_FLAGS:
            runs = False
            skip = a in _VALUED_FLAGS
        elif a in _VALUED_FLAGS:
            skip = True
        elif not a.startswith("-"):
            overrides.append(a)
    return overrides, multirun, runs


def cmd_run(args: list[str], command: Sequence[str] = ()) -> int:
    from sim.hydra_app import check_overrides, sweeper_overrides

    dry = DRY_RUN_FLAG in args
    args = [a for a in args if a != DRY_RUN_FLAG]
    overrides, multirun, runs = _split_hydra_args(args)
    if multirun:  # spacesim's design sweeper, unless the config chose one
        extra = sweeper_overrides(overrides)
        overrides, args = [*overrides, *extra], [*args, *extra]
    if runs:
        problems = check_overrides(overrides, multirun, argv=args)
        if problems:
            for p in problems:
                print(f"spacesim: {p}", file=sys.stderr)
            print("spacesim: nothing was run (see `spacesim run --help`)", file=sys.stderr)
            return 2
        if dry:
            return _dry_run(overrides, multirun)
    return _hydra_run(args, shlex.join(command or ["spacesim", "run", *args]))


DRY_RUN_FLAG = "--dry-run"


def _dry_run(overrides: list[str], multirun: bool) -> int:
    """``spacesim run --dry-run``: the resolved config of every job and its resource estimate
    (``sim.guard``); nothing runs and nothing is written."""
    from sim import guard
    from sim.hydra_app import dry_run

    jobs = dry_run(overrides, multirun)
    available = guard.format_bytes(guard.available_bytes())
    for i, (combo, config_yaml, typed) in enumerate(jobs):
        if multirun:
            print(f"# job {i}: {shlex.join(combo)}")
        print(config_yaml, end="")
        est = guard.estimate(typed)
        state = "on" if typed.engine.guard else "off (engine.guard=false)"
        print(f"# estimate: {est.describe()}")
        print(f"# estimate by part: {est.breakdown()}; {available} available; guard {state}")
    print(f"dry run: {len(jobs)} job{'s' * (len(jobs) != 1)} checked, nothing was run")
    return 0


def _hydra_run(args: list[str], command_line: str) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig

    from sim import callbacks
    from sim.archive import config_sha256
    from sim.config import register
    from sim.hydra_app import conf_dir
    from sim.job_config import point_config
    from sim.runner import completed_run, format_summary, job_config_yaml, run_job
    from sim.sweep import POINTS_JSON

    register()
    from sim.targets import install_guard

    install_guard()  # Hydra instantiates nothing outside the allowlist, whatever got this far
    callbacks.reset()
    # an exception in a job reaches spacesim's own handler (cli.main: one line, or --verbose)
    # instead of Hydra's, which prints a traceback and exits
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    # a sweep stopped by Ctrl-C: the workers' semaphores are freed by the resource tracker,
    # which would otherwise warn about them as "leaked" (nothing is lost)
    os.environ.setdefault("PYTHONWARNINGS", "ignore:resource_tracker:UserWarning")
    status = {"failed": 0}

    def one(
        cfg: DictConfig, run_dir: Path, overrides: list[str], num: int | None
    ) -> dict[str, Any]:
        """Run one config into ``run_dir`` (``num``: its number in a sweep, else ``None``)."""
        summary = None
        config_yaml = job_config_yaml(cfg)
        if num is not None:  # a sweep run again into its sweep dir: keep what is complete
            summary = completed_run(run_dir, config_sha256(config_yaml))
        note = "" if summary is None else " (complete: not run again)"
        if summary is None:
            summary = run_job(
                cfg,
                run_dir,
                overrides,
                job_num=num,
                command_line=command_line,
                config_yaml=config_yaml,
            )
        if summary.get("engine_failed", summary.get("failed")):  # the run failed, not the room
            status["failed"] += 1
        if num is None:
            print(format_summary(summary))
        if num is None or note:  # a sweep names its own dir at the end, under its progress bar
            print(f"run dir: {run_dir}{note}")
        # what a sweeper reads of a run (sim.sweep): small, picklable for every launcher
        keys = ("failed", "engine_failed", "failure_reason", "data")  # data: a replay's figures
        return {k: summary.get(k) for k in keys if k in summary}

    def point(cfg: DictConfig, sweep_dir: Path, p: dict[str, Any]) -> dict[str, Any]:
        """One run of a job of several runs; a run that cannot start fails alone."""
        try:
            run_cfg = point_config(cfg, p["values"])
            return one(run_cfg, sweep_dir / str(p["num"]), list(p["overrides"]), int(p["num"]))
        except Exception as exc:
            log.exception("run %s could not run", p.get("num"))
            reason = f"{type(exc).__name__}: {exc}"
            return {"failed": True, "engine_failed": True, "failure_reason": reason}

    @hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
    def task(cfg: DictConfig) -> dict[str, Any]:
        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        if hc.mode != RunMode.MULTIRUN:
            return one(cfg, run_dir, list(hc.overrides.task), None)
        points = run_dir / POINTS_JSON
        if not points.is_file():
            return one(cfg, run_dir, list(hc.overrides.task), int(hc.job.num))
        # a job of several runs (sim.sweep.group_runs): run_dir is SWEEP_DIR/groups/N
        sweep_dir = run_dir.parent.parent
        return {"points": [point(cfg, sweep_dir, p) for p in json.loads(points.read_text())]}

    argv = sys.argv
    sys.argv = ["spacesim run", *args]
    try:
        task()
    finally:
        sys.argv = argv
    report = callbacks.last_report()
    if report is None:  # a single run (or a multirun without the merge callback)
        return 1 if status["failed"] else 0
    # the jobs may have run in other processes: the merged archive is what counts
    for problem in report.problems:
        print(f"spacesim: {problem}", file=sys.stderr)
    if report.path.exists():
        print(f"sweep archive: {report.path} ({len(report.runs)} runs, {report.failed} not ok)")
    return 1 if report.failed or report.problems else 0


def _sweep_dir_of(overrides: Sequence[str]) -> str | None:
    for o in overrides:
        if o.startswith("hydra.sweep.dir="):
            return o.split("=", 1)[1]
    return None


def _option(args: list[str], name: str, prog: str) -> tuple[str | None, list[str]] | int:
    """``(value of --name, the other args)``, or the exit status 2 when its value is missing."""
    value: str | None = None
    rest: list[str] = []
    it = iter(args)
    for a in it:
        if a == name:
            value = next(it, None)
            if value is None:
                print(f"{prog}: {name} needs a value", file=sys.stderr)
                return 2
        elif a.startswith(name + "="):
            value = a.split("=", 1)[1]
        else:
            rest.append(a)
    return value, rest


def _launcher_args(workers: str | None, rest: list[str], prog: str) -> list[str] | int:
    """``--workers N``: the joblib launcher with N processes (1: in this process)."""
    if workers is None:
        return []
    if not workers.isdigit() or int(workers) < 1:
        print(f"{prog}: --workers = {workers!r}; allowed: an integer >= 1", file=sys.stderr)
        return 2
    if any(o.startswith(("hydra/launcher=", "hydra.launcher.")) for o in rest):
        print(
            f"{prog}: --workers chooses the joblib launcher: give it or hydra/launcher, not both",
            file=sys.stderr,
        )
        return 2
    if int(workers) == 1:
        return ["hydra/launcher=basic"]
    return ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={int(workers)}"]


def cmd_sweep(args: list[str], kind: str = "sweep") -> int:
    from sim.archive.merge import job_files
    from sim.archive.table import override_key

    prog = f"spacesim {kind}"
    command = ["spacesim", kind, *args]
    if any(a in ("-h", "--help") for a in args):
        usage = {"sweep": SWEEP_USAGE, "threshold": THRESHOLD_USAGE}
        print(usage.get(kind, CALIBRATE_USAGE), end="")
        return 0
    parsed = _option([a for a in args if a not in ("-m", "--multirun")], "--resume", prog)
    if isinstance(parsed, int):
        return parsed
    resume, rest = parsed
    parsed = _option(rest, "--workers", prog)
    if isinstance(parsed, int):
        return parsed
    workers, rest = parsed
    launcher = _launcher_args(workers, rest, prog)
    if isinstance(launcher, int):
        return launcher
    rest = [*launcher, *rest]
    if kind in ("threshold", "calibrate") and resume is None:
        rest = [f"hydra/sweeper={kind}", *rest]
    if resume is not None:
        from omegaconf import OmegaConf

        saved = Path(resume) / "multirun.yaml"
        if not saved.is_file():
            print(f"{prog}: {resume}: not a sweep dir (no multirun.yaml)", file=sys.stderr)
            return 2
        hydra_cfg = OmegaConf.load(saved).hydra
        before = [str(o) for o in [*hydra_cfg.overrides.hydra, *hydra_cfg.overrides.task]]
        replaced = {override_key(o) for o in rest} | {"hydra.sweep.dir", "hydra.mode"}
        # another group option drops the old option's settings: hydra/launcher → hydra.launcher.*
        groups = tuple(k.replace("/", ".") + "." for k in replaced if "/" in k)
        kept = [
            o
            for o in before
            if override_key(o) not in replaced and not override_key(o).startswith(groups)
        ]
        return _after_sweep(cmd_run(["-m", *kept, *rest, f"hydra.sweep.dir={resume}"], command))
    sweep_dir = _sweep_dir_of(rest)
    if sweep_dir is not None and Path(sweep_dir).is_dir() and job_files(Path(sweep_dir))[0]:
        print(
            f"{prog}: {sweep_dir} already holds runs; `{prog} --resume "
            f"{sweep_dir}` continues that sweep (or choose another hydra.sweep.dir)",
            file=sys.stderr,
        )
        return 2
    return _after_sweep(cmd_run(["-m", *rest], command))


def _after_sweep(status: int) -> int:
    """Print what the sweeper found (a threshold search: its estimates); keep the status."""
    from sim.sweep import format_thresholds, last_stats

    stats = last_stats()
    if stats is not None:
        print(stats.line())
        if stats.calibration is not None and stats.path is not None:
            from sim.calibration import format_calibration

            print(format_calibration(stats.calibration))
            print(f"calibration: {stats.path}")
        elif stats.path is not None:
            print(format_thresholds(stats.thresholds))
            print(f"threshold: {stats.path}")
    return status


def cmd_inspect(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="spacesim inspect",
        description="What a run.h5 or sweep.h5 holds: schema version, provenance, runs with "
        "status and key metrics, datasets with shapes and units.",
    )
    parser.add_argument("archive", help="a run.h5 or sweep.h5 (or a run or sweep directory)")
    parser.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    ns = parser.parse_args(args)

    from sim.archive import ArchiveError
    from sim.archive.inspect import describe, format_text

    try:
        info = describe(ns.archive)
    except ArchiveError as exc:
        print(f"spacesim inspect: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2) if ns.json else format_text(info))
    return 0


_BAD_INPUT = ("ConfigError", "ArchiveError", "FileNotFoundError", "NotADirectoryError")


def main(argv: Sequence[str] | None = None) -> int:
    """``spacesim``: every error ends as one or two lines on stderr and an exit status (2: bad
    input, 1: a failed run or anything else, 130: interrupted by Ctrl-C); ``--verbose``, anywhere
    on the line, adds the traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args
    args = [a for a in args if a != "--verbose"]
    if verbose:
        os.environ["HYDRA_FULL_ERROR"] = "1"
    from sim import callbacks

    callbacks.reset()
    try:
        return _dispatch(args)
    except KeyboardInterrupt as exc:
        _interrupted(args, exc, verbose)
        return 130
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        bad_input = any(c.__name__ in _BAD_INPUT for c in type(exc).__mro__)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"spacesim: {type(exc).__name__}: {first}".rstrip(": "), file=sys.stderr)
        hint = "check the input named above" if bad_input else "this may be a bug"
        more = "" if verbose else "; --verbose shows the traceback"
        print(f"spacesim: {hint}{more}", file=sys.stderr)
        return 2 if bad_input else 1


def _interrupted(args: list[str], exc: KeyboardInterrupt, verbose: bool) -> None:
    """What a Ctrl-C leaves behind, and how to go on."""
    from sim import callbacks

    if verbose:
        traceback.print_exception(exc)
    sweep_dir = callbacks.started_sweep()
    if sweep_dir is not None and callbacks.last_report() is None:
        kind = args[0] if args and args[0] in ("threshold", "calibrate") else "sweep"
        print(
            f"spacesim: interrupted: the finished runs are kept in {sweep_dir}; "
            f"`spacesim {kind} --resume {sweep_dir}` runs the rest",
            file=sys.stderr,
        )
        return
    run_dir = exc.args[0] if exc.args and isinstance(exc.args[0], str) else None
    where = f": {run_dir} holds a record with status interrupted" if run_dir else ""
    print(f"spacesim: interrupted{where}", file=sys.stderr)


def _dispatch(args: list[str]) -> int:
    if args and args[0] == "run":
        return cmd_run(args[1:])
    if args and args[0] == "sweep":
        return cmd_sweep(args[1:])
    if args and args[0] == "threshold":
        return cmd_sweep(args[1:], "threshold")
    if args and args[0] == "calibrate":
        return cmd_sweep(args[1:], "calibrate")
    if args and args[0] == "inspect":
        return cmd_inspect(args[1:])
    if args and args[0] == "compare":
        from sim.compare import main as compare_main

        return compare_main(args[1:])
    if args and args[0] == "main":
        from sim.mainjob import main as main_job

        return main_job(args[1:])
    if args and args[0] == "report":
        from sim.report import main as report_main

        return report_main(args[1:])
    if args and args[0] == "bench":
        from sim.bench import main as bench_main

        return bench_main(args[1:])
    if args and args[0] == "validate":
        from sim.validation import main as validate_main

        return validate_main(args[1:])
    parser = argparse.ArgumentParser(
        prog="spacesim", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = [
        *("run", "sweep", "threshold", "calibrate", "compare", "main"),
        *("inspect", "report", "validate", "bench"),
    ]
    parser.add_argument("command", nargs="?", choices=commands, help="what to do")
    ns = parser.parse_args(args)
    if ns.command is None:
        parser.print_help()
        return 0
    return 2  # pragma: no cover - every command returns above


if __name__ == "__main__":
    sys.exit(main())
