"""A plain SimPy model of the reference workload: the baseline of docs/performance.md.

This is the model of ``experiment=bench_surge`` (see docs/model.md) written the obvious SimPy way:
one ``env.process`` per listener, a ``simpy.Resource`` per edge node for its join workers, a
``req | env.timeout(patience)`` for the join timeout, plain Python counters for the connections and
the token bucket, and Python's ``random.Random`` for every draw. No numba, no batching, no ticks.
It draws different random numbers from the engine, so its counts agree with the engine's in
distribution only; the point is the cost per attempt of the conventional way, the figure the
batched engine is compared with ("the engine is about N× a plain SimPy model").

The model, with s = expected_arrivals / Λ_shape(600) and Λ_shape(600) = 8134.8:

- arrivals: a Poisson process of intensity s·λ(t), λ = 2/s until 60 s, a linear ramp to 60/s at
  120 s, then 2 + 58·e^(−(t−120)/90) until 600 s, when arrivals stop (drawn by thinning);
- one global token bucket, 80·s tokens/s, burst 100·s, starting full, one token per attempt
  (rejection ``bucket``);
- round(4·s) edge nodes, chosen by the power of two choices on the connections they hold (two
  distinct random nodes, the one holding fewer, the first on a tie); the chosen node rejects the
  attempt when it holds 1000 connections (``full``) or when it has no free worker and 50 attempts
  already wait (``queue``);
- an attempt that enters a node takes a connection and waits FIFO for one of its 2 workers; without
  a worker after 2 s it gives up and hands the connection back (``timeout``); with one, it is
  served for Exp(mean 1/6 s) and joins, and the listener keeps the connection for a session of
  Exp(mean 300 s);
- after failed attempt k the listener waits U(0, min(30, 0.5·2^(k−1))) s and tries again; after 6
  failed attempts it abandons. The run lasts until every listener has left or abandoned.

Usage::

    .venv/bin/python benchmarks/simpy_baseline.py --expected-arrivals 1e4 [--seed 0] [--json]

It prints a summary like the engine's (``spacesim run experiment=bench_surge``): counts, rejections
by reason, join latency p50/p99 (first attempt to the end of the successful join, backoffs
included), the peak of concurrent listeners, the wall time of the simulation, attempts per second
and the process's peak resident memory (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import time
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

# the reference workload (conf/experiment/bench_surge.yaml)
END_S = 600.0
PEAK_SHAPE = 60.0  # the maximum of λ_shape, the thinning bound
SHAPE_TOTAL = 120.0 + 1860.0 + 960.0 + 5220.0 * (1.0 - math.exp(-480.0 / 90.0))  # Λ_shape(600)
NODES_PER_S = 4
JOIN_WORKERS = 2
SERVICE_MEAN_S = 1.0 / 6.0
CONNECTIONS_PER_NODE = 1000
WAITING_CAP = 50
JOIN_TIMEOUT_S = 2.0
BUCKET_RATE_PER_S = 80.0  # times s
BUCKET_BURST = 100.0  # times s
MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
SESSION_MEAN_S = 300.0
REASONS = ("bucket", "full", "queue", "timeout")


def shape_rate(t: float) -> float:
    """λ_shape(t), new listeners per second before scaling by s."""
    if t < 60.0:
        return 2.0
    if t < 120.0:
        return 2.0 + 58.0 * (t - 60.0) / 60.0
    return 2.0 + 58.0 * math.exp(-(t - 120.0) / 90.0)


class TokenBucket:
    """Tokens refill continuously at ``rate`` up to ``burst``; an attempt takes one."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + self.rate * (now - self.last))
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Node:
    """An edge node: its join workers (FIFO) and the connections it holds."""

    def __init__(self, env: simpy.Environment) -> None:
        self.workers = simpy.Resource(env, capacity=JOIN_WORKERS)
        self.connections = 0


class Room:
    """The whole model: the source, the bucket, the fleet, the listeners and the counters."""

    def __init__(self, expected_arrivals: float, seed: int) -> None:
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.scale = expected_arrivals / SHAPE_TOTAL
        self.nodes = [Node(self.env) for _ in range(max(1, round(NODES_PER_S * self.scale)))]
        self.bucket = TokenBucket(BUCKET_RATE_PER_S * self.scale, BUCKET_BURST * self.scale)
        self.arrivals = 0
        self.attempts = 0
        self.joined = 0
        self.abandoned = 0
        self.rejected = dict.fromkeys(REASONS, 0)
        self.latencies: list[float] = []
        self.concurrent = 0
        self.peak = 0
        self.peak_time = 0.0
        self.env.process(self.source())

    def source(self) -> Generator[simpy.Event, Any, None]:
        """New listeners: a homogeneous process at the peak rate, thinned to s·λ_shape(t)."""
        env, rng = self.env, self.rng
        rate_max = PEAK_SHAPE * self.scale
        t = 0.0
        while True:
            t += rng.expovariate(rate_max)
            if t >= END_S:
                return
            if rng.random() * PEAK_SHAPE < shape_rate(t):
                yield env.timeout(t - env.now)
                env.process(self.listener())

    def choose(self) -> Node:
        """Power of two choices on the connections held (the first node on a tie)."""
        n = len(self.nodes)
        if n == 1:
            return self.nodes[0]
        i = self.rng.randrange(n)
        j = self.rng.randrange(n - 1)
        if j >= i:
            j += 1
        a, b = self.nodes[i], self.nodes[j]
        return a if a.connections <= b.connections else b

    def listener(self) -> Generator[simpy.Event, Any, None]:
        env, rng = self.env, self.rng
        self.arrivals += 1
        first = env.now
        k = 0
        while True:
            k += 1
            self.attempts += 1
            reason = None
            if not self.bucket.take(env.now):
                reason = "bucket"
            else:
                node = self.choose()
                workers = node.workers
                if node.connections >= CONNECTIONS_PER_NODE:
                    reason = "full"
                elif workers.count >= JOIN_WORKERS and len(workers.queue) >= WAITING_CAP:
                    reason = "queue"
                else:
                    node.connections += 1
                    with workers.request() as req:
                        yield req | env.timeout(JOIN_TIMEOUT_S)
                        if req.triggered:
                            yield env.timeout(rng.expovariate(1.0 / SERVICE_MEAN_S))
                        else:
                            reason = "timeout"
                    if reason is None:
                        self.joined += 1
                        self.latencies.append(env.now - first)
                        self.concurrent += 1
                        if self.concurrent > self.peak:
                            self.peak = self.concurrent
                            self.peak_time = env.now
                        yield env.timeout(rng.expovariate(1.0 / SESSION_MEAN_S))
                        self.concurrent -= 1
                        node.connections -= 1
                        return
                    node.connections -= 1
            self.rejected[reason] += 1
            if k >= MAX_ATTEMPTS:
                self.abandoned += 1
                return
            yield env.timeout(rng.random() * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (k - 1)))


def run(expected_arrivals: float, seed: int) -> dict[str, Any]:
    """Simulate one surge to the end; return its summary."""
    start = time.perf_counter()
    room = Room(expected_arrivals, seed)
    room.env.run()
    wall = time.perf_counter() - start
    lat = np.array(room.latencies)
    p50, p99 = np.quantile(lat, [0.5, 0.99]) if lat.size else (math.nan, math.nan)
    return {
        "arrivals": room.arrivals,
        "attempts": room.attempts,
        "joined": room.joined,
        "abandoned": room.abandoned,
        "rejected": room.rejected,
        "join_latency_p50_s": float(p50),
        "join_latency_p99_s": float(p99),
        "peak_concurrent": room.peak,
        "peak_time_s": room.peak_time,
        "expected_arrivals": expected_arrivals,
        "scale": room.scale,
        "nodes": len(room.nodes),
        "sim_end_s": float(room.env.now),
        "wall_s": wall,
        "attempts_per_s": room.attempts / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "seed": seed,
    }


def _fmt(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a two-column table, like ``spacesim run`` prints it."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            rows.extend((f"{key}.{k}", _fmt(v)) for k, v in value.items())
        else:
            rows.append((key, _fmt(value)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expected-arrivals", type=float, default=1e4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    summary = run(args.expected_arrivals, args.seed)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"SimPy baseline, bench_surge, expected_arrivals={args.expected_arrivals:g}")
        print(format_summary(summary))


if __name__ == "__main__":
    main()
