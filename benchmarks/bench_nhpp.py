"""Throughput of the NHPP arrival samplers on the reference launch-surge profile.

    python benchmarks/bench_nhpp.py [--n 1e7 1e8] [--tick 1.0] [--window 0.1]

Prints arrivals/s (median of 5 runs after two full-size warm-ups) for the streaming sampler
(`NHPPStream.next_batch` once per tick, arrays discarded) and for `sample_parallel` with
one thread and with all of numba's threads, on the surge profile of `scenario=bench_surge`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numba
import numpy as np

from sim.bench import median_rate, reference_profile
from sim.kernels.arrivals import NHPPStream, sample_parallel


def bench_nhpp(n_arrivals: float, tick_s: float = 1.0, window_s: float = 0.1) -> dict[str, float]:
    """Arrivals/s of the streaming and parallel samplers for about n_arrivals arrivals."""
    p = reference_profile(n_arrivals)
    ticks = np.arange(p.start_s + tick_s, p.end_s + tick_s, tick_s)

    def stream(seed: int) -> int:
        s = NHPPStream(p, np.random.default_rng(seed))
        return sum(s.next_batch(float(t)).size for t in ticks)

    def parallel(n_threads: int) -> Callable[[int], int]:
        return lambda seed: sample_parallel(p, seed, window_s, n_threads).size

    threads = numba.get_num_threads()
    return {
        "n_arrivals": n_arrivals,
        "threads": float(threads),
        "stream_per_s": median_rate(stream),
        "parallel_1thread_per_s": median_rate(parallel(1)),
        "parallel_per_s": median_rate(parallel(threads)),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, nargs="+", default=[1e7, 1e8], help="arrivals per run")
    ap.add_argument("--tick", type=float, default=1.0, help="streaming batch length, s")
    ap.add_argument("--window", type=float, default=0.1, help="parallel window, s")
    args = ap.parse_args(argv)
    for n in args.n:
        r = bench_nhpp(n, args.tick, args.window)
        print(
            f"n={n:.0e}  stream {r['stream_per_s'] / 1e6:7.1f} M/s   "
            f"parallel x1 {r['parallel_1thread_per_s'] / 1e6:7.1f} M/s   "
            f"parallel x{r['threads']:.0f} {r['parallel_per_s'] / 1e6:7.1f} M/s"
        )


if __name__ == "__main__":
    main()
