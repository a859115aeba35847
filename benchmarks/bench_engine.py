"""Engine scaling on the reference workload: wall time and peak memory vs expected arrivals.

Each size runs as its own process through the project's command line,

    spacesim run experiment=bench_surge scenario.expected_arrivals=N output.archive=false \
        engine.progress=false hydra.run.dir=DIR

and reports the simulation's own wall time (``wall_s`` from ``summary.json``), the whole command's
time, attempts per second and the process's peak resident memory (the child's ``ru_maxrss``).

With ``--dynamics`` every size runs twice in turn, as above and with every dynamic on (node
health with crashes, the autoscaler, AIMD admission, a retry budget:
``experiment=bench_dynamics``), and the ratio
of their attempts per second is reported, run pair by run pair.

Usage: python benchmarks/bench_engine.py [--sizes 1e4 1e5 1e6 1e7] [--repeat 3] [--dynamics]
       [--json]
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

DYNAMICS = ["experiment=bench_dynamics"]  # conf/experiment/bench_dynamics.yaml


def run_once(n: float, workdir: Path, extra: list[str] | None = None) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("spacesim")
    run_dir = workdir / f"n{n:g}_{time.monotonic_ns()}"
    cmd = [
        str(exe),
        "run",
        *(extra or ["experiment=bench_surge"]),
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
        "crashes": summary.get("crashes", 0),
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6, 1e7])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dynamics", action="store_true", help="also with every dynamic on")
    args = parser.parse_args()
    if args.dynamics:
        return compare(args)
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


def compare(args: argparse.Namespace) -> None:
    """Each size with and without ``DYNAMICS``, in turn; the ratio of attempts/s pair by pair."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_once(1e4, work)
        run_once(1e4, work, DYNAMICS)
        for n in args.sizes:
            pairs = [(run_once(n, work), run_once(n, work, DYNAMICS)) for _ in range(args.repeat)]
            ratios = [d["attempts_per_s"] / b["attempts_per_s"] for b, d in pairs]
            row = {
                "expected_arrivals": n,
                "base_attempts_per_s": statistics.median(b["attempts_per_s"] for b, _ in pairs),
                "dyn_attempts_per_s": statistics.median(d["attempts_per_s"] for _, d in pairs),
                "dyn_attempts": pairs[0][1]["attempts"],
                "dyn_crashes": pairs[0][1]["crashes"],
                "dyn_wall_s": statistics.median(d["wall_s"] for _, d in pairs),
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
            }
            rows.append(row)
            if not args.json:
                print(
                    f"N={n:>8.0e}  base {row['base_attempts_per_s'] / 1e6:5.2f} M/s  "
                    f"dynamics {row['dyn_attempts_per_s'] / 1e6:5.2f} M/s "
                    f"({row['dyn_attempts']:,} attempts, {row['dyn_crashes']} crashes, "
                    f"{row['dyn_wall_s']:.2f} s)  ratio {row['ratio_median']:.2f} "
                    f"[{row['ratio_min']:.2f}, {row['ratio_max']:.2f}]",
                    flush=True,
                )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
