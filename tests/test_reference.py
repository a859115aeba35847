"""The reference engine (``sim.reference``): exact event logs, conservation, agreement with batched.

Three tiers:

- exact: tiny rooms with fixed arrival times, parameters that make the model deterministic (join
  service and sessions of ~1 ns, or the first draws of a named stream written out), and the event
  log each must produce, computed by hand from ``docs/policies.md``;
- sanity: conservation of counts and the time series' rules for every admission policy with
  several client and placement policies, at ~2,000 arrivals;
- statistical: seeded replications of both engines on three overloaded scenarios; every metric's
  means must agree within a two-sample (Welch) tolerance from the replications' standard errors,
  at a family-wise error rate of 0.001 (Bonferroni over the metrics of a scenario).
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
    assert s["arrivals"] == s["joined"] + s["abandoned"]
    assert s["attempts"] == s["joined"] + sum(s["rejected"].values())


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
    assert p.choose([5, 5, 4, 4, 0], 0.0) == 2  # nodes 2, 3, 0: 2 and 3 tie, 2 drawn first
    assert PowerOfD(5, FixedUniforms([])).choose([3, 1, 1, 2, 5], 0.0) == 1  # d >= n


def test_consistent_hash_walks_past_nodes_at_the_bound() -> None:
    from sim.config import PlatformConfig

    cfg = PlatformConfig(nodes=3, placement="consistent_hash", placement_vnodes=4)
    h = BoundedConsistentHash(cfg, FixedUniforms([]))
    pos, owner = hash_ring(3, 4)
    assert pos == sorted(pos) and sorted(owner) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    key = pos[5]  # exactly on a point: that point's node
    assert h.choose([0, 0, 0], key) == owner[5]
    loads = [0, 0, 0]
    loads[owner[5]] = 2  # bound ceil(1.25 · 3 / 3) = 2: the walk goes on to the next node
    nxt = next(o for o in owner[6:] + owner[:6] if o != owner[5])
    assert h.choose(loads, key) == nxt


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
    assert not s["failed"]
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
    assert {k: v for k, v in a.items() if k != "wall_s"} == {
        k: v for k, v in b.items() if k != "wall_s"
    }
    short = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, max_sim_s=100.0))
    seen: list[float] = []
    s = simulate(short, on_progress=seen.append).summary
    assert s["failed"] and "max_sim_s" in s["failure_reason"] and s["sim_end_s"] == 100.0
    assert seen and seen[-1] == 100.0


@pytest.mark.parametrize("tick_s", [0.25, 7.0])
def test_results_do_not_depend_on_the_tick(tick_s: float) -> None:
    """The recorder only looks; every decision happens at its own time."""
    cfg = typed_config([*SMALL, *ADMISSIONS["aimd"], *CLIENTS["throttle"], "seed=2"])
    other = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, tick_s=tick_s))
    volatile = ("wall_s", "ticks", "sim_end_s")
    a, b = simulate(cfg).summary, simulate(other).summary
    assert {k: v for k, v in a.items() if k not in volatile} == {
        k: v for k, v in b.items() if k not in volatile
    }


def test_same_summary_keys_and_timeseries_columns_as_the_batched_engine() -> None:
    cfg = typed_config([*SMALL, "scenario.expected_arrivals=200"])
    ref = simulate(cfg)
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
    "sim.engine",  # RunResult only
    "sim.model.metrics",
    "sim.model.surge",
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
                if node.module == "sim":  # from sim import streams
                    assert [a.name for a in node.names] == ["streams"], path.name
                    continue
                assert allowed(node.module), (path.name, node.module)
                if node.module == "sim.engine":
                    assert [a.name for a in node.names] == ["RunResult"], path.name
            elif isinstance(node, ast.Import):
                assert not any(ours(a.name) for a in node.names), path.name


# --------------------------------------------------------------------------- agreement

REPLICATIONS = 10
ALPHA = 0.001  # family-wise, per scenario
SCENARIOS = {
    "bench_surge": ["experiment=bench_surge", "scenario.expected_arrivals=1e4"],
    # 4 nodes join at most 48/s against a peak of ~74 arrivals/s: AIMD sheds, queues time out
    "aimd_decorrelated": [
        "scenario=bench_surge",
        "scenario.expected_arrivals=1e4",
        "platform.nodes=4",
        "platform.connections_per_node=2000",
        "admission=aimd",
        "client=decorrelated_jitter",
        "client.patience=exponential",
    ],
    # released at 40/s onto 3 nodes that join at most 36/s; hold timeouts; budget denials
    "waiting_room_budget_hash": [
        "scenario=bench_surge",
        "scenario.expected_arrivals=1e4",
        "platform.nodes=3",
        "platform.connections_per_node=2000",
        "platform.placement=consistent_hash",
        "admission=waiting_room",
        "admission.release_per_s=40",
        "admission.max_wait_s=15",
        "client=retry_budget",
    ],
}


def observables(result: RunResult) -> dict[str, float]:
    """What the engines must agree on, per run."""
    s = result.summary
    arrivals, attempts = s["arrivals"], s["attempts"]
    out = {
        "joined_share": s["joined"] / arrivals,
        "abandoned_share": s["abandoned"] / arrivals,
        "attempts_per_arrival": attempts / arrivals,
        "denied_share": float(result.timeseries["retries_denied"].sum()) / arrivals,
        "join_latency_p50_s": s["join_latency_p50_s"],
        "join_latency_p99_s": s["join_latency_p99_s"],
        "peak_concurrent": float(s["peak_concurrent"]),
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
            crit = 0.0  # both constant (a cap reached in every run): they must be equal
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


def format_rows(name: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"{name}: means ± se over {REPLICATIONS} runs each"]
    for r in rows:
        (ma, sa), (mb, sb) = r["batched"], r["reference"]
        flag = "ok" if r["ok"] else "DISAGREE"
        lines.append(
            f"  {r['metric']:<28} batched {ma:.5g} ± {sa:.2g}   reference {mb:.5g} ± {sb:.2g}"
            f"   |diff| {abs(r['diff']):.3g} <= {r['tolerance']:.3g}  {flag}"
        )
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_batched_and_reference_agree(name: str) -> None:
    cfg = typed_config(SCENARIOS[name])
    batched = replicate(cfg, "batched", range(REPLICATIONS))
    # other seeds: the two samples are independent (they would share the arrival times)
    reference = replicate(cfg, "reference", range(10_000, 10_000 + REPLICATIONS))
    rows = agreement(batched, reference, ALPHA)
    report = format_rows(name, rows)
    print(report)
    assert all(r["ok"] for r in rows), report
    assert len(rows) >= 8  # shares of two or more rejection reasons besides the rest


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
    assert s["failed"] is False and s["arrivals"] > 0
    conserved(s)
