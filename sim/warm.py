"""``python -m sim.warm``: compile the engine's kernels into numba's cache before they are needed.

A run with an empty kernel cache spends a minute or more compiling (``spacesim bench``:
``compile_s``); afterwards a process loads the machine code in a few seconds. Processes that
start together on an empty cache (the workers of a sweep, of the test suite, the ``spacesim``
commands the tests start) each compile the same kernels at once. Running this first fills the
cache for all of them: on a fresh clone before a sweep, on a cluster's node image, and in
``make test`` (beside the plain-Python pass of the kernel tests, which needs no cache).

It runs tiny versions of configs that together reach the engine's kernels and type signatures
(the default surge, every dynamic, the audio fan-out and presence, attack traffic, the loss
system of ``threshold_erlang_b``), and logs the time each took.
"""

from __future__ import annotations

import argparse
import logging
import time

log = logging.getLogger(__name__)

SMALL = ("scenario.expected_arrivals=2e4", "engine.progress=false")
CONFIGS: tuple[tuple[str, ...], ...] = (
    (),
    ("experiment=bench_surge", "autoscaler=target"),
    ("experiment=bench_dynamics",),
    ("experiment=metastable_retry_storm",),
    ("experiment=fanout_saturation",),
    ("experiment=presence_broadcast",),
    ("experiment=attack_vs_organic",),
)
LOSS_SYSTEM = ("experiment=threshold_erlang_b", "horizon_s=40", "engine.progress=false")


def warm() -> float:
    """Run each config at a tiny scale; the wall time in seconds."""
    from sim.engine import simulate
    from sim.hydra_app import compose_typed

    start = time.perf_counter()
    for overrides in [*(c + SMALL for c in CONFIGS), LOSS_SYSTEM]:
        t0 = time.perf_counter()
        simulate(compose_typed(list(overrides)))
        log.info("%-60s %6.1f s", " ".join(overrides), time.perf_counter() - t0)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.warm", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="the time of each config")
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s")
    wall = warm()
    print(f"sim.warm: the kernels are in numba's cache ({wall:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
