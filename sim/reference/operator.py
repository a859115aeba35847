"""The operators of the platform: the scenario's scripted actions and the target autoscaler.

Both act at tick ends only, after the tick's attempts, the restarts and the health monitor
(``docs/model.md``, *The engine*), and change the platform for the attempts of the next tick.
Every action, order and node brought up is an event ``{t_s, kind, target, detail}``.

``Operator`` (``docs/model.md``, *Operator actions*) takes each action at the first tick end ``T``
at or after its ``t_s``:

- ``cap_listeners``: attempts are rejected ``cap`` while the fleet holds ``value`` connections
  (``null`` lifts the cap); ``waiting_room``: admission becomes a fresh waiting room;
- ``add_nodes``: ``count`` new nodes come up at the first tick end at or after ``T + for_s``;
- ``drain_nodes``: the last ``count`` nodes up leave placement until the first tick end at or
  after ``T + for_s``, keeping their listeners and queues;
- ``crash_nodes``: the last ``count`` nodes up crash, back after ``restart_s``;
- ``end_room``: every node up and every drained node crashes (their listeners are dropped), a
  ``share`` of the dropped listeners reconnect; nodes down already stay down; all are back at the
  relaunch, the first tick end at or after ``T + for_s`` (``T + restart_s`` when ``for_s`` is 0,
  as ``docs/model.md`` says; the batched engine relaunches at the next tick end then). The
  listeners who reconnect do so after their reconnect delay counted from the relaunch. These are
  the batched engine's rules (its review fix 2c586e4 and 31f7711, "end_room drops the listeners of
  drained nodes too"); ``docs/model.md`` still says that only the nodes up crash, that the
  listeners reconnect after their delay from ``T`` (meeting ``down``), and that nodes already out
  come back on their own schedule: the docs are stale there.

A node due "at the first tick end at or after" a time that is ``T`` itself (``for_s = 0``) comes up
at ``T``, as the docs say (the batched engine brings it up one tick later).

``Autoscaler`` (``docs/model.md``, *Autoscaler*): at the first tick end at or after each multiple
of ``interval_s``, outside a cooldown, with ``util = max(Σ connections / Σ caps, busy workers /
workers)`` over the nodes up (``inf`` with none up) above ``target_utilisation``, it orders
``min(max_step, max_nodes − active, max(1, ceil(nodes_up · util / target) − active))`` nodes
(``active``: the nodes in the fleet and those it ordered), which come up ``provisioning_delay_s``
later; then it cools down for ``cooldown_s``.
"""

from __future__ import annotations

import math
from typing import Protocol

from sim.config import ActionConfig, AutoscalerConfig, Config
from sim.policies import admission as cfgs
from sim.reference.admission import WaitingRoom
from sim.reference.fleet import Fleet
from sim.reference.health import Events, Restarts, event


def fleet_room(cfg: Config) -> int:
    """The nodes the fleet may come to hold: the autoscaler's ceiling and the operator's additions
    together (as the batched engine sizes its arrays, ``sim/model/operator.py``)."""
    added = sum(a.count for a in cfg.scenario.actions if a.do == "add_nodes")
    scaled = cfg.autoscaler.max_nodes if cfg.autoscaler.policy == "target" else 0
    return max(cfg.platform.nodes, scaled) + added


class RoomControls(Protocol):
    """What the operator changes in the room itself."""

    def cap_listeners(self, value: float | None) -> None: ...

    def set_admission(self, policy: WaitingRoom) -> None: ...


class Operator:
    """The scenario's scripted actions."""

    def __init__(
        self,
        actions: list[ActionConfig],
        fleet: Fleet,
        restarts: Restarts,
        room: RoomControls,
        events: Events,
    ) -> None:
        self.todo = sorted(actions, key=lambda a: a.t_s)
        self.fleet, self.restarts, self.room, self.events = fleet, restarts, room, events
        self.later: list[tuple[float, str, int]] = []  # (when, "add" or "up", node) in order

    def act(self, t: float) -> None:
        self._bring_up(t)
        while self.todo and self.todo[0].t_s <= t + 1e-9:
            self.take(self.todo.pop(0), t)
        self._bring_up(t)  # due at T itself (for_s = 0)

    def _bring_up(self, t: float) -> None:
        due = [x for x in self.later if x[0] <= t + 1e-9]
        for when, what, index in due:
            self.later.remove((when, what, index))
            if what == "add":
                index = self.fleet.add()
            else:
                self.fleet.set_up(index, True)
            event(self.events, t, "operator", f"node {index}", "up")

    def _last_up(self, count: int) -> list[int]:
        return self.fleet.up[-count:] if count > 0 else []

    def take(self, a: ActionConfig, t: float) -> None:
        """Take action ``a`` at the tick end ``t``."""
        if a.do == "cap_listeners":
            self.room.cap_listeners(a.value)
            detail = "cap lifted" if a.value is None else f"room capped at {a.value:g} connections"
        elif a.do == "waiting_room":
            assert a.value is not None
            cfg = cfgs.WaitingRoom(release_per_s=float(a.value), max_wait_s=a.max_wait_s)
            self.room.set_admission(WaitingRoom(cfg))
            detail = f"waiting room on: {a.value:g}/s released, at most {a.max_wait_s:g} s"
        elif a.do == "add_nodes":
            self.later += [(t + a.for_s, "add", -1)] * a.count
            detail = f"{a.count} nodes ordered, up after {a.for_s:g} s"
        elif a.do == "drain_nodes":
            nodes = self._last_up(a.count)
            for index in nodes:
                self.fleet.set_up(index, False)
                self.later.append((t + a.for_s, "up", index))
            detail = f"{len(nodes)} nodes drained for {a.for_s:g} s"
        elif a.do == "crash_nodes":
            nodes = self._last_up(a.count)
            back = t + self.restarts.cfg.restart_s
            for index in nodes:
                self.restarts.crash(index, t, back, 1.0, "operator: crash_nodes")
            detail = f"{len(nodes)} nodes crashed"
        else:
            self._end_room(a, t)
            detail = f"room ended: relaunched after {a.for_s:g} s, {a.share:.0%} come back"
        event(self.events, t, "operator", a.do, detail)

    def _end_room(self, a: ActionConfig, t: float) -> None:
        back = t + (a.for_s if a.for_s > 0 else self.restarts.cfg.restart_s)
        for index in list(self.restarts.down):  # down already: down until the relaunch
            self.restarts.keep_down(index, back)
        drained = [index for _, what, index in self.later if what == "up"]
        self.later = [x for x in self.later if x[1] != "up"]  # they come back with the room
        for index in sorted(self.fleet.up + drained):  # their listeners are dropped too
            self.restarts.crash(index, t, back, a.share, "operator: end_room", hold=True)


class Autoscaler:
    """Orders nodes when the nodes up run above the target utilisation."""

    def __init__(self, cfg: AutoscalerConfig, fleet: Fleet, events: Events) -> None:
        self.cfg, self.fleet, self.events = cfg, fleet, events
        self.next_check = cfg.interval_s
        self.quiet_until = -math.inf
        self.ordered: list[float] = []  # when each node ordered comes up

    def utilisation(self, t: float) -> float:
        nodes = [self.fleet.nodes[i] for i in self.fleet.up]
        if not nodes:
            return math.inf
        conns = sum(n.connections for n in nodes) / max(1.0, float(sum(n.cap for n in nodes)))
        busy = sum(n.queue.busy(t) for n in nodes) / sum(n.queue.workers for n in nodes)
        return max(conns, busy)

    def act(self, t: float) -> None:
        self._bring_up(t)
        if t + 1e-9 >= self.next_check:
            steps = max(1, math.floor((t - self.next_check) / self.cfg.interval_s) + 1)
            self.next_check += self.cfg.interval_s * steps
            self.decide(t)
            self._bring_up(t)  # a provisioning delay of 0: up at once

    def _bring_up(self, t: float) -> None:
        for when in [x for x in self.ordered if x <= t + 1e-9]:
            self.ordered.remove(when)
            event(self.events, t, "scale", f"node {self.fleet.add()}", "up")

    def decide(self, t: float) -> None:
        cfg = self.cfg
        if t < self.quiet_until:
            return
        util = self.utilisation(t)
        if util <= cfg.target_utilisation:
            return
        active = len(self.fleet.nodes) + len(self.ordered)
        room = min(cfg.max_nodes, self.fleet.room) - active
        n_up = len(self.fleet.up)
        want = n_up * util / cfg.target_utilisation if math.isfinite(util) else active + 1
        add = min(cfg.max_step, room, max(1, math.ceil(want) - active))
        if add <= 0:
            return
        self.ordered += [t + cfg.provisioning_delay_s] * add
        self.quiet_until = t + cfg.cooldown_s
        detail = f"utilisation {util:.2f} > {cfg.target_utilisation:g}: {add} nodes ordered"
        event(self.events, t, "scale", "fleet", detail)
