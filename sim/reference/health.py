"""Node health: utilisation, overload and crashes; restarts and warm-up (``docs/model.md``, *Node
health: crashes and restarts*). Both act only at tick ends, after the tick's attempts.

- ``HealthMonitor`` (only with ``platform.crash_after_s``): at every tick end ``T`` it measures each
  node up, ``util = max((busy · cpu_per_join_worker + connections · cpu_per_listener) / cpu_cores,
  connections · memory_per_connection_mb / memory_mb)`` (busy workers at ``T``, wasted work
  included; connections held: listeners, and attempts waiting or in service). A node at or above
  ``overload_share`` is overloaded from the start of its first overloaded tick; a tick end at
  which it is not (or it is not up) resets that. It crashes at the first tick end at which it has
  been overloaded for ``crash_after_s`` (``ceil(crash_after_s / tick_s)`` tick ends in a row) and
  is down for ``restart_s``.
- ``Restarts``: a crashed node (of any cause) is down until the first tick end at or after its
  ``back`` time; from then on, at each tick end ``t``, its cap for the tick that starts at ``t`` is
  ``floor(connections_per_node · min(1, (t − t_restart + tick_s) / warmup_s))``: the share of the
  warm-up done by the end of that tick, as the batched engine has it (``sim/model/health.py``,
  and the brief of this engine). ``docs/model.md`` says ``(t − t_restart) / warmup_s``, a cap of 0
  in the tick after the restart: the docs are stale there (the batched engine's review fix
  2c586e4, "a warming node's cap counts its first tick"; ``tests/test_dynamics.py`` agrees).

What a crash does to the listeners is the room's business (``Room.crash_node``); each crash and
restart is an event ``{t_s, kind, target, detail}`` of the run.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from sim.config import PlatformConfig
from sim.reference.fleet import Fleet

Events = list[dict[str, Any]]


def event(events: Events, t: float, kind: str, target: str, detail: str) -> None:
    events.append({"t_s": t, "kind": kind, "target": target, "detail": detail})


def on_tick_grid(t: float, tick_s: float) -> float:
    """The first tick end at or after ``t``."""
    return float(math.ceil(t / tick_s - 1e-9) * tick_s)


class Crashes(Protocol):
    """What crashes a node's listeners: the room."""

    def crash_node(
        self, index: int, t: float, busy_until_s: float, share: float, not_before_s: float
    ) -> int:
        """Crash node ``index`` at ``t``: drop its listeners (a ``share`` reconnect, not before
        ``not_before_s``), its workers busy until ``busy_until_s``; the listeners dropped."""
        ...


class Restarts:
    """Crashed nodes on their way back: down until a tick end, then warming up."""

    def __init__(
        self, cfg: PlatformConfig, tick_s: float, fleet: Fleet, room: Crashes, events: Events
    ) -> None:
        self.cfg, self.tick_s, self.fleet, self.room, self.events = cfg, tick_s, fleet, room, events
        self.down: dict[int, float] = {}  # node: the tick end it comes back at
        self.warming: dict[int, float] = {}  # node: the tick end it came back at

    def crash(
        self, index: int, t: float, back: float, share: float, why: str, hold: bool = False
    ) -> None:
        """Crash node ``index`` at the tick end ``t``, back at the first tick end ``>= back``.

        A ``share`` of its listeners reconnect; with ``hold`` (the room ended) not before then.
        """
        back = on_tick_grid(back, self.tick_s)
        dropped = self.room.crash_node(index, t, max(back, t), share, back if hold else t)
        self.fleet.set_up(index, False)
        self.down[index] = back
        self.warming.pop(index, None)
        detail = f"{why}; {dropped} listeners dropped; down until {back:g} s"
        event(self.events, t, "crash", f"node {index}", detail)

    def keep_down(self, index: int, back: float) -> None:
        """A node down already stays down until the first tick end ``>= back`` at least."""
        self.down[index] = max(self.down[index], on_tick_grid(back, self.tick_s))

    def act(self, t: float) -> None:
        """At the tick end ``t``: nodes due come back, warming nodes' caps ramp up."""
        for index, back in list(self.down.items()):
            if t >= back - 1e-9:
                del self.down[index]
                self.fleet.set_up(index, True)
                self.warming[index] = t
                event(self.events, t, "restart", f"node {index}", "back up")
        cfg = self.cfg
        for index, since in list(self.warming.items()):
            done = 1.0 if cfg.warmup_s <= 0 else min(1.0, (t - since + self.tick_s) / cfg.warmup_s)
            self.fleet.nodes[index].cap = math.floor(cfg.connections_per_node * done)
            if done >= 1.0:
                del self.warming[index]


class HealthMonitor:
    """Crashes the nodes that stay overloaded for ``crash_after_s``."""

    def __init__(self, cfg: PlatformConfig, tick_s: float, fleet: Fleet, restarts: Restarts):
        assert cfg.crash_after_s is not None
        self.cfg, self.tick_s, self.fleet, self.restarts = cfg, tick_s, fleet, restarts
        self.crash_after_s = cfg.crash_after_s
        self.over_since: dict[int, float] = {}  # node: the start of its overloaded stretch

    def utilisation(self, index: int, t: float) -> float:
        """The larger of node ``index``'s CPU and memory shares at ``t``."""
        c, node = self.cfg, self.fleet.nodes[index]
        held = node.connections
        cpu = (node.queue.busy(t) * c.cpu_per_join_worker + held * c.cpu_per_listener) / c.cpu_cores
        return max(cpu, held * c.memory_per_connection_mb / c.memory_mb)

    def check(self, t: float) -> None:
        """Overload and crashes at the tick end ``t`` (after the restarts due then)."""
        util = {i: self.utilisation(i, t) for i in self.fleet.up}
        for index in range(len(self.fleet.nodes)):
            if util.get(index, 0.0) >= self.cfg.overload_share:
                self.over_since.setdefault(index, t - self.tick_s)
            else:
                self.over_since.pop(index, None)  # not overloaded, or not up: not measured
        for index in sorted(self.over_since):
            if t - self.over_since[index] >= self.crash_after_s - 1e-9:
                del self.over_since[index]
                why = f"overloaded (utilisation {util[index]:.2f}) for {self.crash_after_s:g} s"
                self.restarts.crash(index, t, t + self.cfg.restart_s, 1.0, why)
