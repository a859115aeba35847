"""Engine scaling on the reference workload: wall time and peak memory vs expected arrivals.

Each size runs as its own process through the project's command line,

    spacesim run experiment=bench_surge scenario.expected_arrivals=N output.archive=false \
        engine.progress=false hydra.run.dir=DIR

and reports the simulation's own wall time (``wall_s`` from ``summary.json``), the whole command's
time, attempts per second and the process's peak resident memory (the child's ``ru_maxrss``).

Usage: python benchmarks/bench_engine.py [--sizes 1e4 1e5 1e6 1e7] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_once(n: float, workdir: Path) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("spacesim")
    run_dir = workdir / f"n{n:g}_{time.monotonic_ns()}"
    cmd = [
        str(exe),
        "run",
        "experiment=bench_surge",
        f"scenario.expected_arrivals={n:g}",
        "output.archive=false",
        "engine.progress=false",
        f"hydra.run.dir={run_dir}",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    command_s = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    peak_kib = usage.ru_maxrss  # KiB on Linux
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "expected_arrivals": n,
        "attempts": summary["attempts"],
        "wall_s": summary["wall_s"],
        "command_s": command_s,
        "attempts_per_s": summary["attempts"] / summary["wall_s"],
        "peak_rss_mb": peak_kib / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6, 1e7])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_once(1e4, work)  # compile / fill the kernel cache
        for n in args.sizes:
            runs = [run_once(n, work) for _ in range(args.repeat)]
            row = {
                "expected_arrivals": n,
                "attempts": runs[0]["attempts"],
                "wall_s_median": statistics.median(r["wall_s"] for r in runs),
                "wall_s_min": min(r["wall_s"] for r in runs),
                "command_s_median": statistics.median(r["command_s"] for r in runs),
                "attempts_per_s": statistics.median(r["attempts_per_s"] for r in runs),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            }
            rows.append(row)
            if not args.json:
                print(
                    f"N={n:>8.0e}  attempts={row['attempts']:>10,}  "
                    f"sim {row['wall_s_median']:7.2f} s (min {row['wall_s_min']:.2f})  "
                    f"command {row['command_s_median']:6.2f} s  "
                    f"{row['attempts_per_s'] / 1e6:6.2f} M attempts/s  "
                    f"peak {row['peak_rss_mb']:7.0f} MB",
                    flush=True,
                )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
