"""The Trump 2024 replay at full scale and 1 s ticks: what one replay of the main job costs.

Each run is its own process through the project's command line,

    spacesim run experiment=replay_trump_2024 engine.tick_s=1 output.archive=false \\
        engine.progress=false hydra.run.dir=DIR

(the shipped calibration, ~2 M people, on the event's clock from the share of the Space to the
room's end) after one small run that fills or loads the kernel cache. Reported: the simulation's
wall time (``wall_s`` of ``summary.json``, median of ``--repeat`` runs) against the target of
15 s, the whole command's time, the simulated seconds (``ticks`` x ``tick_s``), the join
attempts and attempts per second of wall time.

Usage: python benchmarks/bench_replay.py [--repeat 3] [--tick-s 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 15.0
"""The wall time one full-scale replay at 1 s ticks must stay under."""


def run_once(workdir: Path, extra: list[str]) -> dict[str, Any]:
    """One replay in a child process; its summary and the command's wall time."""
    exe = Path(sys.executable).with_name("spacesim")
    run_dir = workdir / f"run_{time.monotonic_ns()}"
    cmd = [
        str(exe),
        "run",
        "experiment=replay_trump_2024",
        *extra,
        "output.archive=false",
        "engine.progress=false",
        f"hydra.run.dir={run_dir}",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, stdout=subprocess.DEVNULL, check=False)
    command_s = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return {"summary": summary, "wall_s": summary["wall_s"], "command_s": command_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tick-s", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tick = [f"engine.tick_s={args.tick_s:g}"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_once(work, [*tick, "scenario.expected_arrivals=1e4"])  # fill / load the kernel cache
        runs = [run_once(work, tick) for _ in range(args.repeat)]
    s = runs[0]["summary"]
    wall = statistics.median(r["wall_s"] for r in runs)
    row = {
        "tick_s": args.tick_s,
        "arrivals": s["arrivals"],
        "peak_concurrent": s["peak_concurrent"],
        "simulated_s": s["ticks"] * args.tick_s,
        "sim_end_s": s["sim_end_s"],
        "attempts": s["attempts"],
        "wall_s_median": wall,
        "wall_s_max": max(r["wall_s"] for r in runs),
        "command_s_median": statistics.median(r["command_s"] for r in runs),
        "attempts_per_s": s["attempts"] / wall,
        "target_s": TARGET_S,
        "within_target": wall <= TARGET_S,
    }
    if args.json:
        print(json.dumps(row, indent=2))
        return
    verdict = "within" if row["within_target"] else "OVER"
    print(
        f"Trump 2024 replay, {row['arrivals']:,} people, {args.tick_s:g} s ticks: "
        f"{row['simulated_s']:,.0f} simulated s (to t = {row['sim_end_s']:,.0f} s), "
        f"{row['attempts']:,} attempts",
        flush=True,
    )
    print(
        f"wall {wall:.2f} s (max {row['wall_s_max']:.2f}; command {row['command_s_median']:.2f} s"
        f", median of {args.repeat}), {row['attempts_per_s'] / 1e6:.2f} M attempts/s; "
        f"target <= {TARGET_S:g} s: {verdict}",
        flush=True,
    )


if __name__ == "__main__":
    main()
