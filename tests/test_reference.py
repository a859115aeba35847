"""The reference engine (``sim.reference``): exact event logs, conservation, agreement with batched.

Three tiers:

- exact: tiny rooms with fixed arrival times, parameters that make the model deterministic (join
  service and sessions of ~1 ns, or the first draws of a named stream written out), and the event
  log each must produce, computed by hand from ``docs/policies.md`` and ``docs/model.md``: every
  admission policy, and every dynamic (a crash and its reconnects, a join in flight at a crash,
  warm-up, overload crashes, the control plane, each operator action, the autoscaler); scripted
  actions give both engines the same events and fleet;
- sanity: conservation of counts and the time series' rules for every admission policy with
  several client and placement policies, at ~2,000 arrivals;
- statistical: seeded replications of both engines on seven overloaded scenarios of ~5,000
  arrivals, four with the dynamics (overload crashes with warm-up and AIMD; crashes, the end of the
  room and the autoscaler with credits and a retry budget; a control plane with wasted work; the
  other operator actions); every metric's means must agree within a two-sample (Welch) tolerance
  from the replications' standard errors, at a family-wise error rate of 0.001 (Bonferroni over
  the metrics of a scenario).

"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from sim.config import Config
from sim.engine import RunResult
from sim.engine import simulate as simulate_any
from sim.policies import admission as adm
from sim.reference import Event, simulate
from sim.reference.admission import ADMIT, Aimd, Credit, Hold, Reject, WaitingRoom
from sim.reference.client import SlidingWindow, Throttle
from sim.reference.draws import Stream
from sim.reference.placement import BoundedConsistentHash, PowerOfD, hash_ring
from tests.conftest import typed_config

NS = "1e-9"  # a join service or session of about a nanosecond: "instantaneous"
TINY = [
    "engine.kind=reference",
    "platform.nodes=1",
    f"platform.join_service_mean_s={NS}",
    f"scenario.session_mean_s={NS}",
]


def run_log(overrides: list[str], arrivals: Sequence[float]) -> tuple[RunResult, list[Event]]:
    log: list[Event] = []
    result = simulate(typed_config([*TINY, *overrides]), log=log, arrivals=arrivals)
    return result, log


def assert_log(actual: list[Event], expected: list[tuple[float, int, str]]) -> None:
    """The same entries in the same order, times within a microsecond."""
    got = [(round(t, 6), p, what) for t, p, what in actual]
    want = [(round(t, 6), p, what) for t, p, what in expected]
    assert got == want


def joined(t: float, p: int) -> list[tuple[float, int, str]]:
    """Served at ``t``, joined and left (nanosecond service and session) at ``t``."""
    return [(t, p, "node 0"), (t, p, "served"), (t, p, "joined"), (t, p, "left")]


def conserved(s: dict[str, Any]) -> None:
    assert s["arrivals"] + s["reconnects"] == s["joined"] + s["abandoned"]
    assert s["attempts"] == s["joined"] + sum(s["rejected"].values())


# what the tick may change in a run with nothing between ticks: the tick grid, and the verdict
# read off the per-tick series (as in tests/test_engine.py)
TICK_GRID = ("wall_s", "ticks", "sim_end_s", "failed", "failure_reason", "failure_criterion",
             "failure_time_s", "time_to_stable_s", "stability_lost_s", "goodput_joins_per_s",
             "metastable", "metastable_since_s",
             "start_delay_s", "room_end_s")  # fmt: skip


def comparable(summary: dict[str, Any], drop: Sequence[str] = ("wall_s",)) -> dict[str, Any]:
    """The summary without ``drop``, NaN made equal to NaN."""
    return {
        k: "nan" if isinstance(v, float) and math.isnan(v) else v
        for k, v in summary.items()
        if k not in drop
    }


# --------------------------------------------------------------------------- exact cases


def test_token_bucket_burst_one_rate_one_constant_retry() -> None:
    """Burst 1, 1 token/s, full at 0; retries 0.5 s later; three attempts at most."""
    result, log = run_log(
        [
            "admission=token_bucket",
            "admission.rate_per_s=1",
            "admission.burst=1",
            "client=constant",
            "client.delay_s=0.5",
            "client.max_attempts=3",
        ],
        [0.1, 0.2, 0.3],
    )
    # tokens: 1 at 0.1 (taken); 0.1 at 0.2; 0.2 at 0.3; 0.6 at 0.7; 0.7 at 0.8; 1.1 at 1.2
    # (taken); 0.2 at 1.3
    assert_log(
        log,
        [
            (0.1, 0, "arrive"),
            (0.1, 0, "attempt 1"),
            *joined(0.1, 0),
            (0.2, 1, "arrive"),
            (0.2, 1, "attempt 1"),
            (0.2, 1, "rejected bucket"),
            (0.3, 2, "arrive"),
            (0.3, 2, "attempt 1"),
            (0.3, 2, "rejected bucket"),
            (0.7, 1, "attempt 2"),
            (0.7, 1, "rejected bucket"),
            (0.8, 2, "attempt 2"),
            (0.8, 2, "rejected bucket"),
            (1.2, 1, "attempt 3"),
            *joined(1.2, 1),
            (1.3, 2, "attempt 3"),
            (1.3, 2, "rejected bucket"),
            (1.3, 2, "abandon"),
        ],
    )
    s = result.summary
    assert (s["arrivals"], s["attempts"], s["joined"], s["abandoned"]) == (3, 7, 2, 1)
    assert s["rejected"]["bucket"] == 5
    assert s["peak_concurrent"] == 1 and s["peak_time_s"] == pytest.approx(0.1)
    assert s["join_latency_p50_s"] == pytest.approx(0.5)  # latencies 0 and 1.0 (1.2 − 0.2)
    conserved(s)


def test_waiting_room_release_one_per_second() -> None:
    """Release 1/s, 2 places, 1.5 s at most; retry 0.5 s later, two attempts at most."""
    result, log = run_log(
        [
            "admission=waiting_room",
            "admission.release_per_s=1",
            "admission.capacity=2",
            "admission.max_wait_s=1.5",
            "admission.retry_after_s=0",
            "client=constant",
            "client.delay_s=0.5",
            "client.max_attempts=2",
        ],
        [0.1, 0.2, 0.3, 0.4],
    )
    # 0.1: nobody ahead, in now (next release 1.1); 0.2: held to 1.1 (next 2.1); 0.3: release
    # 2.1 is 1.8 s away > 1.5 s: leaves at 1.8, retries at 2.3, in now; 0.4 and its retry at
    # 0.9: two people held (exits 1.1 and 1.8): hold_full, out of attempts.
    assert_log(
        log,
        [
            (0.1, 0, "arrive"),
            (0.1, 0, "attempt 1"),
            *joined(0.1, 0),
            (0.2, 1, "arrive"),
            (0.2, 1, "attempt 1"),
            (0.2, 1, "held"),
            (0.3, 2, "arrive"),
            (0.3, 2, "attempt 1"),
            (0.4, 3, "arrive"),
            (0.4, 3, "attempt 1"),
            (0.4, 3, "rejected hold_full"),
            (0.9, 3, "attempt 2"),
            (0.9, 3, "rejected hold_full"),
            (0.9, 3, "abandon"),
            (1.1, 1, "released"),
            *joined(1.1, 1),
            (1.8, 2, "rejected hold_timeout"),
            (2.3, 2, "attempt 2"),
            *joined(2.3, 2),
        ],
    )
    ts = result.timeseries
    assert ts["t_s"].tolist() == [1.0, 2.0, 3.0]
    # the held attempt counts in attempts when made, in admitted and joining when released; the
    # hold timeout counts in the tick of its attempt (0.3), not of its give-up (1.8)
    assert ts["attempts"].tolist() == [5, 0, 1]
    assert ts["admitted"].tolist() == [1, 1, 1]
    assert ts["joining"].tolist() == [1, 1, 1]
    assert ts["rejected_hold_timeout"].tolist() == [1, 0, 0]
    assert ts["rejected_hold_full"].tolist() == [2, 0, 0]
    assert ts["abandoned"].tolist() == [1, 0, 0]
    assert ts["held"].tolist() == [2, 0, 0]  # at 1.0: person 1 (to 1.1) and person 2 (to 1.8)
    assert ts["retries_pending"].tolist() == [2, 1, 0]  # a release counts as pending, too
    assert ts["trying"].tolist() == [2, 1, 0]
    conserved(result.summary)


def test_join_queue_timeout_fixed_patience_immediate_retry() -> None:
    """1 worker, 1 waiting place, 2 s join timeout, patience exactly 2.5 s, immediate retries.

    Person 0 holds the worker for the first service draw (~108 s). Person 1 waits 2 s, gives up
    at 2.2, retries at once with 0.5 s of patience left (gives up at its deadline 2.7), and
    retries at the deadline with none left. Person 2 finds person 1 waiting: ``queue`` three
    times at the same instant.
    """
    result, log = run_log(
        [
            "admission=none",
            "client=immediate",
            "client.max_attempts=3",
            "client.patience=fixed",
            "client.patience_mean_s=2.5",
            "platform.join_workers=1",
            "platform.join_queue_cap=1",
            "platform.join_timeout_s=2",
            "platform.join_service_mean_s=100",
        ],
        [0.1, 0.2, 0.3],
    )
    service = Stream.named(0, "service").exponential(100.0)  # person 0's, the first draw
    assert service > 3.0  # the case below needs the worker busy past 2.7
    queue = [(0.3, 2, "node 0"), (0.3, 2, "rejected queue")]
    assert_log(
        log,
        [
            (0.1, 0, "arrive"),
            (0.1, 0, "attempt 1"),
            (0.1, 0, "node 0"),
            (0.1, 0, "served"),
            (0.2, 1, "arrive"),
            (0.2, 1, "attempt 1"),
            (0.2, 1, "node 0"),
            (0.3, 2, "arrive"),
            (0.3, 2, "attempt 1"),
            *queue,
            (0.3, 2, "attempt 2"),
            *queue,
            (0.3, 2, "attempt 3"),
            *queue,
            (0.3, 2, "abandon"),
            (2.2, 1, "rejected timeout"),
            (2.2, 1, "attempt 2"),
            (2.2, 1, "node 0"),
            (2.7, 1, "rejected timeout"),
            (2.7, 1, "attempt 3"),
            (2.7, 1, "node 0"),
            (2.7, 1, "rejected timeout"),
            (2.7, 1, "abandon"),
            (0.1 + service, 0, "joined"),
            (0.1 + service, 0, "left"),
        ],
    )
    s = result.summary
    assert s["rejected"]["queue"] == 3 and s["rejected"]["timeout"] == 3
    assert (s["attempts"], s["joined"], s["abandoned"]) == (7, 1, 2)
    ts = result.timeseries
    # timeouts count in the tick of their attempt; at 1.0 person 1 waits, two connections held
    assert ts["rejected_timeout"][:3].tolist() == [1, 0, 2]
    assert ts["waiting"][:3].tolist() == [1, 1, 0]
    assert ts["connections"][:3].tolist() == [2, 2, 1]
    assert ts["abandoned"][:3].tolist() == [1, 0, 1]
    conserved(s)


def test_concurrency_cap_of_one_with_a_retry_after_hint() -> None:
    """One listener at most; the cap's hint (5 s) overrides the 1 s backoff."""
    result, log = run_log(
        [
            "admission=concurrency_cap",
            "admission.max_listeners=1",
            "admission.retry_after_s=5",
            "client=constant",
            "client.delay_s=1",
            "client.max_attempts=3",
            "client.honour_retry_after=true",
            "scenario.session_mean_s=100",
        ],
        [0.1, 0.2],
    )
    session = Stream.named(0, "session").exponential(100.0)  # person 0's, the first draw
    assert session > 10.2
    cap = "rejected cap"
    assert_log(
        log,
        [
            (0.1, 0, "arrive"),
            (0.1, 0, "attempt 1"),
            (0.1, 0, "node 0"),
            (0.1, 0, "served"),
            (0.1, 0, "joined"),
            (0.2, 1, "arrive"),
            (0.2, 1, "attempt 1"),
            (0.2, 1, cap),
            (5.2, 1, "attempt 2"),
            (5.2, 1, cap),
            (10.2, 1, "attempt 3"),
            (10.2, 1, cap),
            (10.2, 1, "abandon"),
            (0.1 + session, 0, "left"),
        ],
    )
    assert result.summary["sim_end_s"] == math.floor(0.1 + session) + 1


def test_retry_budget_denies_the_retry_over_budget() -> None:
    """Budget 0.5 over 10 s: the first retry fits (1 ≤ 0.5·2), the second does not (2 > 1.5)."""
    result, log = run_log(
        [
            "admission=token_bucket",
            "admission.rate_per_s=0",
            "admission.burst=1",
            "client=constant",
            "client.delay_s=0.05",
            "client.max_attempts=4",
            "client.retry_budget=0.5",
            "client.budget_window_s=10",
        ],
        [0.1, 0.2],
    )
    assert_log(
        log,
        [
            (0.1, 0, "arrive"),
            (0.1, 0, "attempt 1"),
            *joined(0.1, 0),
            (0.2, 1, "arrive"),
            (0.2, 1, "attempt 1"),
            (0.2, 1, "rejected bucket"),
            (0.25, 1, "attempt 2"),
            (0.25, 1, "rejected bucket"),
            (0.3, 1, "denied 3"),
        ],
    )
    s = result.summary
    ts = result.timeseries
    # a denied retry is not an attempt; it counts in retries_denied and abandoned
    assert (s["attempts"], s["abandoned"], int(ts["retries_denied"].sum())) == (3, 1, 1)
    conserved(s)


# --------------------------------------------------------------------------- policy classes


class FixedUniforms(Stream):
    """A stream whose uniforms are given (for the classes' own tests)."""

    def __init__(self, values: Sequence[float]) -> None:
        self.values = list(values)

    def uniform(self) -> float:
        return self.values.pop(0)


def test_sliding_window_counts_whole_one_second_bins() -> None:
    w = SlidingWindow(2.5)  # W = 3 bins: floor(t) − 2 .. floor(t)
    for t in (0.2, 0.9, 1.5, 3.1):
        w.add(t)
    assert w.total(3.1) == 2  # bins 1..3: 1.5 and 3.1
    assert w.total(3.99) == 2
    assert w.total(4.0) == 1  # bins 2..4
    assert w.total(7.0) == 0


def test_throttle_probability_and_counts() -> None:
    th = Throttle(2.0, 120, FixedUniforms([0.0, 0.49, 0.51, 0.2]))
    assert not th.rejects(0.5)  # R = 0: p = 0 (u = 0 is not < 0)
    assert th.rejects(0.6)  # R = 1, A = 0: p = 1/2 > 0.49
    th.accepted(0.6)
    assert not th.rejects(0.7)  # R = 2, A = 1: p = max(0, 0) = 0
    assert th.requests.total(0.7) == 3  # throttled attempts count in R too


def test_aimd_rate_steps_once_per_window() -> None:
    cfg = adm.Aimd(
        target_delay_s=0.5, window_s=1.0, initial_rate_per_s=4, min_rate_per_s=1,
        max_rate_per_s=5, increase_per_s=2, decrease_factor=0.5, burst_s=1.0,
    )  # fmt: skip
    a = Aimd(cfg)
    assert a.admit(0.1, 0, 0, math.inf) is ADMIT  # burst 4, full at 0
    a.observe(0.1, 0.9)  # window 0: mean 0.9 > 0.5
    a.observe(0.2, 0.3)  # mean 0.6 > 0.5
    for _ in range(3):
        assert a.admit(0.2, 0, 0, math.inf) is ADMIT
    assert a.admit(0.2, 0, 0, math.inf) == Reject("shed", 0.2, 0.0)
    a.admit(1.0, 0, 0, math.inf)  # window 0 closes at 1.0: tokens accrue at 4/s, then q = 2
    assert a.rate == 2.0 and a.bucket.tokens == pytest.approx(2.0 - 1.0)
    a.admit(4.5, 0, 0, math.inf)  # windows 1, 2, 3 empty: +2 each, capped at 5
    assert a.rate == 5.0


def test_credit_admits_below_floor_of_credits() -> None:
    cfg = adm.Credit(
        target_delay_s=0.5, window_s=1.0, initial_credits=2.5, min_credits=1,
        max_credits=10, additive_credits=1, beta=0.5,
    )  # fmt: skip
    c = Credit(cfg)
    assert c.admit(0.1, 0, 1, math.inf) is ADMIT
    assert c.admit(0.1, 0, 2, math.inf) == Reject("no_credit", 0.1, 0.0)  # floor(2.5) = 2
    c.observe(0.2, 1.0)  # d = 1: credits · max(1 − 0.5·0.5/1, 0.5) = 2.5 · 0.75
    c.admit(1.0, 0, 0, math.inf)
    assert c.credits == pytest.approx(1.875)
    c.admit(2.0, 0, 0, math.inf)  # an empty window: d = 0 < target, +1
    assert c.credits == pytest.approx(2.875)


def test_waiting_room_hold_and_hold_timeout() -> None:
    room = WaitingRoom(adm.WaitingRoom(release_per_s=2, max_wait_s=10, capacity=5))
    assert room.admit(1.0, 0, 0, math.inf) is ADMIT  # next release 1.5
    assert room.admit(1.1, 0, 0, math.inf) == Hold(1.5)  # next 2.0
    assert room.admit(1.2, 0, 0, 0.5) == Reject("hold_timeout", 1.7, 0.0)  # 0.8 s > 0.5 s left
    assert room.admit(1.3, 0, 0, math.inf) == Hold(2.0)  # the give-up used no release slot
    assert room.held(1.6) == 2  # person released at 2.0 and the one leaving at 1.7


def test_power_of_d_draws_distinct_nodes_in_index_order() -> None:
    # n = 5, d = 3: draws 0.5 -> 2 of [0..4]; 0.5 -> 2 of [0, 1, 3, 4] = 3; 0.0 -> 0 of [0, 1, 4]
    p = PowerOfD(3, FixedUniforms([0.5, 0.5, 0.0]))
    all5 = [0, 1, 2, 3, 4]
    assert p.choose([5, 5, 4, 4, 0], all5, 0.0) == 2  # nodes 2, 3, 0: 2 and 3 tie, 2 drawn first
    assert PowerOfD(5, FixedUniforms([])).choose([3, 1, 1, 2, 5], all5, 0.0) == 1  # d >= n
    # only nodes up are candidates: positions in ``up`` (0.5 -> 1 of [0, 2, 4]; 0.0 -> 0 of
    # [0, 4]: nodes 2 and 0, node 0 holds fewer)
    assert PowerOfD(2, FixedUniforms([0.5, 0.0])).choose([1, 0, 3, 0, 9], [0, 2, 4], 0.0) == 0
    assert PowerOfD(2, FixedUniforms([])).choose([1, 0, 3, 0, 9], [2, 4], 0.0) == 2  # d >= n


def test_consistent_hash_walks_past_nodes_at_the_bound() -> None:
    from sim.config import PlatformConfig

    cfg = PlatformConfig(nodes=3, placement="consistent_hash", placement_vnodes=4)
    h = BoundedConsistentHash(cfg, FixedUniforms([]))
    pos, owner = hash_ring(3, 4)
    assert pos == sorted(pos) and sorted(owner) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    key = pos[5]  # exactly on a point: that point's node
    up = [0, 1, 2]
    assert h.choose([0, 0, 0], up, key) == owner[5]
    loads = [0, 0, 0]
    loads[owner[5]] = 2  # bound ceil(1.25 · 3 / 3) = 2: the walk goes on to the next node
    nxt = next(o for o in owner[6:] + owner[:6] if o != owner[5])
    assert h.choose(loads, up, key) == nxt
    # a node that is not up is walked past, whatever its load; the bound counts the connections
    # of every node (a drained one's too) over the nodes up: ceil(1.25 · 3 / 2) = 2
    others = [n for n in up if n != owner[5]]
    assert h.choose([0, 0, 0], others, key) == next(
        o for o in owner[6:] + owner[:6] if o != owner[5]
    )
    ring8, _ = hash_ring(8, 4)  # a fleet with room for 8 nodes has the ring of 8
    assert BoundedConsistentHash(cfg, FixedUniforms([]), room=8).positions == ring8


# --------------------------------------------------------------------------- dynamics, exact


def actions(*items: str) -> str:
    return f"scenario.actions=[{', '.join(items)}]"


def events_of(result: RunResult) -> list[tuple[float, str, str, str]]:
    return [(e["t_s"], e["kind"], e["target"], e["detail"]) for e in result.events]


def col(result: RunResult, name: str, rows: int) -> list[int]:
    """The first ``rows`` values of a time-series column (row i: the tick ending at i + 1)."""
    return [int(x) for x in result.timeseries[name][:rows]]


def test_crash_nodes_drops_the_listener_who_reconnects_while_the_node_is_down() -> None:
    """One node crashes at the tick end 3 (action at 2.5): down until 6 (restart_s = 2.5 rounded
    up to a tick end). The listener is dropped at 3 and reconnects 0.5 s + Exp(0.1 s) later, a new
    first attempt rejected ``down`` until the node is back, then joins."""
    result, log = run_log(
        [
            "scenario.session_mean_s=100",
            "client=constant",
            "client.reconnect_min_s=0.5",
            "client.reconnect_mean_s=0.1",
            "platform.restart_s=2.5",
            actions("{t_s: 2.5, do: crash_nodes, count: 1}"),
        ],
        [0.5],
    )
    back = 3.0 + 0.5 + Stream.named(0, "reconnect").exponential(0.1)  # the first draw
    sessions = Stream.named(0, "session")
    first, second = sessions.exponential(100.0), sessions.exponential(100.0)
    assert 3.0 < back < 4.0 and first > 3.0  # the case below: dropped, then three times down
    down = [(back + j, 0, what) for j in range(3) for what in (f"attempt {j + 1}", "rejected down")]
    assert_log(
        log,
        [
            (0.5, 0, "arrive"),
            (0.5, 0, "attempt 1"),
            (0.5, 0, "node 0"),
            (0.5, 0, "served"),
            (0.5, 0, "joined"),
            (3.0, 0, "left"),
            (3.0, 0, "dropped"),
            (back, 0, "reconnect"),
            *down,
            (back + 3, 0, "attempt 4"),
            (back + 3, 0, "node 0"),
            (back + 3, 0, "served"),
            (back + 3, 0, "joined"),
            (back + 3 + second, 0, "left"),
        ],
    )
    assert events_of(result) == [
        (3.0, "crash", "node 0", "operator: crash_nodes; 1 listeners dropped; down until 6 s"),
        (3.0, "operator", "crash_nodes", "1 nodes crashed"),
        (6.0, "restart", "node 0", "back up"),
    ]
    # the crash shows from the row after it (t_s = 4); the node is back for the row t_s = 7
    assert col(result, "nodes_up", 8) == [1, 1, 1, 0, 0, 0, 1, 1]
    assert col(result, "concurrent", 8) == [1, 1, 1, 0, 0, 0, 1, 1]
    assert col(result, "dropped", 5) == col(result, "left", 5) == [0, 0, 0, 1, 0]
    assert col(result, "reconnects", 5) == [0, 0, 0, 1, 0]
    assert col(result, "rejected_down", 8) == [0, 0, 0, 1, 1, 1, 0, 0]
    assert col(result, "retries_pending", 8) == [0, 0, 0, 1, 1, 1, 0, 0]
    s = result.summary
    assert (s["arrivals"], s["reconnects"], s["joined"], s["dropped"], s["crashes"]) == (
        1,
        1,
        2,
        1,
        1,
    )
    conserved(s)


def test_a_crash_joins_and_drops_the_join_in_flight_and_forgets_the_timing_out_seat() -> None:
    """One worker busy ~108 s with person 0's join; person 1 waits from 2.0 and would give up at
    4.0. The crash at 3: person 0's join in flight counts as joined at 3 and is dropped (they come
    back at 3 + 10 s); person 1 keeps their timeout and its retry at 4 + 5 (the node is back at 4,
    its workers free from then); their seat is forgotten at once."""
    result, log = run_log(
        [
            "platform.join_workers=1",
            "platform.join_service_mean_s=100",
            "platform.restart_s=1",
            "client=constant",
            "client.delay_s=5",
            "client.reconnect_min_s=10",
            "client.reconnect_mean_s=0",
            actions("{t_s: 2.5, do: crash_nodes, count: 1}"),
        ],
        [0.5, 2.0],
    )
    service = Stream.named(0, "service")
    s0, _s1, s2, s3 = (service.exponential(100.0) for _ in range(4))  # s1: the timed-out one
    assert s0 > 3.0 and s2 < 13.0 - 9.0  # in service at 3; person 1's retry done before 13
    assert_log(
        log,
        [
            (0.5, 0, "arrive"),
            (0.5, 0, "attempt 1"),
            (0.5, 0, "node 0"),
            (0.5, 0, "served"),
            (2.0, 1, "arrive"),
            (2.0, 1, "attempt 1"),
            (2.0, 1, "node 0"),
            (3.0, 0, "joined"),
            (3.0, 0, "left"),
            (3.0, 0, "dropped"),
            (4.0, 1, "rejected timeout"),
            (9.0, 1, "attempt 2"),
            *[(9.0, 1, what) for what in ("node 0", "served")],
            (9.0 + s2, 1, "joined"),
            (9.0 + s2, 1, "left"),
            (13.0, 0, "reconnect"),
            *[(13.0, 0, what) for what in ("attempt 1", "node 0", "served")],
            (13.0 + s3, 0, "joined"),
            (13.0 + s3, 0, "left"),
        ],
    )
    # row t_s = 3: person 0 in service, person 1 waiting, two seats; t_s = 4: all forgotten
    assert col(result, "waiting", 4) == [0, 0, 1, 0]
    assert col(result, "connections", 4) == [1, 1, 2, 0]
    assert col(result, "concurrent", 4) == [0, 0, 0, 0]
    assert col(result, "joined", 4) == col(result, "dropped", 4) == [0, 0, 0, 1]
    assert col(result, "rejected_timeout", 4) == [0, 0, 1, 0]  # in the tick of the attempt
    s = result.summary
    assert s["peak_concurrent"] == 1 and s["peak_time_s"] == 3.0  # joined, then dropped, at 3
    # latencies from the placements: s0 (person 0, as placed), 9 + s2 − 2, s3
    assert s["join_latency_p50_s"] == pytest.approx(sorted([s0, 7.0 + s2, s3])[1])
    assert (s["joined"], s["reconnects"], s["rejected"]["timeout"]) == (3, 1, 1)
    conserved(s)


def test_a_restarted_node_warms_up_its_cap_tick_by_tick() -> None:
    """Crashed at 1, back at 2; cap 4 ramping over 4 s: for the tick starting at t the cap is
    floor(4 · min(1, (t − 2 + 1) / 4)): 1 in [2, 3), 2 in [3, 4), 3, then 4 from 5 on."""
    result, log = run_log(
        [
            "scenario.session_mean_s=100",
            "client=none",
            "platform.connections_per_node=4",
            "platform.restart_s=1",
            "platform.warmup_s=4",
            actions("{t_s: 0.5, do: crash_nodes, count: 1}"),
        ],
        [2.1, 2.2, 2.3, 3.1, 3.2, 5.1, 5.2, 5.3],
    )
    sessions = Stream.named(0, "session")
    assert min(sessions.exponential(100.0) for _ in range(4)) > 4.0  # all held to 5.3
    outcomes = [(round(t, 6), what) for t, _, what in log if what in ("joined", "rejected full")]
    assert outcomes == [
        (2.1, "joined"),
        (2.2, "rejected full"),
        (2.3, "rejected full"),
        (3.1, "joined"),
        (3.2, "rejected full"),
        (5.1, "joined"),
        (5.2, "joined"),
        (5.3, "rejected full"),
    ]
    assert [e[:3] for e in events_of(result)][::2] == [
        (1.0, "crash", "node 0"),
        (2.0, "restart", "node 0"),
    ]


def test_an_overloaded_node_crashes_after_crash_after_s_of_overloaded_tick_ends() -> None:
    """A busy worker uses all 8 cores (cpu_per_join_worker = 8): overloaded at every tick end of
    a join. crash_after_s = 3: the node crashes at the third overloaded tick end in a row."""
    result, log = run_log(
        [
            "platform.join_workers=1",
            "platform.join_service_mean_s=100",
            "platform.cpu_per_join_worker=8",
            "platform.crash_after_s=3",
            "platform.restart_s=1",
            "client=constant",
            "client.reconnect_min_s=0.5",
            "client.reconnect_mean_s=0",
        ],
        [0.5],
    )
    service = Stream.named(0, "service")
    s0, s1, s2 = (service.exponential(100.0) for _ in range(3))
    # served 0.5..; crash at 3 (overloaded at 1, 2, 3); back 0.5 s later at 3.5: down, the node
    # being back at 4; attempt 2 at 4.5 served for s1 (> 3 s): crash at 7; the same again, then
    # served from 8.5 for s2, done before 11: overloaded at two tick ends only (9, 10)
    assert s0 > 3 and s1 > 3 and 8.5 + s2 < 11
    why = "overloaded (utilisation 1.00) for 3 s; 1 listeners dropped"
    assert events_of(result) == [
        (3.0, "crash", "node 0", f"{why}; down until 4 s"),
        (4.0, "restart", "node 0", "back up"),
        (7.0, "crash", "node 0", f"{why}; down until 8 s"),
        (8.0, "restart", "node 0", "back up"),
    ]
    joins = [(round(t, 6), what) for t, _, what in log if what in ("served", "joined", "dropped")]
    assert joins == [
        (0.5, "served"), (3.0, "joined"), (3.0, "dropped"),
        (4.5, "served"), (7.0, "joined"), (7.0, "dropped"),
        (8.5, "served"), (round(8.5 + s2, 6), "joined"),
    ]  # fmt: skip
    s = result.summary
    assert (s["crashes"], s["dropped"], s["reconnects"], s["rejected"]["down"]) == (2, 2, 2, 2)
    conserved(s)


def test_the_control_plane_serves_times_out_and_refuses() -> None:
    """One auth worker (service ~108 s for person 0), one waiting place, 2 s timeout."""
    result, log = run_log(
        [
            "client=none",
            "platform.auth_workers=1",
            "platform.auth_queue_cap=1",
            "platform.auth_timeout_s=2",
            "platform.auth_service_mean_s=100",
        ],
        [0.1, 0.2, 0.3],
    )
    a0 = Stream.named(0, "service").exponential(100.0)  # person 0's, the first draw
    assert a0 > 2.2
    end = 0.1 + a0
    assert_log(
        log,
        [
            (0.1, 0, "arrive"),
            (0.1, 0, "attempt 1"),
            (0.1, 0, "auth"),
            (0.2, 1, "arrive"),
            (0.2, 1, "attempt 1"),  # waits for the worker, gives up at 2.2
            (0.3, 2, "arrive"),
            (0.3, 2, "attempt 1"),  # person 1 holds the one waiting place: refused at once
            (0.3, 2, "rejected auth"),
            (0.3, 2, "abandon"),
            (2.2, 1, "rejected auth"),
            (2.2, 1, "abandon"),
            (end, 0, "authed"),
            *joined(end, 0),
        ],
    )
    s, ts = result.summary, result.timeseries
    assert s["rejected"]["auth"] == 2 and s["joined"] == 1
    assert s["join_latency_p50_s"] == pytest.approx(a0)  # the control plane's time included
    assert ts["admitted"][0] == 3  # admitted before the control plane
    row = int(end)  # the tick [int(end), int(end) + 1) holds the exit, the join, the joining
    assert ts["joining"][row] == 1 and ts["joining"].sum() == 1
    assert np.all(ts["retries_pending"][:row] == 1) and ts["retries_pending"][row] == 0
    conserved(s)


def test_cap_listeners_rejects_while_the_fleet_holds_the_cap_then_is_lifted() -> None:
    """Capped at 1 connection at the tick end 1, lifted at 3; rejections ``cap`` have no hint."""
    result, log = run_log(
        [
            "scenario.session_mean_s=100",
            "client=constant",
            "client.honour_retry_after=true",
            actions(
                "{t_s: 0.5, do: cap_listeners, value: 1}",
                "{t_s: 2.5, do: cap_listeners, value: null}",
            ),
        ],
        [0.1, 1.5],
    )
    assert Stream.named(0, "session").exponential(100.0) > 4.0
    tried = [(round(t, 6), p, what) for t, p, what in log if p == 1 and what != "node 0"]
    assert (
        tried
        == [
            (1.5, 1, "arrive"),
            (1.5, 1, "attempt 1"),
            (1.5, 1, "rejected cap"),
            (2.5, 1, "attempt 2"),  # the backoff's 1 s: no hint
            (2.5, 1, "rejected cap"),
            (3.5, 1, "attempt 3"),
            (3.5, 1, "served"),
            (3.5, 1, "joined"),
            *tried[-1:],  # and leaves after its session
        ]
    )
    assert [e[3] for e in events_of(result)] == ["room capped at 1 connections", "cap lifted"]


def test_the_waiting_room_switch_replaces_admission_from_the_next_tick() -> None:
    result, log = run_log(
        [
            "admission=token_bucket",
            "admission.rate_per_s=1000",
            "admission.burst=1000",
            actions("{t_s: 0.5, do: waiting_room, value: 1, max_wait_s: 5}"),
        ],
        [0.9, 0.95, 1.1, 1.2, 1.3],
    )
    # before the tick end 1 the bucket admits at once; then one release a second from 1.1 on
    held = [(round(t, 6), p, what) for t, p, what in log if what in ("held", "released")]
    assert held == [(1.2, 3, "held"), (1.3, 4, "held"), (2.1, 3, "released"), (3.1, 4, "released")]
    assert col(result, "held", 4) == [0, 2, 1, 0]
    assert events_of(result) == [
        (1.0, "operator", "waiting_room", "waiting room on: 1/s released, at most 5 s")
    ]


def test_end_room_relaunch_keeps_nodes_out_and_reconnects_after_it() -> None:
    """Two nodes. Node 1 crashes at 1 (back at 3, restart_s = 2); the room ends at 2 for 5 s: node 0
    crashes, node 1 stays down until the relaunch at 7. Person 1 (dropped at 1) reconnects at 2.25:
    ``down`` until 7; person 0 (dropped at 2, comes back: uniform 0.65 < share 0.7) reconnects
    1.25 s after the relaunch (the batched engine's rule, see ``sim.reference.operator``)."""
    result, log = run_log(
        [
            "platform.nodes=2",
            "platform.placement=least_loaded",
            "platform.restart_s=2",
            "scenario.session_mean_s=100",
            "client=constant",
            "client.delay_s=1.7",
            "client.reconnect_min_s=1.25",
            "client.reconnect_mean_s=0",
            actions(
                "{t_s: 0.5, do: crash_nodes, count: 1}",
                "{t_s: 1.5, do: end_room, for_s: 5, share: 0.7}",
            ),
        ],
        [0.1, 0.2],
    )
    u = Stream.named(0, "reconnect")
    u.uniform()  # person 1's delay (mean 0) at the first crash
    assert u.uniform() < 0.7  # person 0 comes back
    assert events_of(result) == [
        (1.0, "crash", "node 1", "operator: crash_nodes; 1 listeners dropped; down until 3 s"),
        (1.0, "operator", "crash_nodes", "1 nodes crashed"),
        (2.0, "crash", "node 0", "operator: end_room; 1 listeners dropped; down until 7 s"),
        (2.0, "operator", "end_room", "room ended: relaunched after 5 s, 70% come back"),
        (7.0, "restart", "node 1", "back up"),
        (7.0, "restart", "node 0", "back up"),
    ]
    assert col(result, "nodes_up", 9) == [2, 1, 0, 0, 0, 0, 0, 2, 2]
    visits = [(round(t, 6), p, what) for t, p, what in log if what in ("reconnect", "joined")]
    assert visits == [
        (0.1, 0, "joined"),
        (0.2, 1, "joined"),
        (2.25, 1, "reconnect"),  # then down at 2.25, 3.95, 5.65; in at 7.35
        (7.35, 1, "joined"),
        (8.25, 0, "reconnect"),
        (8.25, 0, "joined"),
    ]
    assert result.summary["rejected"]["down"] == 3


def test_the_autoscaler_orders_a_node_above_its_target_and_waits_out_its_cooldown() -> None:
    """One node with one worker busy ~108 s: utilisation 1 > 0.5 at the first check (t = 1), so
    ceil(1 · 1 / 0.5) − 1 = 1 node ordered, up 2 s later; from the end of the cooldown (t = 6)
    the two nodes' utilisation is 1/2 workers busy, not above the target."""
    result, _ = run_log(
        [
            "platform.join_workers=1",
            "platform.join_service_mean_s=100",
            "autoscaler=target",
            "autoscaler.target_utilisation=0.5",
            "autoscaler.interval_s=1",
            "autoscaler.provisioning_delay_s=2",
            "autoscaler.cooldown_s=5",
            "autoscaler.max_nodes=3",
        ],
        [0.5],
    )
    assert events_of(result) == [
        (1.0, "scale", "fleet", "utilisation 1.00 > 0.5: 1 nodes ordered"),
        (3.0, "scale", "node 1", "up"),
    ]
    assert col(result, "nodes_up", 5) == [1, 1, 1, 2, 2]
    assert result.timeseries["join_capacity_per_s"][3] == pytest.approx(2 * 1 / 100)


CREDIT_OF_ONE = [
    "platform.join_workers=1",
    "platform.join_service_mean_s=1e4",  # in service through the crash
    "client=none",
    "admission=credit",
    "admission.initial_credits=1",
    "admission.min_credits=1",
    "admission.max_credits=1",
]


def test_a_crash_takes_its_joins_out_of_flight() -> None:
    """A join in flight at a crash "counts as joined at T and dropped at T" (docs/model.md): it is
    in flight no more. Credit of 1 admits while nothing is in flight: the attempt at 3.5, after
    the crash at 3, is admitted (and rejected ``down``, the only node being down)."""
    _, log = run_log([*CREDIT_OF_ONE, actions("{t_s: 2.5, do: crash_nodes, count: 1}")], [0.5, 3.5])
    assert [what for t, p, what in log if p == 1] == [
        "arrive",
        "attempt 1",
        "rejected down",
        "abandon",
    ]


def test_the_batched_engine_takes_a_crashed_nodes_joins_out_of_flight() -> None:
    """The same case at the batched engine's component level (fixed arrival times)."""
    from sim import streams
    from sim.kernels import pipeline
    from sim.model.fleet import EdgeFleet
    from sim.model.joins import JoinPipeline
    from sim.policies import client as cli

    cfg = typed_config([*CREDIT_OF_ONE, "platform.nodes=1"])
    fleet = EdgeFleet(cfg.platform)
    joins = JoinPipeline(fleet, cfg.admission, cli.NoRetry(), 1e-9, streams.states(0), tick_s=1.0)
    for t_end, arrivals in ((1.0, [0.5]), (2.0, []), (3.0, [])):
        joins.step(t_end, np.array(arrivals), np.zeros(pipeline.N_COUNTERS, dtype=np.int64))
    joins.crash([0], 3.0, 63.0)
    counts = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)
    joins.step(4.0, np.array([3.5]), counts)
    rejected = {r: int(counts[pipeline.C_REJECT + i]) for i, r in enumerate(pipeline.REASONS)}
    assert rejected["no_credit"] == 0 and rejected["down"] == 1


SCRIPTED = [
    "scenario=bench_surge",
    "scenario.expected_arrivals=400",
    "platform.nodes=4",
    "platform.restart_s=30",
    actions(
        "{t_s: 10, do: drain_nodes, count: 1, for_s: 20}",
        "{t_s: 20, do: add_nodes, count: 2, for_s: 15}",
        "{t_s: 55, do: crash_nodes, count: 2}",  # back at 85, were it not for the end
        "{t_s: 50, do: cap_listeners, value: 60}",
        "{t_s: 60, do: waiting_room, value: 5, max_wait_s: 10}",
        "{t_s: 70, do: drain_nodes, count: 1, for_s: 60}",  # drained when the room ends
        "{t_s: 80, do: end_room, for_s: 30, share: 0.5}",
        "{t_s: 150, do: cap_listeners, value: null}",
    ),
]


def test_scripted_actions_give_both_engines_the_same_events_and_fleet() -> None:
    """Scripted actions (no health monitor, no autoscaler) are deterministic: the same events
    (time, kind, target) and nodes up, tick by tick, in both engines. The room ends at 80 with
    two nodes down (crashed at 55) and one drained (at 70): the drained one crashes, all are down
    until the relaunch at 110."""
    cfg = typed_config(SCRIPTED)
    ref = simulate(cfg)
    bat = simulate_any(
        dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, kind="batched"))
    )
    assert [e[:3] for e in events_of(ref)] == [e[:3] for e in events_of(bat)]
    n = min(ref.timeseries["t_s"].size, bat.timeseries["t_s"].size)
    np.testing.assert_array_equal(ref.timeseries["nodes_up"][:n], bat.timeseries["nodes_up"][:n])
    for r in (ref, bat):
        s, ts = r.summary, r.timeseries
        conserved(s)
        assert s["dropped"] == ts["dropped"].sum() > 0 and s["reconnects"] < s["dropped"]
        assert s["rejected"]["cap"] > 0 and s["rejected"]["down"] > 0 and ts["held"].max() > 0
        assert ts["joined"].sum() == ts["left"].sum() == s["joined"]
        assert ts["connections"][-1] == ts["retries_pending"][-1] == ts["trying"][-1] == 0


# --------------------------------------------------------------------------- conservation

SMALL = [
    "engine.kind=reference",
    "scenario=bench_surge",
    "scenario.expected_arrivals=2000",
    "platform.nodes=2",
    "platform.join_workers=1",
    "platform.join_service_mean_s=0.2",  # 10 joins/s at most against a peak of ~15 arrivals/s
    "platform.connections_per_node=500",
]
ADMISSIONS = {
    "none": ["admission=none"],
    "token_bucket": ["admission=token_bucket", "admission.rate_per_s=8", "admission.burst=20"],
    "concurrency_cap": [
        "admission=concurrency_cap",
        "admission.max_listeners=700",
        "admission.max_joins_in_flight=10",
        "admission.retry_after_s=2",
    ],
    "waiting_room": [
        "admission=waiting_room",
        "admission.release_per_s=9",
        "admission.max_wait_s=8",
        "admission.capacity=40",
        "admission.retry_after_s=3",
    ],
    "aimd": ["admission=aimd", "admission.initial_rate_per_s=30", "admission.min_rate_per_s=2"],
    "credit": ["admission=credit", "admission.initial_credits=8", "admission.min_credits=2"],
}
CLIENTS = {
    "immediate": ["client=immediate", "client.patience=fixed", "client.patience_mean_s=20"],
    "retry_budget": ["client=retry_budget", "client.patience=exponential"],
    "throttle": ["client=adaptive_throttle", "client.patience=lognormal"],
    "decorrelated": ["client=decorrelated_jitter", "client.honour_retry_after=false"],
}
PLACEMENTS = ["random", "least_loaded", "power_of_two", "power_of_d", "consistent_hash"]
ONLY = {  # rejection reasons that only one policy can give
    "bucket": "token_bucket",
    "cap": "concurrency_cap",
    "hold_full": "waiting_room",
    "hold_timeout": "waiting_room",
    "shed": "aimd",
    "no_credit": "credit",
}


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("policy", list(ADMISSIONS))
def test_every_policy_conserves_counts(policy: str, client: str) -> None:
    i = list(ADMISSIONS).index(policy) + list(CLIENTS).index(client)
    placement = PLACEMENTS[i % len(PLACEMENTS)]
    cfg = typed_config(
        [*SMALL, *ADMISSIONS[policy], *CLIENTS[client], f"platform.placement={placement}"]
    )
    result = simulate(cfg)
    s, ts = result.summary, result.timeseries
    assert not s["engine_failed"]
    assert abs(s["arrivals"] - 2000) < 5 * math.sqrt(2000)
    conserved(s)
    by_reason = {c.removeprefix("rejected_"): int(ts[c].sum()) for c in ts if "rejected_" in c}
    assert s["rejected"] == by_reason
    assert ts["joined"].sum() == ts["left"].sum() == s["joined"]
    assert ts["admitted"].sum() == s["joined"] + sum(
        s["rejected"][r] for r in ("full", "queue", "timeout")
    )
    own = [r for r, owner in ONLY.items() if owner == policy]
    for r in ONLY:
        if r not in own:
            assert s["rejected"][r] == 0, r
    assert sum(s["rejected"][r] for r in own or s["rejected"]) > 0  # the policy acts
    assert (s["rejected"]["throttled"] > 0) == (client == "throttle")
    assert (ts["retries_denied"].sum() > 0) == (client == "retry_budget")
    # everyone is gone at the end, and nothing was negative on the way
    for col in ("concurrent", "waiting", "connections", "retries_pending", "held", "trying"):
        assert ts[col].min() >= 0 and ts[col][-1] == 0, col
    assert ts["concurrent"].max() <= s["peak_concurrent"] <= 2 * 500
    assert s["join_latency_p50_s"] <= s["join_latency_p99_s"]
    assert s["ticks"] == len(ts["t_s"]) and s["sim_end_s"] == ts["t_s"][-1]


def test_same_seed_same_run_and_max_sim_s_fails() -> None:
    cfg = typed_config([*SMALL, "seed=3"])
    a, b = simulate(cfg).summary, simulate(cfg).summary
    assert comparable(a) == comparable(b)
    short = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, max_sim_s=100.0))
    seen: list[float] = []
    s = simulate(short, on_progress=seen.append).summary
    assert s["engine_failed"] and "max_sim_s" in s["failure_reason"] and s["sim_end_s"] == 100.0
    assert seen and seen[-1] == 100.0


@pytest.mark.parametrize("tick_s", [0.25, 7.0])
def test_results_do_not_depend_on_the_tick(tick_s: float) -> None:
    """The recorder only looks; every decision happens at its own time."""
    cfg = typed_config([*SMALL, *ADMISSIONS["aimd"], *CLIENTS["throttle"], "seed=2"])
    other = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, tick_s=tick_s))
    a, b = simulate(cfg).summary, simulate(other).summary
    assert comparable(a, TICK_GRID) == comparable(b, TICK_GRID)


def test_same_summary_keys_and_timeseries_columns_as_the_batched_engine() -> None:
    cfg = typed_config([*SMALL, "scenario.expected_arrivals=200"])
    ref = simulate_any(cfg)  # through sim.engine.simulate, as every run: the scenario clock
    batched = simulate_any(
        dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, kind="batched"))
    )
    assert list(ref.summary) == list(batched.summary)
    assert list(ref.summary["rejected"]) == list(batched.summary["rejected"])
    assert list(ref.timeseries) == list(batched.timeseries)
    for col, values in ref.timeseries.items():
        assert values.dtype == batched.timeseries[col].dtype, col


ALLOWED_IMPORTS = (
    "sim.config",
    "sim.criteria",  # the verdict and the derived series, pure functions of the time series
    "sim.engine",  # RunResult only
    # the fan-out tiers are aggregate arithmetic by definition (docs/fanout.md; checked against
    # their own twin in tests/test_fanout_kernel.py), the presence channel a fluid backlog; the
    # listeners' stalls, drops and reconnects are the reference's own (sim.reference.audio)
    "sim.kernels.fanout",
    "sim.model.presence",
    "sim.model.fanout",  # SegmentLog and extras_summary: the recorder of the segments
    "sim.model.metrics",
    "sim.model.surge",  # the arrival process: the surge's people and a join flood's bots
    "sim.policies",
    "sim.reference",
    "sim.streams",
)


def test_the_reference_engine_uses_none_of_the_batched_engines_kernels() -> None:
    """Independence: only the config, the streams, the arrivals and the recorder are shared."""
    import ast

    import sim.reference

    def ours(name: str) -> bool:
        return name == "sim" or name.startswith("sim.")

    def allowed(name: str) -> bool:
        return any(name == a or name.startswith(f"{a}.") for a in ALLOWED_IMPORTS)

    for path in Path(sim.reference.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and ours(node.module):
                if node.module == "sim":  # from sim import criteria, interrupt, streams
                    names = {a.name for a in node.names}
                    assert names <= {"criteria", "interrupt", "streams"}, path.name
                    continue
                assert allowed(node.module), (path.name, node.module)
                if node.module == "sim.engine":
                    assert [a.name for a in node.names] == ["RunResult"], path.name
            elif isinstance(node, ast.Import):
                assert not any(ours(a.name) for a in node.names), path.name


# --------------------------------------------------------------------------- agreement

ALPHA = 0.001  # family-wise, per scenario (Bonferroni over the metrics that occur)
BASE = ["scenario=bench_surge", "scenario.expected_arrivals=5e3"]  # peak ~37 arrivals/s


@dataclasses.dataclass(frozen=True)
class Scenario:
    """An agreement scenario: its overrides, replications per engine, and the metrics that must
    occur in it (so that a change of the model cannot quietly turn its dynamics off)."""

    overrides: list[str]
    replications: int = 10
    occurs: tuple[str, ...] = ()


# Power. Each comparison's tolerance is t(1 − α/2m, Welch df) · se of the difference: ~5.2 se at
# R = 10, i.e. ~2.3 standard deviations of one run. A true difference equal to the tolerance is
# flagged half the time, 1.25 times it ~90% of the time. Each table prints it relative to the
# batched mean ("detects"); the comments give it for the main metrics, measured with these seeds.
# The peak, the crashes (or a cap) are exact in some scenarios: constant in both, they must be
# equal.
SCENARIOS = {
    # the reference workload at 5e3: 2 nodes join at most 24/s; the bucket and the nodes reject.
    # Detects 4% in joined, 9% in attempts, 12% in p99, 15-18% in bucket and full (the peak is
    # the 2 nodes' 2000 connections in every run)
    "bench_surge": Scenario(
        ["experiment=bench_surge", "scenario.expected_arrivals=5e3"],
        occurs=("rejected_bucket_share", "rejected_full_share", "rejected_timeout_share"),
    ),
    # 2 nodes join at most 24/s: AIMD sheds, queues time out, patience runs out.
    # Detects 3% in joined, 10% in attempts, 14% in shed, 20% in p99, 3% in the peak
    "aimd_decorrelated": Scenario(
        [
            *BASE,
            "platform.nodes=2",
            "platform.connections_per_node=2000",
            "admission=aimd",
            "client=decorrelated_jitter",
            "client.patience=exponential",
        ],
        occurs=("rejected_shed_share", "rejected_timeout_share"),
    ),
    # released at 20/s onto 3 nodes that join at most 18/s, hashed; hold timeouts, denials.
    # Detects 4% in joined, 1% in attempts, 25% in hold timeouts, 3% in p99, 5% in the peak
    "waiting_room_budget_hash": Scenario(
        [
            *BASE,
            "platform.nodes=3",
            "platform.join_service_mean_s=0.3333",
            "platform.connections_per_node=2000",
            "platform.placement=consistent_hash",
            "admission=waiting_room",
            "admission.release_per_s=20",
            "admission.max_wait_s=15",
            "client=retry_budget",
        ],
        occurs=("rejected_hold_timeout_share", "denied_share"),
    ),
    # (a) overload crashes: a node holding ~380 listeners for 10 s crashes (3 nodes: every node
    # crashes twice, a reconnect storm each time), restarts after 30 s and warms up over 20 s
    # (``full``); AIMD sheds; decorrelated jitter. 12 runs: detects 4% in joined, 3% in attempts,
    # 9% in dropped and in the peak, 8% in p99, a doubling of ``full`` (the docs' warm-up rule, a
    # cap of 0 in the first tick, triples it)
    "crashes_warmup_aimd": Scenario(
        [
            *BASE,
            "platform.nodes=3",
            "platform.crash_after_s=10",
            "platform.cpu_per_listener=0.02",
            "platform.restart_s=30",
            "platform.warmup_s=20",
            "admission=aimd",
            "client=decorrelated_jitter",
        ],
        replications=12,
        occurs=(
            "crashes",
            "dropped_per_arrival",
            "rejected_full_share",
            "rejected_shed_share",
            "rejected_down_share",
        ),
    ),
    # (b) 4 of 6 nodes crash at 90 s; the room ends at 150 s for 60 s, 60% come back after the
    # relaunch (the rule of ``sim.reference.operator``: the docs' rule moves the joined share by
    # 17%, ``down`` by 90%); credits; a 20% retry budget; the autoscaler orders nodes (up 30 s
    # later). Detects 5% in joined, 1.4% in attempts, 8% in dropped, 10% in reconnects and
    # abandoned, 14% in no_credit, 17% in down, 6% in the peak
    "crash_end_room_credit_autoscaler": Scenario(
        [
            *BASE,
            "platform.nodes=6",
            "admission=credit",
            "client.retry_budget=0.2",
            "autoscaler=target",
            "autoscaler.provisioning_delay_s=30",
            "autoscaler.max_nodes=12",
            "scenario.actions=[{t_s: 90, do: crash_nodes, count: 4},"
            " {t_s: 150, do: end_room, for_s: 60, share: 0.6}]",
        ],
        occurs=(
            "crashes",
            "dropped_per_arrival",
            "reconnects_per_arrival",
            "denied_share",
            "rejected_no_credit_share",
            "rejected_down_share",
        ),
    ),
    # (c) a control plane of 2 workers (~30/s) before 2 nodes (24/s) whose timed-out joins are
    # still served (wasted work): a metastable collapse, ~23% join. Detects 9% in abandoned (29%
    # in the joined share, noisy), 7% in attempts, 5% in auth, 11% in queue, 17% in timeout
    "auth_wasted_work": Scenario(
        [
            *BASE,
            "platform.nodes=2",
            "platform.timeout_wastes_work=true",
            "platform.auth_workers=2",
            "platform.auth_service_mean_s=0.066",
            "platform.auth_queue_cap=30",
            "platform.auth_timeout_s=1",
            "client.patience=lognormal",
            "client.patience_mean_s=60",
        ],
        occurs=("rejected_auth_share", "rejected_timeout_share", "rejected_queue_share"),
    ),
    # (d) the other operator actions: a listener cap of 1800 from 100 s to 300 s, one of 3 nodes
    # drained for 30 s, a waiting room of 15/s from 130 s, 2 nodes added 40 s later.
    # Detects 4% in joined, 7% in attempts, 10% in cap, 42% in hold timeouts, 1% in p99 and peak
    "operator_actions": Scenario(
        [
            *BASE,
            "platform.nodes=3",
            "client.patience=lognormal",
            "client.patience_mean_s=90",
            "scenario.actions=[{t_s: 100, do: cap_listeners, value: 1800},"
            " {t_s: 110, do: drain_nodes, count: 1, for_s: 30},"
            " {t_s: 130, do: waiting_room, value: 15, max_wait_s: 20},"
            " {t_s: 130, do: add_nodes, count: 2, for_s: 40},"
            " {t_s: 300, do: cap_listeners, value: null}]",
        ],
        occurs=("rejected_cap_share", "rejected_hold_timeout_share"),
    ),
}


def observables(result: RunResult) -> dict[str, float]:
    """What the engines must agree on, per run."""
    s = result.summary
    arrivals, attempts = s["arrivals"], s["attempts"]
    out = {
        "joined_share": s["joined"] / arrivals,  # joins per new listener (reconnects rejoin)
        "abandoned_share": s["abandoned"] / arrivals,
        "attempts_per_arrival": attempts / arrivals,
        "denied_share": float(result.timeseries["retries_denied"].sum()) / arrivals,
        "join_latency_p50_s": s["join_latency_p50_s"],
        "join_latency_p99_s": s["join_latency_p99_s"],
        "peak_concurrent": float(s["peak_concurrent"]),
        "dropped_per_arrival": s["dropped"] / arrivals,
        "reconnects_per_arrival": s["reconnects"] / arrivals,
        "crashes": float(s["crashes"]),
    }
    out |= {f"rejected_{r}_share": n / attempts for r, n in s["rejected"].items()}
    return out


def replicate(cfg: Config, kind: str, seeds: range) -> dict[str, np.ndarray]:
    runs = []
    for seed in seeds:
        engine = dataclasses.replace(cfg.engine, kind=kind)
        runs.append(observables(simulate_any(dataclasses.replace(cfg, seed=seed, engine=engine))))
    return {k: np.array([r[k] for r in runs]) for k in runs[0]}


def agreement(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], alpha: float
) -> list[dict[str, Any]]:
    """Welch two-sample comparisons of the means of every metric that occurs (Bonferroni)."""
    names = [k for k in a if np.any(a[k] != 0) or np.any(b[k] != 0)]
    rows = []
    for k in names:
        x, y = a[k], b[k]
        va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
        se = math.sqrt(va + vb)
        if se > 0:
            df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
            crit = float(stats.t.ppf(1 - alpha / (2 * len(names)), df))
        else:
            crit = 0.0  # both constant (a cap reached, every node crashed twice): must be equal
        diff = float(x.mean() - y.mean())
        rows.append(
            {
                "metric": k,
                "batched": (float(x.mean()), math.sqrt(va)),
                "reference": (float(y.mean()), math.sqrt(vb)),
                "diff": diff,
                "tolerance": crit * se,
                "ok": abs(diff) <= crit * se,
            }
        )
    return rows


def format_rows(name: str, replications: int, rows: list[dict[str, Any]]) -> str:
    lines = [f"{name}: means ± se over {replications} runs each; detects: tolerance / mean"]
    for r in rows:
        (ma, sa), (mb, sb) = r["batched"], r["reference"]
        flag = "ok" if r["ok"] else "DISAGREE"
        detects = r["tolerance"] / abs(ma) if ma else math.inf
        lines.append(
            f"  {r['metric']:<30} batched {ma:<9.5g} ± {sa:<8.2g} reference {mb:<9.5g} ± {sb:<8.2g}"
            f" |diff| {abs(r['diff']):<8.3g} <= {r['tolerance']:<8.3g}"
            f" detects {detects:5.1%}  {flag}"
        )
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_batched_and_reference_agree(name: str) -> None:
    scenario = SCENARIOS[name]
    cfg = typed_config(scenario.overrides)
    r = scenario.replications
    batched = replicate(cfg, "batched", range(r))
    # other seeds: the two samples are independent (they would share the arrival times)
    reference = replicate(cfg, "reference", range(10_000, 10_000 + r))
    rows = agreement(batched, reference, ALPHA)
    report = format_rows(name, r, rows)
    print(report)
    assert all(row["ok"] for row in rows), report
    for metric in scenario.occurs:  # the scenario still exercises what it is there for
        assert batched[metric].mean() > 0 and reference[metric].mean() > 0, metric
    assert len(rows) >= 9  # shares of two or more rejection reasons besides the rest


# --------------------------------------------------------------------------- the command line


def test_spacesim_run_engine_reference(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("spacesim")
    run_dir = tmp_path / "ref"
    args = ["run", "engine=reference", "scenario.expected_arrivals=300", f"hydra.run.dir={run_dir}"]
    out = subprocess.run(
        [str(exe), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"HYDRA_FULL_ERROR": "1"},
    )
    assert out.returncode == 0, out.stderr
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["engine_failed"] is False and s["arrivals"] > 0
    conserved(s)
