"""What a tick costs when nothing happens in it: a two-hour room whose components stay alive.

A room with no arrivals but a scripted operator action at the end keeps a between-tick component
alive for 7,200 ticks of 1 s, so the engine cannot use its vectorised tail: every tick goes
through the ticker, the arrival sampler, the join pipeline, the fleet snapshot, the metrics and
the components. Reported: the simulation's wall time per tick (``wall_s / ticks`` of
``summary.json``), median of ``--repeat`` runs in one process (kernels compiled by the first),
and the cost of one call of the pipeline kernel on an empty tick (``pipeline.step`` straight).

Usage: python benchmarks/bench_ticks.py [--repeat 5] [--ticks 7200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from sim.engine import simulate
from sim.hydra_app import compose_typed
from sim.kernels import pipeline


def overrides(ticks: int) -> list[str]:
    return [
        f"scenario.profile=[{{t_s: 0, rate_per_s: 0}}, {{t_s: {ticks}, rate_per_s: 0}}]",
        f"scenario.actions=[{{t_s: {ticks - 1}, do: cap_listeners, value: 100}}]",
        "engine.progress=false",
    ]


def kernel_call_us(repeat: int = 20_000) -> float:
    """One ``pipeline.step`` on an empty tick, called directly (no Python shortcut)."""
    from sim.engine import Engine

    e = Engine(compose_typed(overrides(100)))
    j, f = e.joins, e.fleet
    counts = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)
    none = np.empty(0)
    organic = np.empty(0, dtype=np.int8)  # akind: no bot
    args = (
        none, organic, j.adm_kind, j.adm_params, j.adm_state, j.adm_room, j.plc_kind, j.ring_pos,
        j.ring_node, j.cli_kind, j.cli_params, j.budget, j.throttle, j.fp, f.free, f.wroom, f.wn,
        f.cn, f.cap, f.up, f.upidx, f.epoch, j.auth_free, j.auth_room, j.flight, f.rel, j.ret,
        j.slots, j.slot_free, j.jr, j.bins, j.istate, counts, j.latency, j.states,
    )  # fmt: skip
    pipeline.step(1.0, *args)
    start = time.perf_counter()
    for k in range(repeat):
        pipeline.step(2.0 + k, *args)
    return (time.perf_counter() - start) / repeat * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--ticks", type=int, default=7200)
    a = p.parse_args()
    cfg = compose_typed(overrides(a.ticks))
    simulate(cfg)  # compile / load the kernels
    per_tick = []
    for _ in range(a.repeat):
        s = simulate(cfg).summary
        per_tick.append(s["wall_s"] / s["ticks"] * 1e6)
    print(
        f"empty tick, whole engine: {statistics.median(per_tick):6.1f} us "
        f"(min {min(per_tick):.1f}, max {max(per_tick):.1f}; {a.ticks} ticks, "
        f"{a.repeat} runs)"
    )
    print(f"pipeline.step on an empty tick, called directly: {kernel_call_us():6.1f} us")


if __name__ == "__main__":
    main()
