"""The operators of the platform: the scripted operator actions and the autoscaler.

Both are SimPy processes that wake at every tick end, after the ticker (``Engine.tick_end``),
and change the platform for the attempts of the next tick: nothing they do acts inside a tick.
Every action is an event ``{t_s, kind, target, detail}`` of the run.

- ``Operator`` takes the scenario's actions (``scenario.actions``) at the first tick end at or
  after their time: cap the connections the room may hold, switch admission to a waiting room,
  add nodes (up after ``for_s`` of provisioning), drain nodes out of placement for ``for_s``
  (a deploy: they keep their listeners), crash nodes (their listeners reconnect), or end the room
  (every node crashes, a ``share`` of the listeners come back to the room relaunched ``for_s``
  later: the DeSantis launch moved to a second Space).
- ``Autoscaler`` (``autoscaler.policy: target``) measures the utilisation of the nodes up every
  ``interval_s`` (the larger of connections / caps and busy workers / workers) and orders nodes
  to bring it back to ``target_utilisation`` (``docs/model.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from sim.config import ActionConfig, AutoscalerConfig
from sim.model.fleet import EdgeFleet
from sim.model.health import Restarts
from sim.model.joins import JoinPipeline
from sim.policies.admission import WaitingRoom

Events = list[dict[str, Any]]


def _event(events: Events, t: float, kind: str, target: str, detail: str) -> None:
    events.append({"t_s": t, "kind": kind, "target": target, "detail": detail})


class _TickProcess:
    """A process that runs ``act(t)`` after the ticks until it has nothing left to do.

    Between the times it has something to do (``next_at``) it sleeps, and wakes two ticks early
    to wait for the tick ends themselves: a room whose operator acts once at the end of two hours
    does not resume it 7,200 times.
    """

    def __init__(
        self, env: simpy.Environment, tick_end: Callable[[], simpy.Event], tick_s: float
    ) -> None:
        self.env = env
        self.tick_s = tick_s
        self._tick_end = tick_end
        self.process = env.process(self._run())

    def _run(self) -> Generator[simpy.Event, Any, None]:
        while True:
            lead = self.next_at() - 2.0 * self.tick_s - self.env.now
            if lead > 0:
                yield self.env.timeout(lead)
            t = yield self._tick_end()
            if t is None or not self.act(float(t)):
                return

    def next_at(self) -> float:
        """The earliest time it may have something to do (``-inf``: every tick)."""
        return -math.inf

    def act(self, t: float) -> bool:
        """Act at the tick end ``t``; ``False`` once nothing is left to do."""
        raise NotImplementedError


class Operator(_TickProcess):
    """The scenario's scripted actions."""

    def __init__(
        self,
        env: simpy.Environment,
        tick_end: Callable[[], simpy.Event],
        actions: list[ActionConfig],
        fleet: EdgeFleet,
        joins: JoinPipeline,
        restarts: Restarts,
        events: Events,
        tick_s: float,
    ) -> None:
        self.todo = sorted(actions, key=lambda a: a.t_s)
        self.fleet, self.joins, self.events = fleet, joins, events
        self.restarts = restarts
        self.later: list[tuple[float, str, int]] = []  # (when, "up"/"add", node)
        super().__init__(env, tick_end, tick_s)

    def next_at(self) -> float:
        return min([a.t_s for a in self.todo[:1]] + [when for when, _, _ in self.later])

    def act(self, t: float) -> bool:
        for when, what, node in [x for x in self.later if x[0] <= t + 1e-9]:
            self.later.remove((when, what, node))
            if what == "add":
                node = self.fleet.add()
            else:
                self.fleet.set_up(node, True)
            _event(self.events, t, "operator", f"node {node}", "up")
        while self.todo and self.todo[0].t_s <= t + 1e-9:
            self.take(self.todo.pop(0), t)
        return bool(self.todo or self.later)

    def _up_nodes(self, count: int) -> list[int]:
        f = self.fleet
        return [int(x) for x in f.upidx[: f.n_up][-count:]] if count > 0 else []

    def take(self, a: ActionConfig, t: float) -> None:
        f, j = self.fleet, self.joins
        if a.do == "cap_listeners":
            j.cap_listeners(math.inf if a.value is None else float(a.value))
            detail = "cap lifted" if a.value is None else f"room capped at {a.value:g} connections"
        elif a.do == "waiting_room":
            assert a.value is not None
            j.set_admission(WaitingRoom(release_per_s=float(a.value), max_wait_s=a.max_wait_s))
            detail = f"waiting room on: {a.value:g}/s released, at most {a.max_wait_s:g} s"
        elif a.do == "add_nodes":
            for _ in range(a.count):
                if a.for_s > 0:
                    self.later.append((t + a.for_s, "add", -1))
                else:  # no provisioning delay: up for the next tick
                    _event(self.events, t, "operator", f"node {f.add()}", "up")
            detail = f"{a.count} nodes ordered, up after {a.for_s:g} s"
        elif a.do == "drain_nodes":
            nodes = self._up_nodes(a.count)
            for node in nodes:
                f.set_up(node, False)
                self.later.append((t + a.for_s, "up", node))
            detail = f"{len(nodes)} nodes drained for {a.for_s:g} s"
        elif a.do == "crash_nodes":
            nodes = self._up_nodes(a.count)
            back = t + self.restarts.cfg.restart_s
            self.restarts.crash(nodes, t, back, 1.0, "operator: crash_nodes")
            detail = f"{len(nodes)} nodes crashed"
        else:  # end_room: every node down until the relaunch, those down already too
            back = t + (a.for_s if a.for_s > 0 else self.restarts.cfg.restart_s)
            for node in list(self.restarts.down):
                self.restarts.keep_down(node, back)
            drained = [x for x in self.later if x[1] == "up"]  # their listeners go too
            for entry in drained:
                self.later.remove(entry)
            nodes = sorted(self._up_nodes(f.n_up) + [node for _, _, node in drained])
            self.restarts.crash(nodes, t, back, a.share, "operator: end_room", hold=True)
            detail = f"room ended: relaunched after {a.for_s:g} s, {a.share:.0%} come back"
        _event(self.events, t, "operator", a.do, detail)


class Autoscaler(_TickProcess):
    """Orders nodes when the fleet runs above its target utilisation."""

    def __init__(
        self,
        env: simpy.Environment,
        tick_end: Callable[[], simpy.Event],
        cfg: AutoscalerConfig,
        fleet: EdgeFleet,
        events: Events,
        done: simpy.Event,
        tick_s: float,
    ) -> None:
        self.cfg, self.fleet, self.events, self.done = cfg, fleet, events, done
        self.next_check = cfg.interval_s
        self.quiet_until = -math.inf
        self.ordered: list[float] = []  # when each ordered node comes up
        super().__init__(env, tick_end, tick_s)

    def next_at(self) -> float:
        return min([self.next_check, *self.ordered])

    def utilisation(self, t: float) -> float:
        f = self.fleet
        up = f.upidx[: f.n_up]
        if up.size == 0:
            return math.inf
        conns = float(f.cn[up].sum()) / max(1.0, float(f.cap[up].sum()))
        busy = float((f.free[up] > t).sum()) / f.free[up].size
        return max(conns, busy)

    def act(self, t: float) -> bool:
        cfg, f = self.cfg, self.fleet
        for when in [x for x in self.ordered if x <= t + 1e-9]:
            self.ordered.remove(when)
            node = f.add()
            _event(self.events, t, "scale", f"node {node}", "up")
        if t + 1e-9 >= self.next_check:
            missed = math.floor((t - self.next_check) / cfg.interval_s)
            self.next_check += cfg.interval_s * max(1, missed + 1)
            self.decide(t)
        return not self.done.triggered

    def decide(self, t: float) -> None:
        cfg, f = self.cfg, self.fleet
        if t < self.quiet_until:
            return
        util = self.utilisation(t)
        if util <= cfg.target_utilisation:
            return
        active = f.provisioned + len(self.ordered)
        room = min(cfg.max_nodes, f.size) - active
        want = f.n_up * util / cfg.target_utilisation if math.isfinite(util) else active + 1
        add = min(cfg.max_step, room, max(1, math.ceil(want) - active))
        if add <= 0:
            return
        if cfg.provisioning_delay_s <= 0:  # up for the next tick
            for _ in range(add):
                _event(self.events, t, "scale", f"node {f.add()}", "up")
        else:
            self.ordered += [t + cfg.provisioning_delay_s] * add
        self.quiet_until = t + cfg.cooldown_s
        _event(
            self.events, t, "scale", "fleet",
            f"utilisation {util:.2f} > {cfg.target_utilisation:g}: {add} nodes ordered",
        )  # fmt: skip


def room_for(actions: list[ActionConfig], autoscaler: AutoscalerConfig, nodes: int) -> int:
    """How many nodes the fleet may come to hold."""
    added = sum(a.count for a in actions if a.do == "add_nodes")
    scaled = autoscaler.max_nodes if autoscaler.policy == "target" else 0
    return int(max(nodes, scaled) + added)
