"""The reference engine: one SimPy process per listener, written to be read.

This package is the executable specification of ``docs/policies.md``: every listener is a SimPy
process that lives the life of an attempt step by step (``sim.reference.room``), and every policy
is a small plain-Python class that restates its paragraph of the spec:

- ``sim.reference.admission``: ``AdmitAll``, ``TokenBucket``, ``ConcurrencyCap``,
  ``WaitingRoom``, ``Aimd``, ``Credit`` (``admit`` / ``observe``);
- ``sim.reference.client``: the backoffs, ``Patience``, ``RetryBudget``, ``Throttle`` over
  one-second ``SlidingWindow`` bins, and the ``Client`` that combines them;
- ``sim.reference.placement``: ``Random``, ``LeastLoaded``, ``PowerOfD``,
  ``BoundedConsistentHash``;
- ``sim.reference.queue``: the ``FifoQueue`` (workers, waiting places, reneging, wasted work)
  that a node's join queue and the control plane are;
- ``sim.reference.fleet``: the edge ``Node`` (seats, cap, join queue) and the ``Fleet`` of nodes up;
- ``sim.reference.control``: the ``ControlPlane`` (auth) every admitted attempt may pass;
- ``sim.reference.health``: the ``HealthMonitor`` (overload crashes) and ``Restarts`` (warm-up);
- ``sim.reference.operator``: the scripted ``Operator`` actions and the target ``Autoscaler``;
- ``sim.reference.attack``: the ``Attack`` of ``conf/attack/``: the join flood's bots, the
  volumetric flood and mitigation, gating every attempt per tick;
- ``sim.reference.audio``: the ``FanOut`` listener by listener and the ``Presence`` channel;
- ``sim.reference.tally``: the per-tick counters in the batched engine's layout, and the peak.

The platform dynamics of ``docs/model.md`` act at tick ends only, after the tick's attempts, as in
the batched engine: a crash interrupts the processes of the listeners it drops.

It shares with the batched engine only the configuration, the named random streams' seeding, the
arrival process, the ``Metrics`` recorder and the failure criteria (``sim.criteria``), not its
kernels nor its random numbers: the two engines agree in distribution, which
``tests/test_reference.py`` checks. It is slow (pure Python, about ten SimPy events per listener):
for audiences up to ~10^5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sim.config import Config
from sim.engine import RunResult
from sim.reference.room import Room, simulate_room
from sim.reference.tally import Event


def simulate(
    cfg: Config,
    on_progress: Callable[[float], None] | None = None,
    log: list[Event] | None = None,
    arrivals: Sequence[float] | None = None,
    bots: Sequence[float] | None = None,
) -> RunResult:
    """Run ``cfg`` with the reference engine.

    ``on_progress(sim_time)`` is called every few hundred simulated seconds; ``log`` (if given)
    collects the event log, ``(t, person, what)`` tuples in time order; ``arrivals`` (tests)
    replaces the surge by these first-attempt times, and ``bots`` (tests) the join flood's bots
    (``attack.join_flood``) by these. The result's ``events`` are the run's
    ``{t_s, kind, target, detail}`` (crashes, restarts, operator actions, scaling), as the batched
    engine's.
    """
    summary, timeseries, events = simulate_room(cfg, on_progress, log, arrivals, bots)
    return RunResult(summary, timeseries, events)


__all__ = ["Event", "Room", "simulate"]
