"""Attack traffic in the reference engine (``sim.reference.attack``): exact, sanity, agreement.

- exact: tiny rooms with fixed arrival times of people and bots and the event log each must
  produce, computed by hand from ``docs/policies.md`` (*Attack traffic*) and ``docs/fanout.md``
  §4: bots against a token bucket of burst 1 (and the batched join kernel's counts on the same
  room), a flooded ingress and the mitigation's filter drawn in their order from the ``attack``
  stream with the gates changing at a tick boundary, a bot holding its seat only while it is
  served;
- sanity: bot counts conserved, organic counters untouched (the bots filtered at the gate leave
  the people's run unchanged, number for number, in both engines), the summary keys and columns
  of the batched engine;
- statistical: seeded replications of both engines on a reduced join flood with retries and
  mitigation, and on a volumetric ingress flood with the fan-out on (Welch, α = 0.001, as in
  ``tests/test_reference.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from sim import streams
from sim.config import Config
from sim.engine import RunResult
from sim.engine import simulate as simulate_any
from sim.reference import Event, simulate
from sim.reference.draws import Stream
from tests.conftest import typed_config
from tests.test_reference import TINY, agreement, assert_log, conserved, format_rows, joined


def run_log(
    overrides: list[str], arrivals: Sequence[float], bots: Sequence[float]
) -> tuple[RunResult, list[Event]]:
    log: list[Event] = []
    cfg = typed_config([*TINY, *overrides])
    return simulate(cfg, log=log, arrivals=arrivals, bots=bots), log


def served(t: float, p: int) -> list[tuple[float, int, str]]:
    """A bot served at ``t`` (a nanosecond of service): it hands its seat back at once."""
    return [(t, p, "node 0"), (t, p, "served"), (t, p, "done")]


def bots_conserved(s: dict[str, Any]) -> None:
    assert s["attack_attempts"] == s["attack_filtered"] + s["attack_rejected"] + s["attack_served"]


# a join flood whose profile the fixed bot times replace (it only sets when the attack starts)
FLOOD_AT_0 = [
    "attack=join_flood",
    "attack.join_flood=[{t_s: 0, rate_per_s: 1}, {t_s: 1, rate_per_s: 1}]",
]


# --------------------------------------------------------------------------- exact cases

BUCKET = [
    "admission=token_bucket",
    "admission.rate_per_s=1",
    "admission.burst=1",
    "client=constant",
    "client.delay_s=0.5",
    "client.max_attempts=3",
    *FLOOD_AT_0,
    "attack.detect_delay_s=null",
    "attack.bot_retry_s=0.45",
    "attack.bot_max_attempts=2",
]


def test_bots_take_tokens_from_a_bucket_of_burst_one_and_retry_at_a_fixed_delay() -> None:
    """``test_token_bucket_burst_one_rate_one_constant_retry`` with persons 0 and 2 replaced by
    bots: no patience, no backoff, retried 0.45 s after a failure, two attempts each.

    Tokens: 1 at 0.1 (the bot takes it); 0.1 at 0.2; 0.2 at 0.3; 0.6 at 0.7; 0.65 at 0.75 (the
    bot's last attempt); 1.1 at 1.2 (the person's third attempt takes it).
    """
    result, log = run_log(BUCKET, [0.2], [0.1, 0.3])
    assert_log(
        log,
        [
            (0.1, 0, "bot"),
            (0.1, 0, "attempt 1"),
            *served(0.1, 0),
            (0.2, 1, "arrive"),
            (0.2, 1, "attempt 1"),
            (0.2, 1, "rejected bucket"),
            (0.3, 2, "bot"),
            (0.3, 2, "attempt 1"),
            (0.3, 2, "rejected bucket"),
            (0.7, 1, "attempt 2"),
            (0.7, 1, "rejected bucket"),
            (0.75, 2, "attempt 2"),
            (0.75, 2, "rejected bucket"),
            (0.75, 2, "gone"),
            (1.2, 1, "attempt 3"),
            *joined(1.2, 1),
        ],
    )
    s, ts = result.summary, result.timeseries
    # the people's counters hold the person only
    assert (s["arrivals"], s["attempts"], s["joined"], s["abandoned"]) == (1, 3, 1, 0)
    assert s["rejected"]["bucket"] == 2 and s["peak_concurrent"] == 1
    assert s["join_latency_p50_s"] == pytest.approx(1.0)
    conserved(s)
    bot = {k: s[k] for k in ("attack_attempts", "attack_served", "attack_rejected")}
    assert bot == {"attack_attempts": 3, "attack_served": 1, "attack_rejected": 2}
    assert s["attack_filtered"] == 0
    bots_conserved(s)
    assert ts["t_s"].tolist() == [1.0, 2.0]
    assert ts["attack_attempts"].tolist() == [3, 0]
    assert ts["attack_admitted"].tolist() == [1, 0]
    assert ts["attempts"].tolist() == [2, 1]
    assert ts["arrivals"].tolist() == [1, 0]
    assert ts["attack_gbps"].tolist() == [0.0, 0.0]


def test_the_batched_join_kernel_counts_the_same_bots_on_that_room() -> None:
    """The same room through the batched engine's join pipeline (fixed arrival times, ``akind``):
    the same counters, tick by tick (no draw but the nanosecond services and sessions)."""
    from sim.kernels import pipeline
    from sim.model.fleet import EdgeFleet
    from sim.model.joins import JoinPipeline
    from sim.model.metrics import COUNTERS

    cfg = typed_config([*TINY, *BUCKET])
    ref = simulate(cfg, arrivals=[0.2], bots=[0.1, 0.3]).timeseries
    fleet = EdgeFleet(cfg.platform)
    joins = JoinPipeline(
        fleet, cfg.admission, cfg.client, cfg.scenario.session_mean_s, streams.states(0)
    )
    joins.fp[pipeline.F_BOT_RETRY_S] = cfg.attack.bot_retry_s
    joins.fp[pipeline.F_BOT_MAX_ATTEMPTS] = cfg.attack.bot_max_attempts
    rows = []
    for t_end, arrivals, kinds in ((1.0, [0.1, 0.2, 0.3], [1, 0, 1]), (2.0, [], [])):
        counts = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)
        joins.step(t_end, np.array(arrivals), counts, np.array(kinds, dtype=np.int8))
        rows.append(counts)
    for name, col in COUNTERS.items():
        assert [int(r[col]) for r in rows] == ref[name].tolist(), name


GATES = [
    "admission=none",
    "client=constant",
    "client.delay_s=0.5",
    "client.max_attempts=2",
    *FLOOD_AT_0,
    # 2 Gb/s on the one node's 1 Gb/s of ingress: half the attempts are lost
    "attack.volumetric=[{t_s: 0, gbps: 2}, {t_s: 10, gbps: 2}]",
    "attack.target=ingress",
    "attack.detect_delay_s=2",  # from the tick [2, 3) on: half the flood, so no loss; filters
    "attack.efficacy=0.5",
    "attack.false_positive=0.25",
    "attack.bot_retry_s=1.5",
    "attack.bot_max_attempts=2",
]


def test_the_gates_draw_the_loss_then_the_filter_and_change_at_tick_boundaries() -> None:
    """Before 2 s every attempt draws one uniform of ``attack`` against the loss 0.5 (no filter);
    from the tick that starts at 2.0 (an attempt at 2.0 belongs to it) none is lost and each
    draws against its filter, 0.5 for a bot and 0.25 for a person."""
    u = Stream.named(0, "attack")
    draws = [u.uniform() for _ in range(11)]
    # the uniforms of seed 0, in attempt order, and what they decide (u < p: lost / filtered)
    expected = [0.6463, 0.3744, 0.3238, 0.1413, 0.788, 0.3789, 0.9694, 0.3712, 0.2431, 0.4578]
    assert [round(x, 4) for x in draws[:10]] == expected
    result, log = run_log(GATES, [0.1, 0.3, 2.0, 3.0], [0.2, 2.5, 2.6])
    assert_log(
        log,
        [
            (0.1, 0, "arrive"),  # 0.6463 >= 0.5
            (0.1, 0, "attempt 1"),
            *joined(0.1, 0),
            (0.2, 1, "bot"),  # 0.3744 < 0.5: lost
            (0.2, 1, "attempt 1"),
            (0.2, 1, "rejected flooded"),
            (0.3, 2, "arrive"),  # 0.3238: lost
            (0.3, 2, "attempt 1"),
            (0.3, 2, "rejected flooded"),
            (0.8, 2, "attempt 2"),  # 0.1413: lost, out of attempts
            (0.8, 2, "rejected flooded"),
            (0.8, 2, "abandon"),
            (1.7, 1, "attempt 2"),  # 0.788: through
            *served(1.7, 1),
            (2.0, 3, "arrive"),  # mitigation: 0.3789 >= 0.25
            (2.0, 3, "attempt 1"),
            *joined(2.0, 3),
            (2.5, 4, "bot"),  # 0.9694 >= 0.5
            (2.5, 4, "attempt 1"),
            *served(2.5, 4),
            (2.6, 5, "bot"),  # 0.3712 < 0.5: filtered
            (2.6, 5, "attempt 1"),
            (2.6, 5, "rejected filtered"),
            (3.0, 6, "arrive"),  # 0.2431 < 0.25: a false positive
            (3.0, 6, "attempt 1"),
            (3.0, 6, "rejected filtered"),
            (3.5, 6, "attempt 2"),  # 0.4578 >= 0.25
            *joined(3.5, 6),
            (4.1, 5, "attempt 2"),  # draws[10] >= 0.5
            *served(4.1, 5),
        ],
    )
    assert draws[10] >= 0.5
    s, ts = result.summary, result.timeseries
    assert (s["arrivals"], s["attempts"], s["joined"], s["abandoned"]) == (4, 6, 3, 1)
    assert s["rejected"]["flooded"] == 2 and s["rejected"]["filtered"] == 1
    conserved(s)
    assert (s["attack_attempts"], s["attack_served"]) == (5, 3)
    assert (s["attack_rejected"], s["attack_filtered"]) == (1, 1)  # flooded counts as rejected
    bots_conserved(s)
    # the run lasts as long as the flood (to 10 s); the flood of a tick is that of its start
    assert ts["t_s"].tolist() == [float(k) for k in range(1, 11)]
    assert ts["attack_gbps"].tolist() == [2.0, 2.0] + [1.0] * 8
    assert ts["attack_attempts"][:5].tolist() == [1, 1, 2, 0, 1]
    assert ts["attack_admitted"][:5].tolist() == [0, 1, 1, 0, 1]
    assert ts["rejected_flooded"][:4].tolist() == [2, 0, 0, 0]
    assert ts["rejected_filtered"][:4].tolist() == [0, 0, 0, 1]


def test_a_bot_holds_its_seat_only_while_it_is_served() -> None:
    """A node of one connection: the bot served from 0.1 for the first service draw holds it
    (a person placed in the meantime finds it ``full``), then hands it back and never joins."""
    service = Stream.named(0, "service").exponential(1.0)  # the bot's, the first draw
    end = 0.1 + service
    result, log = run_log(
        [
            "admission=none",
            "client=none",
            "platform.connections_per_node=1",
            "platform.join_service_mean_s=1",
            *FLOOD_AT_0,
            "attack.detect_delay_s=null",
        ],
        [0.1 + service / 2, end + 0.01],
        [0.1],
    )
    draws = Stream.named(0, "service")
    draws.uniform()  # the bot's
    draws.uniform()  # person 1's placement draws one, too, before the node refuses them
    join = end + 0.01 + draws.exponential(1.0)
    assert_log(
        log,
        [
            (0.1, 0, "bot"),
            (0.1, 0, "attempt 1"),
            (0.1, 0, "node 0"),
            (0.1, 0, "served"),
            (0.1 + service / 2, 1, "arrive"),
            (0.1 + service / 2, 1, "attempt 1"),
            (0.1 + service / 2, 1, "node 0"),
            (0.1 + service / 2, 1, "rejected full"),
            (0.1 + service / 2, 1, "abandon"),
            (end, 0, "done"),
            (end + 0.01, 2, "arrive"),
            (end + 0.01, 2, "attempt 1"),
            (end + 0.01, 2, "node 0"),
            (end + 0.01, 2, "served"),
            (join, 2, "joined"),
            (join, 2, "left"),
        ],
    )
    s = result.summary
    assert (s["joined"], s["abandoned"], s["rejected"]["full"], s["peak_concurrent"]) == (
        1,
        1,
        1,
        1,
    )
    assert (s["attack_attempts"], s["attack_served"]) == (1, 1)


# --------------------------------------------------------------------------- sanity

SMALL = [  # ~2,000 people on 2 nodes that join 24/s at most, against ~20 bots/s from 60 s to 660 s
    "engine.kind=reference",
    "scenario=bench_surge",
    "scenario.expected_arrivals=2000",
    "platform.nodes=2",
]
BOTS = [
    "attack=join_flood",  # 3 attempts each, 1 s apart; 90% filtered, 1% of people from 180 s
    "attack.join_flood=[{t_s: 60, rate_per_s: 0}, {t_s: 90, rate_per_s: 20},"
    " {t_s: 630, rate_per_s: 20}, {t_s: 660, rate_per_s: 0}]",
]
VOLUME = ["attack.volumetric=[{t_s: 100, gbps: 0}, {t_s: 150, gbps: 3}, {t_s: 400, gbps: 3}]"]
ADMISSIONS = {
    "token_bucket": ["admission=token_bucket", "admission.rate_per_s=30", "admission.burst=30"],
    "waiting_room": ["admission=waiting_room", "admission.release_per_s=30"],
    "credit": ["admission=credit"],
}


@pytest.mark.parametrize("policy", list(ADMISSIONS))
def test_every_bot_attempt_is_filtered_rejected_or_served(policy: str) -> None:
    """A join flood and a volumetric flood (1.5 Gb/s per node on 1 Gb/s of ingress, 100-400 s)
    against three admission policies: the counts add up and the people's stay theirs."""
    result = simulate(typed_config([*SMALL, *BOTS, *VOLUME, *ADMISSIONS[policy]]))
    s, ts = result.summary, result.timeseries
    assert not s["engine_failed"]
    bots_conserved(s)
    conserved(s)  # the organic counters hold people only
    assert s["organic_attempts"] == s["attempts"]
    assert s["attack_filtered"] > 0 and s["attack_served"] > 0 and s["attack_rejected"] > 0
    assert ts["attack_admitted"].sum() >= s["attack_served"]
    assert s["rejected"]["flooded"] > 0 and s["rejected"]["filtered"] > 0
    for col in ("attack_attempts", "attack_filtered", "attack_served", "attack_rejected"):
        assert ts[col].sum() == s[col], col
    # ~20/s for ~9.5 min, at most 3 attempts each
    assert 0.8 * 11_400 < s["attack_attempts"] < 3 * 1.2 * 11_400
    for col in ("concurrent", "waiting", "connections", "retries_pending", "held", "trying"):
        assert ts[col].min() >= 0 and ts[col][-1] == 0, col
    # the flood reaches 3 Gb/s at 150 s; mitigation (from 60 + 120 s) leaves 5% of it
    assert ts["attack_gbps"].max() == 3.0 and ts["attack_gbps"][180] == pytest.approx(0.3)


ORGANIC = (
    "arrivals", "attempts", "joined", "abandoned", "rejected", "join_latency_p50_s",
    "join_latency_p99_s", "peak_concurrent", "peak_time_s", "retries_denied", "reconnects",
)  # fmt: skip
ORGANIC_COLUMNS = (
    "arrivals", "attempts", "admitted", "joining", "abandoned", "joined", "left", "concurrent",
    "trying", "rejected_bucket", "rejected_queue", "rejected_timeout", "rejected_full",
)  # fmt: skip


@pytest.mark.parametrize("kind", ["reference", "batched"])
def test_bots_filtered_at_the_gate_leave_the_peoples_run_unchanged(kind: str) -> None:
    """Mitigation from the flood's start, filtering every bot and no person: the bots draw only
    from ``attack``, so the people's run is the run without an attack, number for number."""
    calm = typed_config([*SMALL, f"engine.kind={kind}"])
    flood = typed_config(
        [*SMALL, *BOTS, f"engine.kind={kind}", "attack.detect_delay_s=0", "attack.efficacy=1",
         "attack.false_positive=0"]
    )  # fmt: skip
    a, b = simulate_any(calm), simulate_any(flood)
    assert b.summary["attack_filtered"] == b.summary["attack_attempts"] > 10_000
    for key in ORGANIC:
        assert a.summary[key] == b.summary[key], key
    for col in ORGANIC_COLUMNS:
        n = min(a.timeseries[col].size, b.timeseries[col].size)
        np.testing.assert_array_equal(a.timeseries[col][:n], b.timeseries[col][:n], err_msg=col)


@pytest.mark.parametrize("target", ["ingress", "egress"])
def test_a_volumetric_flood_reaches_the_tiers_of_the_fanout(target: str) -> None:
    """40 Gb/s over 2 nodes: at ingress (10 Gb/s each) half the join attempts and segment
    requests are lost; at egress (1 Gb/s each) no attempt is, and no egress is left for audio."""
    over = [*SMALL, "attack=volumetric", "attack.detect_delay_s=null",
            "platform.fanout.enabled=true", f"attack.target={target}"]  # fmt: skip
    if target == "ingress":
        over.append("platform.fanout.edge.ingress_gbps=10")
    s = simulate(typed_config(over)).summary
    if target == "ingress":
        assert s["rejected"]["flooded"] > 0 and s["audio_delivered_ratio"] < 0.9
    else:
        assert s["rejected"]["flooded"] == 0 and s["audio_delivered_ratio"] < 0.5
    assert s["stall_dropped"] > 0 and s["attack_attempts"] == 0


def test_same_summary_keys_and_timeseries_columns_as_the_batched_engine_under_attack() -> None:
    cfg = typed_config([*SMALL, *BOTS, *VOLUME, "scenario.expected_arrivals=200",
                        "platform.fanout.enabled=true"])  # fmt: skip
    ref = simulate_any(cfg)  # through sim.engine.simulate, as every run: the scenario clock
    batched = simulate_any(
        dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, kind="batched"))
    )
    assert list(ref.summary) == list(batched.summary)
    assert list(ref.timeseries) == list(batched.timeseries)
    for col, values in ref.timeseries.items():
        assert values.dtype == batched.timeseries[col].dtype, col
    np.testing.assert_array_equal(
        ref.timeseries["attack_gbps"][:100], batched.timeseries["attack_gbps"][:100]
    )


# --------------------------------------------------------------------------- agreement

ALPHA = 0.001


def observables(result: RunResult) -> dict[str, float]:
    """What the engines must agree on, per run: the people's outcomes and the bots'."""
    s = result.summary
    arrivals, attempts = s["arrivals"], s["attempts"]
    bot_attempts = max(1, s["attack_attempts"])
    out = {
        "joined_share": s["joined"] / arrivals,
        "abandoned_share": s["abandoned"] / arrivals,
        "attempts_per_arrival": attempts / arrivals,
        "join_latency_p50_s": s["join_latency_p50_s"],
        "join_latency_p99_s": s["join_latency_p99_s"],
        "peak_concurrent": float(s["peak_concurrent"]),
        "attack_attempts": float(s["attack_attempts"]),
        "attack_admitted_share": float(result.timeseries["attack_admitted"].sum()) / bot_attempts,
        "attack_filtered_share": s["attack_filtered"] / bot_attempts,
        "attack_served_share": s["attack_served"] / bot_attempts,
        "attack_rejected_share": s["attack_rejected"] / bot_attempts,
        "audio_delivered_ratio": s["audio_delivered_ratio"],
        "stall_s_per_listener_min": s["stall_s_per_listener_min"],
        "stall_dropped_per_arrival": s["stall_dropped"] / arrivals,
        "reconnects_per_arrival": s["reconnects"] / arrivals,
    }
    out |= {f"rejected_{r}_share": n / attempts for r, n in s["rejected"].items()}
    return {k: v for k, v in out.items() if not math.isnan(v)}


def replicate(cfg: Config, kind: str, seeds: range) -> dict[str, np.ndarray]:
    runs = []
    for seed in seeds:
        engine = dataclasses.replace(cfg.engine, kind=kind)
        runs.append(observables(simulate_any(dataclasses.replace(cfg, seed=seed, engine=engine))))
    return {k: np.array([r[k] for r in runs]) for k in runs[0]}


FLOOD_40 = [  # twice BOTS' rate
    "attack=join_flood",
    "attack.join_flood=[{t_s: 60, rate_per_s: 0}, {t_s: 90, rate_per_s: 40},"
    " {t_s: 630, rate_per_s: 40}, {t_s: 660, rate_per_s: 0}]",
]
AGREEMENT = {
    # ~2,000 people and ~11,400 bots (20/s, 60-660 s, 3 attempts 1 s apart) on 2 nodes that join
    # 24/s at most behind a bucket of 30/s; 90% of the bots and 1% of the people filtered from
    # 180 s: the bots take tokens and workers, people are refused and time out.
    # Detects 2% in joined, 12% in attempts, 2-5% in the bots' shares, 20% in bucket
    "join_flood": (
        [*SMALL, *BOTS, "admission.rate_per_s=30", "admission.burst=30"],
        ("attack_filtered_share", "attack_served_share", "attack_rejected_share",
         "rejected_bucket_share", "rejected_timeout_share", "rejected_filtered_share"),
    ),
    # the same bots held in a waiting room of 20/s for 15 s at most (their deadline is infinite),
    # hashed onto the nodes (a key each); mitigation from 300 s.
    # Detects 2% in joined, 8% in attempts, 2-3% in the bots' shares, 10% in hold timeouts
    "join_flood_waiting_room": (
        [*SMALL, *BOTS, "admission=waiting_room", "admission.release_per_s=20",
         "admission.max_wait_s=15", "admission.retry_after_s=2", "attack.detect_delay_s=240",
         "platform.placement=consistent_hash"],
        ("attack_filtered_share", "attack_served_share", "rejected_hold_timeout_share"),
    ),
    # 40 bots/s, never mitigated, against AIMD, which observes their queueing delays and sheds
    # four attempts in five. Detects 6% in joined, 4% in attempts, 2% in shed, 7% in served bots
    "join_flood_aimd": (
        [*SMALL, *FLOOD_40, "attack.detect_delay_s=null", "admission=aimd",
         "client=decorrelated_jitter", "client.patience=exponential"],
        ("attack_served_share", "rejected_shed_share", "rejected_timeout_share"),
    ),
    # a ramp to 40 Gb/s at 120 s over 2 nodes of 16 Gb/s of ingress each: 20% of the attempts
    # and of the segment requests lost, until 95% of the flood is scrubbed at 360 s; listeners
    # stall and reconnect through the flooded join path.
    # Detects 0.4% in the delivered ratio, 5% in stall time, 13% in drops, 10% in flooded
    "volumetric": (
        [*SMALL, "attack=volumetric", "platform.fanout.enabled=true",
         "platform.fanout.edge.ingress_gbps=16"],
        ("rejected_flooded_share", "stall_dropped_per_arrival"),
    ),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", list(AGREEMENT))
def test_batched_and_reference_agree_under_attack(name: str) -> None:
    overrides, occurs = AGREEMENT[name]
    cfg = typed_config(overrides)
    r = 10
    batched = replicate(cfg, "batched", range(r))
    reference = replicate(cfg, "reference", range(10_000, 10_000 + r))
    rows = agreement(batched, reference, ALPHA)
    report = format_rows(name, r, rows)
    print(report)
    assert all(row["ok"] for row in rows), report
    for metric in occurs:  # the scenario still exercises what it is there for
        assert batched[metric].mean() > 0 and reference[metric].mean() > 0, metric
