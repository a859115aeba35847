"""Many small runs: how much of a sweep's wall time is simulation, and how much is overhead.

Runs ``spacesim sweep`` over ``--runs`` seeds of a small ``bench_surge`` (``--arrivals``
arrivals) on ``--workers`` workers (the joblib launcher, or the basic one for 1 worker), then
reads the merged archive: each run's ``wall_s`` is the time its engine spent simulating, so the
sweep's simulation time is their sum divided by the workers, and everything else (start-up,
Hydra composing each job's config, kernel loading, writing each run file, merging) is overhead::

    .venv/bin/python benchmarks/bench_sweep.py --runs 200 --workers 2
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim.archive import read_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--arrivals", type=float, default=1e4)
    args = parser.parse_args(argv)
    spacesim = shutil.which("spacesim") or str(Path(sys.executable).with_name("spacesim"))
    with tempfile.TemporaryDirectory() as tmp:
        sweep_dir = Path(tmp) / "sweep"
        cmd = [
            spacesim,
            "sweep",
            "experiment=bench_surge",
            f"scenario.expected_arrivals={args.arrivals:g}",
            f"seed=range(0,{args.runs})",
            "--workers",
            str(args.workers),
            f"hydra.sweep.dir={sweep_dir}",
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=tmp)
        wall = time.perf_counter() - start
        table = read_summary(sweep_dir / "sweep.h5")
    sim_cpu = float(table["wall_s"].sum())
    sim_wall = sim_cpu / args.workers
    overhead = wall - sim_wall
    print(f"{args.runs} runs of {args.arrivals:g} arrivals on {args.workers} worker(s)")
    print(f"  command wall      {wall:8.1f} s   ({60 * args.runs / wall:.1f} runs/min)")
    print(f"  simulation        {sim_cpu:8.1f} s in all, {sim_wall:.1f} s of wall")
    print(f"  per run           {sim_cpu / args.runs * 1e3:8.1f} ms simulating")
    print(f"  overhead          {overhead:8.1f} s of wall ({overhead / sim_wall:.2f}x simulation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
