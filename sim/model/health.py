"""Edge-node health: utilisation, overload, crashes, restarts and warm-up.

At every tick end the health monitor (a SimPy process that wakes after the ticker) measures each
node that is up: its CPU share, ``(busy join workers · cpu_per_join_worker + connected ·
cpu_per_listener) / cpu_cores``, and its memory share, ``connections · memory_per_connection_mb /
memory_mb``. A node at or above ``overload_share`` of either is overloaded; one that stays
overloaded for ``crash_after_s`` crashes: its listeners are dropped and reconnect
(``sim.kernels.crash``), it is down for ``restart_s`` (its workers busy until then), and after
the restart its connection cap ramps from 0 to ``connections_per_node`` over ``warmup_s``
(``Restarts``, which the operator's crashes use too). Each crash and restart is an event
``{t_s, kind, target, detail}`` of the run. Nothing here acts inside a tick.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy
from numba import njit

from sim.config import PlatformConfig
from sim.model.fleet import EdgeFleet
from sim.model.joins import JoinPipeline


@njit(cache=True)
def utilisation(
    t: float, free: np.ndarray, cn: np.ndarray, up: np.ndarray, params: np.ndarray, out: np.ndarray
) -> None:
    """``out[i]``: the larger of node ``i``'s CPU and memory shares at ``t`` (0 when down).

    ``params = (cpu_cores, cpu_per_join_worker, cpu_per_listener, memory_mb,
    memory_per_connection_mb)``.
    """
    for i in range(cn.shape[0]):
        if up[i] == 0:
            out[i] = 0.0
            continue
        busy = 0
        for w in range(free.shape[1]):
            if free[i, w] > t:
                busy += 1
        cpu = (busy * params[1] + cn[i] * params[2]) / params[0]
        mem = cn[i] * params[4] / params[3]
        out[i] = max(cpu, mem)


class Restarts:
    """Crashed nodes and their way back: down until a tick end, then warming up."""

    def __init__(
        self,
        cfg: PlatformConfig,
        fleet: EdgeFleet,
        joins: JoinPipeline,
        tick_s: float,
        events: list[dict[str, Any]],
    ) -> None:
        self.cfg, self.fleet, self.joins, self.tick_s = cfg, fleet, joins, tick_s
        self.events = events
        self.down: dict[int, float] = {}  # node: when it comes back
        self.warming: dict[int, float] = {}  # node: when it came back

    def keep_down(self, node: int, back: float) -> None:
        """A node already down stays down until at least ``back`` (a tick end)."""
        back = float(math.ceil(back / self.tick_s - 1e-9) * self.tick_s)
        self.down[node] = max(self.down[node], back)

    @property
    def busy(self) -> bool:
        return bool(self.down or self.warming)

    def crash(
        self,
        nodes: list[int],
        t: float,
        back: float,
        share: float,
        why: str | list[str],
        hold: bool = False,
    ) -> None:
        """Crash ``nodes`` at the tick end ``t``; they are back at the first tick end >= ``back``.

        A ``share`` of their listeners reconnect; with ``hold`` (the room ended) not before then.
        ``why`` is one reason, or one per node.
        """
        if not nodes:
            return
        back = float(math.ceil(back / self.tick_s - 1e-9) * self.tick_s)
        dropped = self.joins.crash(nodes, t, max(back, t), share, back if hold else t)
        reasons = [why] * len(nodes) if isinstance(why, str) else why
        for node, n, reason in zip(nodes, dropped, reasons, strict=True):
            self.down[node] = back
            self.warming.pop(node, None)
            self.events.append(
                {
                    "t_s": t,
                    "kind": "crash",
                    "target": f"node {node}",
                    "detail": f"{reason}; {n} listeners dropped; down until {back:g} s",
                }
            )

    def act(self, t: float) -> None:
        """The tick that ends at ``t`` is over: nodes due come back, warming nodes ramp up."""
        if not self.busy:
            return
        f, cfg = self.fleet, self.cfg
        for node, at in list(self.down.items()):
            if t >= at - 1e-9:
                del self.down[node]
                f.set_up(node, True)
                self.warming[node] = t
                self.events.append(
                    {"t_s": t, "kind": "restart", "target": f"node {node}", "detail": "back up"}
                )
        for node, since in list(self.warming.items()):
            # the cap for the tick that starts at t: the share of the warm-up done by its end
            share = 1.0 if cfg.warmup_s <= 0 else min(1.0, (t - since + self.tick_s) / cfg.warmup_s)
            f.cap[node] = np.floor(cfg.connections_per_node * share)
            if share >= 1.0:
                del self.warming[node]


class Health:
    """The health monitor of the fleet (only built when nodes can crash)."""

    def __init__(
        self,
        env: simpy.Environment,
        tick_end: Callable[[], simpy.Event],
        cfg: PlatformConfig,
        fleet: EdgeFleet,
        restarts: Restarts,
    ) -> None:
        assert cfg.crash_after_s is not None
        self.env, self.cfg, self.fleet, self.restarts = env, cfg, fleet, restarts
        self.tick_s = restarts.tick_s
        self.params = np.array(
            [
                cfg.cpu_cores,
                cfg.cpu_per_join_worker,
                cfg.cpu_per_listener,
                cfg.memory_mb,
                cfg.memory_per_connection_mb,
            ]
        )
        self.util = np.zeros(fleet.size)
        self.over_since = np.full(fleet.size, np.inf)
        self._tick_end = tick_end
        self.process = env.process(self._run())

    def _run(self) -> Generator[simpy.Event, Any, None]:
        while True:
            t = yield self._tick_end()
            if t is None:
                return
            self.check(float(t))

    def check(self, t: float) -> None:
        """Overload and crashes at the tick end ``t`` (restarts are due first)."""
        f, cfg = self.fleet, self.cfg
        utilisation(t, f.free, f.cn, f.up, self.params, self.util)
        over = self.util >= cfg.overload_share
        self.over_since[~over] = np.inf
        self.over_since[over] = np.minimum(self.over_since[over], t - self.tick_s)
        assert cfg.crash_after_s is not None
        crashing = np.flatnonzero(t - self.over_since >= cfg.crash_after_s - 1e-9)
        if crashing.size:
            why = [
                f"overloaded (utilisation {self.util[node]:.2f}) for {cfg.crash_after_s:g} s"
                for node in crashing
            ]
            self.over_since[crashing] = np.inf
            self.restarts.crash(crashing.tolist(), t, t + cfg.restart_s, 1.0, why)
