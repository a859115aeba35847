"""Cost of the array streams (``sim.kernels.rng``) against numba's ``np.random.Generator``.

    python benchmarks/bench_rng.py [--n 1e7] [--calls 1e5] [--repeats 7]

Two tables, each figure the median of ``--repeats`` runs after a warm-up:

- ns per draw inside a compiled loop that sums ``n`` draws, the same loop for both generators:
  ``rng.uniform`` / ``Generator.random()``, ``rng.exponential`` / ``Generator.exponential()``,
  ``rng.integers`` / ``Generator.integers(0, n)``; and, for reference (not in ``rng``), the
  exponential as ``-log(1 - u)`` with ``1 - u = (2^53 - k) / 2^53`` computed exactly (the same
  number as ``-log1p(-u)`` to an ulp, through libm's faster ``log``), against numba's ziggurat;
- ns per call, from Python, of a trivial compiled function by its argument: nothing, an int, an
  int64 (4,) array, the (5, 4) state array of five streams, one ``np.random.Generator``. The
  difference is what a kernel pays per call to receive its streams.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
from numba import njit

from sim.kernels import rng

BOUND = 1_000_003  # a bound that is not a power of two


@njit
def _sum_uniform(s: np.ndarray, n: int) -> float:
    acc = 0.0
    for _ in range(n):
        acc += rng.uniform(s, 0)
    return acc


@njit
def _sum_random(g: np.random.Generator, n: int) -> float:
    acc = 0.0
    for _ in range(n):
        acc += g.random()
    return acc


@njit
def _sum_exponential(s: np.ndarray, n: int) -> float:
    acc = 0.0
    for _ in range(n):
        acc += rng.exponential(s, 0, 2.0)
    return acc


@njit
def _sum_gen_exponential(g: np.random.Generator, n: int) -> float:
    acc = 0.0
    for _ in range(n):
        acc += g.exponential(2.0)
    return acc


@njit
def _sum_exponential_by_log(s: np.ndarray, n: int) -> float:
    acc = 0.0
    for _ in range(n):
        a = rng.next32(s, 0)
        b = rng.next32(s, 0)
        k = (a >> 5) * 67108864 + (b >> 6)
        acc += -2.0 * math.log((9007199254740992 - k) / 9007199254740992.0)
    return acc


@njit
def _sum_integers(s: np.ndarray, n: int) -> int:
    acc = 0
    for _ in range(n):
        acc += rng.integers(s, 0, BOUND)
    return acc


@njit
def _sum_gen_integers(g: np.random.Generator, n: int) -> int:
    acc = 0
    for _ in range(n):
        acc += g.integers(0, BOUND)
    return acc


@njit
def _nothing() -> int:
    return 0


@njit
def _take(x: object) -> int:
    return 0


def _median_ns(runs: list[Callable[[], object]], per: int, repeats: int) -> list[float]:
    """Median ns per item of each of ``runs``, timed in turn within each repeat (one warm-up).

    Alternating the runs gives each the same share of whatever else the machine is doing.
    """
    times: list[list[float]] = [[] for _ in runs]
    for r in range(repeats + 1):
        for run, t in zip(runs, times, strict=True):
            start = time.perf_counter()
            run()
            if r:
                t.append(time.perf_counter() - start)
    return [statistics.median(t) / per * 1e9 for t in times]


def draw_costs(n: int, repeats: int) -> dict[str, tuple[float, float]]:
    """ns per draw: ``{kind: (array stream, numba Generator)}``."""
    states = rng.seeded(1, ("bench",))
    gen = np.random.default_rng(1)
    pairs = {
        "uniform": (_sum_uniform, _sum_random),
        "exponential": (_sum_exponential, _sum_gen_exponential),
        "exponential, -log(1-u)": (_sum_exponential_by_log, _sum_gen_exponential),
        f"integers(0, {BOUND})": (_sum_integers, _sum_gen_integers),
    }
    out = {}
    for kind, (ours, theirs) in pairs.items():
        a, b = _median_ns([lambda f=ours: f(states, n), lambda f=theirs: f(gen, n)], n, repeats)
        out[kind] = (a, b)
    return out


def call_costs(calls: int, repeats: int) -> dict[str, float]:
    """ns per call of a trivial compiled function, by argument."""
    args: dict[str, object] = {
        "int": 7,
        "int64 (4,) array": np.ones(4, dtype=np.int64),
        "int64 (5, 4) states": rng.seeded(1, ("a", "b", "c", "d", "e")),
        "np.random.Generator": np.random.default_rng(1),
    }
    runs: list[Callable[[], object]] = [lambda: [_nothing() for _ in range(calls)]]
    runs += [lambda a=a: [_take(a) for _ in range(calls)] for a in args.values()]
    return dict(zip(["(nothing)", *args], _median_ns(runs, calls, repeats), strict=True))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, default=1e7, help="draws per timed loop")
    ap.add_argument("--calls", type=float, default=1e5, help="calls per timed call loop")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs (the median is shown)")
    args = ap.parse_args(argv)
    print(f"ns per draw in a compiled loop ({args.n:.0e} draws, median of {args.repeats})")
    print(f"  {'draw':<24}{'rng (array)':>12}{'Generator':>12}{'ratio':>8}")
    for kind, (ours, theirs) in draw_costs(int(args.n), args.repeats).items():
        print(f"  {kind:<24}{ours:12.2f}{theirs:12.2f}{theirs / ours:8.2f}")
    print(f"ns per call from Python ({args.calls:.0e} calls, median of {args.repeats})")
    costs = call_costs(int(args.calls), args.repeats)
    for name, ns in costs.items():
        print(f"  {name:<24}{ns:12.0f}{ns - costs['(nothing)']:+12.0f}")


if __name__ == "__main__":
    main()
