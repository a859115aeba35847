"""``spacesim bench``: throughput of the kernels and the engine on this machine.

Figures (JSON keys):

- ``nhpp_arrivals_per_s``: the parallel NHPP sampler drawing 10^7 arrivals of the reference surge
  profile (median of 5 after 2 warm-ups); ``nhpp_stream_arrivals_per_s``: the streaming sampler the
  engine uses, one batch per 1 s tick;
- ``queue_attempts_per_s``: the join-queue kernel (M/M/c/K+M, c = 10, ρ = 0.98) per customer;
- ``engine_attempts_per_s`` and ``engine_wall_s``: the whole engine on ``experiment=bench_surge``
  at 10^6 expected arrivals (the simulation itself, not the process start);
- ``compile_s``: ``spacesim run`` of a tiny ``bench_surge`` with an empty kernel cache, minus its
  simulation: start-up including compiling every kernel a run needs; ``cached_start_s``: the same
  with the cache filled, the time from the command to the end of the run outside the simulation
  (an upper bound on the time before simulating starts).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sim.kernels.arrivals import Profile

log = logging.getLogger(__name__)


def reference_profile(n_arrivals: float) -> Profile:
    """The surge profile of ``scenario=bench_surge`` (``conf/``), scaled to ``n_arrivals``."""
    from sim.hydra_app import compose_typed
    from sim.model.surge import profile_of

    cfg = compose_typed(["scenario=bench_surge", f"scenario.expected_arrivals={n_arrivals:g}"])
    return profile_of(cfg.scenario)


def median_rate(work: Callable[[int], int], repeats: int = 5, warmups: int = 2) -> float:
    """Items per second of ``work(seed)``: the median over ``repeats`` seeds after warm-ups.

    The first calls of a kernel are slower than the rest (thread pool start, first touch of
    fresh memory), hence more than one warm-up.
    """
    for seed in range(-warmups, 0):
        work(seed + warmups + 1000)
    rates = []
    for seed in range(1, repeats + 1):
        start = time.perf_counter()
        n = work(seed)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_nhpp(n_arrivals: float) -> dict[str, float]:
    from sim.kernels.arrivals import NHPPStream, sample_parallel

    profile = reference_profile(n_arrivals)

    def parallel(seed: int) -> int:
        return int(sample_parallel(profile, seed).size)

    def stream(seed: int) -> int:
        s = NHPPStream(profile, np.random.default_rng(seed))
        return sum(int(s.next_batch(float(t)).size) for t in range(1, 601))

    return {
        "nhpp_arrivals_per_s": median_rate(parallel),
        "nhpp_stream_arrivals_per_s": median_rate(stream),
    }


def bench_queue(customers: int) -> dict[str, float]:
    from sim.kernels.mmc import JoinQueueSim

    def work(seed: int) -> int:
        sim = JoinQueueSim(9.8, 1.0, 10, K=60, theta=0.5, rng=np.random.default_rng(seed))
        sim.run(customers)
        return customers

    return {"queue_attempts_per_s": median_rate(work)}


def bench_engine(expected_arrivals: float) -> dict[str, float]:
    from sim.config import register
    from sim.engine import simulate
    from sim.hydra_app import compose_typed

    register()
    cfg = compose_typed(
        ["experiment=bench_surge", f"scenario.expected_arrivals={expected_arrivals:g}"]
    )
    cfg.engine.progress = False
    simulate(compose_typed(["experiment=bench_surge", "scenario.expected_arrivals=1e4"]))
    summary = simulate(cfg).summary
    return {
        "engine_attempts_per_s": summary["attempts"] / summary["wall_s"],
        "engine_wall_s": summary["wall_s"],
        "engine_attempts": summary["attempts"],
    }


def _startup_s(cache_dir: str | None) -> float:
    """Command time minus simulation time of a tiny ``spacesim run``."""
    exe = Path(sys.executable).with_name("spacesim")
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            str(exe),
            "run",
            "experiment=bench_surge",
            "scenario.expected_arrivals=1e4",
            "output.archive=false",
            f"hydra.run.dir={tmp}/run",
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=tmp)
        total = time.perf_counter() - start
        wall = json.loads((Path(tmp) / "run" / "summary.json").read_text())["wall_s"]
    return total - float(wall)


def bench_startup() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as cold:
        compile_s = _startup_s(cold)
    _startup_s(None)  # make sure the default cache is filled
    return {"compile_s": compile_s, "cached_start_s": _startup_s(None)}


def run_bench(quick: bool = False) -> dict[str, Any]:
    scale = 100 if quick else 1
    out: dict[str, Any] = {"quick": quick}
    steps: list[tuple[str, Callable[[], dict[str, float]]]] = [
        ("nhpp", lambda: bench_nhpp(1e7 / scale)),
        ("queue", lambda: bench_queue(5_000_000 // scale)),
        ("engine", lambda: bench_engine(1e6 / min(scale, 10))),
        ("startup", bench_startup),
    ]
    for name, step in steps:
        log.info("bench: %s", name)
        out |= step()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="spacesim bench",
        description="Throughput of the kernels and the engine on this machine.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="1/100 of the sizes (a smoke run)")
    args = parser.parse_args(argv)
    res = run_bench(args.quick)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    rows = [
        ("NHPP parallel sampler", f"{res['nhpp_arrivals_per_s'] / 1e6:8.1f} M arrivals/s"),
        ("NHPP streaming sampler", f"{res['nhpp_stream_arrivals_per_s'] / 1e6:8.1f} M arrivals/s"),
        ("join-queue kernel", f"{res['queue_attempts_per_s'] / 1e6:8.1f} M attempts/s"),
        ("engine, bench_surge", f"{res['engine_attempts_per_s'] / 1e6:8.2f} M attempts/s"),
        ("engine wall", f"{res['engine_wall_s']:8.2f} s ({res['engine_attempts']:,} attempts)"),
        ("start-up, empty kernel cache", f"{res['compile_s']:8.2f} s"),
        ("start-up, cached kernels", f"{res['cached_start_s']:8.2f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
