"""How long merging a sweep takes: N small synthetic run files, written by the writer, merged.

Each run has the engine's summary keys and 19 time-series columns of ``--ticks`` ticks (random
counts, so that gzip has something to do), like a small ``bench_surge`` run. The files are
written once into a temporary sweep dir (not timed), then ``merge_sweep`` is timed ``--repeat``
times (wall and CPU time: on a shared machine the CPU time is the steadier figure), and
``read_summary`` of the result once::

    .venv/bin/python benchmarks/bench_merge.py --runs 1000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from sim.archive import RunRecord, merge_sweep, read_summary, write_run

COLUMNS = (
    "arrivals attempts admitted joining abandoned joined left rejected_bucket rejected_full "
    "rejected_queue rejected_timeout concurrent waiting connections nodes_up retries_pending"
).split()


def synthetic(i: int, ticks: int, rng: np.random.Generator) -> RunRecord:
    ts: dict[str, np.ndarray] = {"t_s": np.arange(1, ticks + 1, dtype=np.float64)}
    ts |= {c: rng.poisson(5, ticks).astype(np.int64) for c in COLUMNS}
    ts |= {q: rng.exponential(0.3, ticks) for q in ("join_latency_p50_s", "join_latency_p99_s")}
    summary = {
        "arrivals": int(ts["arrivals"].sum()),
        "attempts": int(ts["attempts"].sum()),
        "joined": int(ts["joined"].sum()),
        "abandoned": int(ts["abandoned"].sum()),
        "rejected": {
            r: int(ts[f"rejected_{r}"].sum()) for r in ("bucket", "full", "queue", "timeout")
        },
        "join_latency_p50_s": 0.12,
        "join_latency_p99_s": 0.7,
        "peak_concurrent": 1000 + i,
        "peak_time_s": 226.0,
        "expected_arrivals": 2000.0,
        "scale": 0.25,
        "nodes": 4,
        "sim_end_s": float(ticks),
        "ticks": ticks,
        "wall_s": 0.2,
        "seed": i,
        "failed": False,
        "failure_reason": None,
    }
    return RunRecord(
        summary=summary,
        timeseries=ts,
        config_yaml=f"seed: {i}\n",
        overrides=[f"seed={i}"],
        parameters={"seed": i},
        seeds={"seed": i},
        job_num=i,
        tick_s=1.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    ns = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp)
        t0 = time.perf_counter()
        for i in range(ns.runs):
            write_run(sweep / str(i), synthetic(i, ns.ticks, rng))
        write_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in sweep.rglob("run.h5"))
        times, cpu = [], []
        for _ in range(ns.repeat):
            c0 = time.process_time()
            report = merge_sweep(sweep)
            cpu.append(time.process_time() - c0)
            times.append(report.seconds)
            assert len(report.runs) == ns.runs and not report.problems
        t1 = time.perf_counter()
        table = read_summary(sweep / "sweep.h5")
        read_s = time.perf_counter() - t1
        merged = (sweep / "sweep.h5").stat().st_size
    print(f"runs: {ns.runs} of {ns.ticks} ticks, {size / ns.runs / 1e3:.0f} kB each")
    print(f"write: {write_s:.1f} s ({write_s / ns.runs * 1e3:.1f} ms per run)")
    print(f"merge: median {statistics.median(times):.2f} s, min {min(times):.2f} s (wall)")
    print(
        f"merge: median {statistics.median(cpu):.2f} s, min {min(cpu):.2f} s (CPU of the process)"
    )
    print(f"sweep.h5: {merged / 1e6:.1f} MB; read_summary: {read_s:.2f} s, {table.shape}")


if __name__ == "__main__":
    main()
