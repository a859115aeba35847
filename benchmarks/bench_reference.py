"""The reference engine next to the batched engine: wall time and peak memory of one run each.

Each engine runs ``experiment=bench_surge`` (or ``--experiment bench_dynamics``: the same workload
with node health and crashes, the autoscaler, AIMD and a retry budget) in a child process of its
own (so that the peak resident memory, ``ru_maxrss``, is that run's alone, and the batched
engine's kernel compilation or cache loading is not charged to the reference engine). A child
reports the summary's ``wall_s`` (the simulation itself: for the batched engine without the
kernel warm-up), the run's CPU time (``cpu_s``, with the warm-up; on a shared machine the steadier
figure), the child's whole wall time (imports, config, warm-up and run), its peak RSS, the counts
and the crashes.

Usage::

    .venv/bin/python benchmarks/bench_reference.py [--experiment bench_surge|bench_dynamics]
        [--expected-arrivals 1e5] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

ENGINES = ("batched", "reference")
EXPERIMENTS = ("bench_surge", "bench_dynamics")


def child(kind: str, experiment: str, expected_arrivals: float, seed: int) -> dict[str, Any]:
    """One run in this process (called in the child); its figures."""
    start = time.perf_counter()
    from sim.engine import simulate
    from sim.hydra_app import compose_typed

    cfg = compose_typed(
        [
            f"experiment={experiment}",
            f"scenario.expected_arrivals={expected_arrivals:g}",
            f"engine.kind={kind}",
            f"seed={seed}",
        ]
    )
    cpu0 = time.process_time()
    s = simulate(cfg).summary
    cpu = time.process_time() - cpu0
    return {
        "engine": kind,
        "arrivals": s["arrivals"],
        "attempts": s["attempts"],
        "joined": s["joined"],
        "peak_concurrent": s["peak_concurrent"],
        "crashes": s["crashes"],
        "reconnects": s["reconnects"],
        "wall_s": s["wall_s"],
        "cpu_s": cpu,  # the run's CPU time (simulate, warm-up included): robust to a busy machine
        "process_wall_s": time.perf_counter() - start,
        "attempts_per_s": s["attempts"] / s["wall_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    }


def measure(kind: str, experiment: str, expected_arrivals: float, seed: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, f"--experiment={experiment}",
         f"--expected-arrivals={expected_arrivals:g}", f"--seed={seed}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", choices=EXPERIMENTS, default="bench_surge")
    parser.add_argument("--expected-arrivals", type=float, default=1e5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.experiment, args.expected_arrivals, args.seed)))
        return
    rows = [measure(kind, args.experiment, args.expected_arrivals, args.seed) for kind in ENGINES]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.experiment}, expected_arrivals={args.expected_arrivals:g}, seed={args.seed}")
    head = ("engine", "wall_s", "cpu_s", "process_s", "attempts/s", "peak_rss_mb", "crashes")
    print("  {:<10} {:>8} {:>8} {:>10} {:>11} {:>12} {:>8}".format(*head))
    for r in rows:
        print(
            f"  {r['engine']:<10} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f}"
            f" {r['process_wall_s']:>10.2f} {r['attempts_per_s']:>11,.0f} {r['peak_rss_mb']:>12.0f}"
            f" {r['crashes']:>8}"
        )
    ratio = rows[1]["wall_s"] / rows[0]["wall_s"]
    print(f"  reference / batched wall_s: {ratio:.0f}x")


if __name__ == "__main__":
    main()
