"""The ``spacesim`` command line.

``spacesim run [overrides]`` is a Hydra application (``key=value`` overrides, ``-m`` multiruns,
``--cfg job`` to print the config); the config is checked before Hydra creates anything, and a bad
one exits with status 2 and a message naming the key, the value and what is allowed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

USAGE = """\
spacesim: capacity planning for live-audio rooms hit by launch surges

commands:
  run [overrides]     simulate one surge (Hydra overrides; -m for a multirun);
                      writes summary.json and run.h5 to the run dir.
                      `spacesim run --help` lists the config groups and values.
  validate ...        simulate the join queue against queueing theory (Erlang B/C/A,
                      M/M/c/K); `spacesim validate --help`.
  bench [--json]      throughput of the kernels and the engine on this machine.

examples:
  spacesim run
  spacesim run experiment=bench_surge scenario.expected_arrivals=1e5 hydra.run.dir=out/bench
  spacesim run -m seed=1,2,3 platform.nodes=32,64
  spacesim validate --lam 9.8 --mu 1 -c 10 --theta 0.5
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


def cmd_run(args: list[str]) -> int:
    from sim.hydra_app import check_overrides

    overrides, multirun, runs = _split_hydra_args(args)
    if runs:
        problems = check_overrides(overrides, multirun)
        if problems:
            for p in problems:
                print(f"spacesim: {p}", file=sys.stderr)
            print("spacesim: nothing was run (see `spacesim run --help`)", file=sys.stderr)
            return 2
    return _hydra_run(args)


def _hydra_run(args: list[str]) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig

    from sim.config import register
    from sim.hydra_app import conf_dir
    from sim.runner import format_summary, run_job

    register()
    status = {"failed": 0}

    @hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
    def task(cfg: DictConfig) -> None:
        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        summary = run_job(cfg, run_dir, list(hc.overrides.task))
        if summary.get("engine_failed", summary["failed"]):  # the run failed, not just the room
            status["failed"] += 1
        if hc.mode == RunMode.RUN:
            print(format_summary(summary))
        print(f"run dir: {run_dir}")

    argv = sys.argv
    sys.argv = ["spacesim run", *args]
    try:
        task()
    finally:
        sys.argv = argv
    return 1 if status["failed"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "run":
        return cmd_run(args[1:])
    if args and args[0] == "bench":
        from sim.bench import main as bench_main

        return bench_main(args[1:])
    if args and args[0] == "validate":
        from sim.validation import main as validate_main

        return validate_main(args[1:])
    parser = argparse.ArgumentParser(
        prog="spacesim", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = ["run", "validate", "bench"]
    parser.add_argument("command", nargs="?", choices=commands, help="what to do")
    ns = parser.parse_args(args)
    if ns.command is None:
        parser.print_help()
        return 0
    return 2  # pragma: no cover - every command returns above


if __name__ == "__main__":
    sys.exit(main())
