"""Property-based tests (issue 23, item 1): random configurations, valid and invalid.

Valid configs are drawn at a small scale (at most a few thousand arrivals, short horizons) over
every admission and client policy of ``conf/``, the placements, the fleet, its queues, timeouts and
crash thresholds, the autoscaler and a small join flood, on the batched engine and, for a few tiny
audiences, the reference engine. Each runs to the end and must conserve its counts, keep its
invariants and report a summary that agrees with its time series; without components acting
between ticks, a run's counts must not depend on the tick length. Invalid configs (one value set
to something out of its range, NaN, a wrong type or an unknown name) must be refused before a run,
with a message naming the key.

Hypothesis is derandomized (``derandomize=True``, no example database) so that CI sees the same
examples every time; every property has a bounded number of examples.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.config import Config, check
from sim.engine import RunResult, simulate
from sim.hydra_app import check_overrides, conf_dir
from sim.kernels.reasons import REASONS
from sim.model.fleet import EdgeFleet
from sim.model.operator import room_for
from sim.policies import PLACEMENT
from tests.conftest import typed_config
from tests.test_cli import spacesim


def _settings(n: int) -> settings:
    """``n`` examples, the same ones on every run, no per-example deadline."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


ADMISSIONS = _options("admission")
CLIENTS = _options("client")
PLACEMENTS = sorted(PLACEMENT)
STATES = ("concurrent", "waiting", "connections", "nodes_up", "retries_pending", "held", "trying")
COUNTS = (
    "arrivals",
    "attempts",
    "admitted",
    "joining",
    "joined",
    "abandoned",
    "left",
    "retries_denied",
    "reconnects",
    "dropped",
)
ATTACK = ("attack_attempts", "attack_admitted", "attack_rejected", "attack_filtered")


def _num(x: float) -> str:
    """A float as an override value (``repr`` round-trips; YAML reads it back as that float)."""
    return repr(float(x))


def _points(points: list[tuple[float, float]]) -> str:
    return "[" + ", ".join(f"{{t_s: {t:g}, rate_per_s: {r:g}}}" for t, r in points) + "]"


# ----------------------------------------------------------------------------------------------
# Valid configurations


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 3))


@st.composite
def scenarios(draw: st.DrawFn, most: int) -> list[str]:
    """A short surge: one of the shipped shapes or a random profile of 2-4 points."""
    kind = draw(st.sampled_from(["surge", "steady", "random"]))
    out = [f"scenario.expected_arrivals={draw(st.integers(20, most))}"]
    if kind == "steady":
        out = ["scenario=steady", *out]
    elif kind == "random":
        n = draw(st.integers(2, 4))
        gaps = draw(st.lists(st.integers(1, 120), min_size=n - 1, max_size=n - 1))
        times = np.cumsum([0, *gaps]).tolist()
        rates = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
        rates[draw(st.integers(0, n - 1))] += 1  # some arrivals to scale
        out.append(f"scenario.profile={_points(list(zip(times, rates, strict=True)))}")
    out.append(f"scenario.session_mean_s={draw(_floats(5, 300))}")
    return out


@st.composite
def platforms(draw: st.DrawFn) -> list[str]:
    placement = draw(st.sampled_from(PLACEMENTS))
    out = [
        f"platform.nodes={draw(st.integers(1, 6))}",
        f"platform.join_workers={draw(st.integers(1, 4))}",
        f"platform.join_service_mean_s={draw(_floats(0.01, 0.5))}",
        f"platform.join_queue_cap={draw(st.integers(0, 60))}",
        f"platform.join_timeout_s={draw(_floats(0.05, 5))}",
        f"platform.connections_per_node={draw(st.integers(1, 400))}",
        f"platform.placement={placement}",
        f"platform.timeout_wastes_work={draw(st.booleans())}",
    ]
    if placement == "power_of_d":
        out.append(f"platform.placement_choices={draw(st.integers(2, 5))}")
    if placement == "consistent_hash":
        out.append(f"platform.placement_load_bound={draw(_floats(1, 2))}")
        out.append(f"platform.placement_vnodes={draw(st.integers(1, 64))}")
    if draw(st.booleans()):
        out.append(f"platform.auth_workers={draw(st.integers(1, 4))}")
        out.append(f"platform.auth_queue_cap={draw(st.integers(0, 50))}")
        out.append(f"platform.auth_service_mean_s={draw(_floats(0.001, 0.1))}")
    if draw(st.booleans()):  # nodes crash when overloaded, and restart
        out += [
            f"platform.crash_after_s={draw(_floats(1, 30))}",
            f"platform.cpu_cores={draw(_floats(1, 8))}",
            f"platform.cpu_per_listener={draw(_floats(0, 0.1))}",
            f"platform.restart_s={draw(_floats(0, 60))}",
            f"platform.warmup_s={draw(_floats(0, 30))}",
        ]
    return out


@st.composite
def admissions(draw: st.DrawFn) -> list[str]:
    name = draw(st.sampled_from(ADMISSIONS))
    out = [f"admission={name}"]
    if name == "token_bucket":
        out += [
            f"admission.rate_per_s={draw(_floats(0, 200))}",
            f"admission.burst={draw(_floats(1, 300))}",
        ]
    elif name == "concurrency_cap":
        out += [
            f"admission.max_listeners={draw(st.integers(0, 2000))}",
            f"admission.retry_after_s={draw(_floats(0, 10))}",
        ]
        if draw(st.booleans()):
            out.append(f"admission.max_joins_in_flight={draw(st.integers(0, 100))}")
    elif name == "waiting_room":
        out += [
            f"admission.release_per_s={draw(_floats(1, 100))}",
            f"admission.max_wait_s={draw(_floats(0, 120))}",
            f"admission.capacity={draw(st.integers(0, 5000))}",
            f"admission.retry_after_s={draw(_floats(0, 30))}",
        ]
    elif name == "aimd":
        out.append(f"admission.initial_rate_per_s={draw(_floats(5, 200))}")
    elif name == "credit":
        out.append(f"admission.initial_credits={draw(_floats(4, 200))}")  # min_credits: 4
    return out


@st.composite
def clients(draw: st.DrawFn) -> list[str]:
    name = draw(st.sampled_from(CLIENTS))
    out = [f"client={name}"]
    if name != "none":
        out.append(f"client.max_attempts={draw(st.integers(1, 8))}")
    if name in ("full_jitter", "exponential", "decorrelated_jitter", "retry_budget"):
        base = draw(_floats(0.05, 5))
        out += [f"client.base_s={base}", f"client.cap_s={base + draw(_floats(0, 30))}"]
    if name == "constant":
        out.append(f"client.delay_s={draw(_floats(0, 5))}")
    patience = draw(st.sampled_from(["none", "fixed", "exponential", "lognormal"]))
    out += [f"client.patience={patience}", f"client.patience_mean_s={draw(_floats(1, 120))}"]
    out.append(f"client.reconnect_mean_s={draw(_floats(0, 10))}")
    return out


@st.composite
def extras(draw: st.DrawFn, attack: bool = True) -> list[str]:
    """The autoscaler, a small join flood, the tick and the seed."""
    out = [f"seed={draw(st.integers(0, 10_000))}"]
    if draw(st.booleans()):
        out += [
            "autoscaler=target",
            f"autoscaler.max_nodes={draw(st.integers(1, 10))}",
            f"autoscaler.max_step={draw(st.integers(1, 4))}",
            f"autoscaler.interval_s={draw(_floats(1, 20))}",
            f"autoscaler.provisioning_delay_s={draw(_floats(0, 60))}",
            f"autoscaler.cooldown_s={draw(_floats(0, 60))}",
            f"autoscaler.target_utilisation={draw(_floats(0.1, 1))}",
        ]
    if attack and draw(st.booleans()):
        start = draw(st.integers(0, 100))
        rate = draw(st.integers(1, 30))
        flood = [(start, 0), (start + 10, rate), (start + 40, 0)]
        out += [
            "attack=join_flood",
            f"attack.join_flood={_points(flood)}",
            f"attack.bot_max_attempts={draw(st.integers(1, 3))}",
            f"attack.bot_retry_s={draw(_floats(0.1, 5))}",
        ]
        delay = draw(st.none() | _floats(0, 60))
        out.append(f"attack.detect_delay_s={'null' if delay is None else delay}")
    return out


@st.composite
def valid_configs(draw: st.DrawFn, engine: str, most: int) -> list[str]:
    tick = draw(st.sampled_from([0.5, 1.0, 2.5])) if engine == "batched" else 1.0
    return [
        *draw(scenarios(most)),
        *draw(platforms()),
        *draw(admissions()),
        *draw(clients()),
        *draw(extras()),
        f"engine.kind={engine}",
        f"engine.tick_s={tick}",
        "engine.progress=false",
    ]


@contextmanager
def _node_caps_checked() -> Iterator[list[str]]:
    """Check every node of the batched engine's fleet whenever it is observed (each tick end):
    connections held in [0, connections_per_node], waiting attempts in [0, join_queue_cap]."""
    seen: list[str] = []
    original = EdgeFleet.snapshot

    def snapshot(self: EdgeFleet, t: float) -> tuple[int, int]:
        out = original(self, t)
        cap, queue = self.cfg.connections_per_node, self.cfg.join_queue_cap
        if not (np.all(self.cn >= 0) and np.all(self.cn <= cap)):
            seen.append(f"t={t}: connections per node {self.cn.tolist()} outside [0, {cap}]")
        if not (np.all(self.wn >= 0) and np.all(self.wn <= queue)):
            seen.append(f"t={t}: waiting per node {self.wn.tolist()} outside [0, {queue}]")
        if out[1] != int(self.cn.sum()):
            seen.append(f"t={t}: fleet holds {out[1]} connections, its nodes {self.cn.sum()}")
        return out

    with mock.patch.object(EdgeFleet, "snapshot", snapshot):
        yield seen


def _check_run(cfg: Config, result: RunResult) -> None:
    """The properties every finished run must have (see the module docstring)."""
    s, ts = result.summary, result.timeseries
    rejected = sum(s["rejected"].values())
    p = cfg.platform
    fleet = room_for(cfg.scenario.actions, cfg.autoscaler, p.nodes)  # the most nodes it may hold
    assert not s["engine_failed"], s["failure_reason"]

    # the summary is the sum of the time series
    for key, col in [
        ("arrivals", "arrivals"),
        ("attempts", "attempts"),
        ("joined", "joining"),
        ("abandoned", "abandoned"),
        ("reconnects", "reconnects"),
        ("dropped", "dropped"),
        ("retries_denied", "retries_denied"),
        *((k, k) for k in ATTACK),
    ]:
        if key in s:
            assert s[key] == ts[col].sum(), key
    for reason in REASONS:
        assert s["rejected"][reason] == ts[f"rejected_{reason}"].sum(), reason
    assert s["ticks"] == ts["t_s"].size

    # conservation: every person who came joined or gave up; every attempt ended exactly once
    came = s["arrivals"] + s["reconnects"]
    assert came == s["joined"] + s["abandoned"]
    assert s["attempts"] == s["joined"] + rejected
    assert s["attempts"] >= came  # everybody who came made a first attempt
    assert ts["admitted"].sum() >= s["joined"]  # a join passed admission
    assert s["retries_denied"] <= s["abandoned"]
    assert ts["joined"].sum() == ts["joining"].sum()  # every join that started completed
    assert ts["left"].sum() == ts["joined"].sum()  # and ended (a drop counts as leaving)
    assert ts["dropped"].sum() <= ts["left"].sum()
    # the listeners at each tick end: those who joined less those who left
    assert np.array_equal(ts["concurrent"], np.cumsum(ts["joined"] - ts["left"]))
    assert s["reconnects"] <= s["dropped"]  # only dropped listeners reconnect
    if cfg.attack.join_flood:
        a = {k: int(ts[k].sum()) for k in (*ATTACK, "attack_served")}
        assert (
            a["attack_attempts"] == a["attack_rejected"] + a["attack_filtered"] + a["attack_served"]
        ), a
        assert a["attack_admitted"] >= a["attack_served"], a
    else:
        assert all(ts[k].sum() == 0 for k in (*ATTACK, "attack_served"))

    # the time series: a tick grid, no negative state, nothing beyond the fleet's capacity
    t = ts["t_s"]
    assert np.allclose(np.diff(t), cfg.engine.tick_s)
    for col in (*STATES, *COUNTS, *(f"rejected_{r}" for r in REASONS)):
        assert ts[col].min() >= 0, f"{col} < 0: {ts[col].min()}"
    assert ts["nodes_up"].max() <= fleet
    assert ts["waiting"].max() <= fleet * p.join_queue_cap
    assert ts["connections"].max() <= fleet * p.connections_per_node
    assert np.all(ts["concurrent"] <= ts["connections"])  # every listener holds a connection
    assert ts["concurrent"].max() <= s["peak_concurrent"] <= fleet * p.connections_per_node
    if s["joined"]:
        assert t[0] - cfg.engine.tick_s <= s["peak_time_s"] <= t[-1]
    cap = getattr(cfg.admission, "max_listeners", None)
    if cap is not None:  # admitted only while fewer are connected, but some may be on the way in
        on_the_way = fleet * (p.join_workers + p.join_queue_cap)
        if p.auth_workers is not None:
            on_the_way += p.auth_workers + p.auth_queue_cap
        assert s["peak_concurrent"] <= cap + on_the_way
    # trying: who came and has neither joined nor given up, derived from the counts
    trying = np.cumsum(ts["arrivals"] + ts["reconnects"] - ts["joining"] - ts["abandoned"])
    assert np.array_equal(ts["trying"], trying)

    # the end: nothing left anywhere
    for col in ("concurrent", "waiting", "connections", "retries_pending", "held", "trying"):
        assert ts[col][-1] == 0, col

    # the latency quantiles and the criterion's shares
    p50, p99 = s["join_latency_p50_s"], s["join_latency_p99_s"]
    if s["joined"]:
        assert 0 <= p50 <= p99
    else:
        assert math.isnan(p50) and math.isnan(p99)
    if came:
        assert s["retry_amplification"] == s["attempts"] / came
        assert s["abandoned_share"] == s["abandoned"] / came


def _run_and_check(overrides: list[str]) -> RunResult:
    cfg = typed_config(overrides)
    with _node_caps_checked() as violations:
        result = simulate(cfg)
    assert not violations, violations[:5]
    _check_run(cfg, result)
    return result


@_settings(28)
@given(valid_configs("batched", most=3000))
def test_random_valid_configs_run_to_the_end_and_conserve(overrides: list[str]) -> None:
    _run_and_check(overrides)


@_settings(5)
@given(valid_configs("reference", most=150))
def test_random_valid_configs_on_the_reference_engine(overrides: list[str]) -> None:
    _run_and_check(overrides)


# what a run reports that depends on where the tick boundaries fall (tests/test_engine.py)
TICKED = {"wall_s", "ticks", "sim_end_s", "failure_time_s", "time_to_stable_s"}
TICKED |= {"stability_lost_s", "goodput_joins_per_s", "metastable_since_s", "start_delay_s"}
TICKED |= {"room_end_s", "failed", "failure_reason", "failure_criterion", "metastable"}


@st.composite
def tickless_configs(draw: st.DrawFn) -> list[str]:
    """Valid configs with no component acting between ticks: no crash, autoscaler or attack."""
    platform = [o for o in draw(platforms()) if not o.startswith("platform.crash_after_s")]
    return [
        *draw(scenarios(2000)),
        *platform,
        *draw(admissions()),
        *draw(clients()),
        f"seed={draw(st.integers(0, 10_000))}",
        "engine.progress=false",
    ]


@_settings(6)
@given(tickless_configs(), st.sampled_from([0.25, 0.5, 2.5, 7.0]))
def test_without_between_tick_components_the_tick_does_not_matter(
    overrides: list[str], tick_s: float
) -> None:
    """Every attempt is handled at its own timestamp: the counts and the exact peak are the same
    whatever the tick (README), and both runs keep the properties above."""
    cfg = typed_config(overrides)
    other = copy.deepcopy(cfg)
    other.engine.tick_s = tick_s
    a, b = simulate(cfg), simulate(other)
    _check_run(cfg, a)
    _check_run(other, b)

    def same(s: dict[str, Any]) -> dict[str, Any]:
        return {k: "nan" if v != v else v for k, v in s.items() if k not in TICKED}

    assert same(a.summary) == same(b.summary)


# ----------------------------------------------------------------------------------------------
# Invalid configurations


BASES = (  # the options whose fields the bad values below go into ("default": none)
    "default",
    *(f"admission={a}" for a in ADMISSIONS),
    "client=decorrelated_jitter",
    "client=constant",
    "autoscaler=target",
    "attack=join_flood",
)


@functools.cache
def _base(name: str) -> Config:
    """The typed config of one option (composed once)."""
    return typed_config([] if name == "default" else [name])


NAN = math.nan
# what each kind of field refuses: (strategy of bad values); NaN is refused by every one
_INT1 = st.integers(-1000, 0)  # an integer >= 1
_INT0 = st.integers(-1000, -1)  # an integer >= 0
_POS = st.floats(-1e6, 0) | st.just(NAN) | st.just(-math.inf)  # a number > 0
_NONNEG = st.floats(-1e6, -1e-9) | st.just(NAN) | st.just(-math.inf)  # a number >= 0
_SHARE0 = st.floats(1 + 1e-9, 1e3) | st.floats(-1e3, 0) | st.just(NAN)  # a share in (0, 1]
_SHARE = st.floats(1 + 1e-9, 1e3) | st.floats(-1e3, -1e-9) | st.just(NAN)  # in [0, 1]
# a name no option has; not one the override grammar reads as a bool, null or float
_LITERALS = {"true", "false", "null", "nan", "inf"}
_BAD_NAME = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
    lambda s: s.lower() not in _LITERALS
)

# (base, dotted key, strategy of bad values): one field of the typed tree, set to a bad value
FIELDS: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("default", "platform.nodes", _INT1),
    ("default", "platform.join_workers", _INT1),
    ("default", "platform.connections_per_node", _INT1),
    ("default", "platform.placement_vnodes", _INT1),
    ("default", "platform.placement_choices", st.integers(-10, 1) | st.integers(65, 10_000)),
    ("default", "platform.placement_load_bound", st.floats(-10, 1 - 1e-9) | st.just(NAN)),
    ("default", "platform.join_queue_cap", _INT0),
    ("default", "platform.auth_workers", _INT1),
    ("default", "platform.auth_queue_cap", _INT0),
    ("default", "platform.join_service_mean_s", _POS),
    ("default", "platform.join_timeout_s", _POS),
    ("default", "platform.auth_service_mean_s", _POS),
    ("default", "platform.auth_timeout_s", _POS),
    ("default", "platform.cpu_cores", _POS),
    ("default", "platform.memory_mb", _POS),
    ("default", "platform.cpu_per_listener", _NONNEG),
    ("default", "platform.memory_per_connection_mb", _NONNEG),
    ("default", "platform.overload_share", _POS | st.floats(10 + 1e-6, 1e6)),
    ("default", "platform.crash_after_s", _POS),
    ("default", "platform.restart_s", _NONNEG),
    ("default", "platform.warmup_s", _NONNEG),
    ("default", "platform.placement", _BAD_NAME.filter(lambda s: s not in PLACEMENT)),
    ("default", "platform.presence.mode", _BAD_NAME),
    ("default", "platform.presence.drop_share_per_s", _SHARE),
    ("default", "platform.fanout.speakers", st.integers(-10, 0) | st.integers(14, 100)),
    ("default", "platform.fanout.edge.hit_ratio", _SHARE),
    ("default", "scenario.session_mean_s", _POS),
    ("default", "scenario.expected_arrivals", _POS),
    ("default", "engine.tick_s", _POS),
    ("default", "engine.max_sim_s", _POS),
    ("default", "engine.kind", _BAD_NAME),
    ("default", "criterion.stable_share", _SHARE0),
    ("default", "criterion.stable_hold_s", _POS),
    ("default", "criterion.deadline_s", _POS),
    ("default", "criterion.max_abandoned_share", st.floats(1, 1e3) | st.floats(-1e3, -1e-9)),
    ("default", "criterion.metastable_goodput_share", _SHARE0),
    ("default", "seed", st.integers(-(2**40), -1) | st.integers(2**63, 2**70)),
    ("default", "client.max_attempts", _INT1),
    ("default", "client.base_s", _POS),
    ("default", "client.patience", _BAD_NAME.filter(lambda s: s not in ("none", "fixed"))),
    ("default", "client.patience_mean_s", _POS),
    ("default", "client.retry_budget", _SHARE),
    ("default", "client.budget_window_s", st.floats(-10, 1 - 1e-9) | st.floats(3600.5, 1e6)),
    ("default", "client.throttle_k", st.floats(-10, 1 - 1e-9) | st.just(NAN)),
    ("default", "client.reconnect_mean_s", _NONNEG),
    ("client=constant", "client.delay_s", _NONNEG),
    ("client=decorrelated_jitter", "client.cap_s", st.floats(-10, 0.5 - 1e-9) | st.just(NAN)),
    ("default", "admission.rate_per_s", _NONNEG),
    ("default", "admission.burst", st.floats(-10, 1 - 1e-9) | st.just(NAN)),
    ("admission=concurrency_cap", "admission.max_listeners", _INT0),
    ("admission=concurrency_cap", "admission.retry_after_s", _NONNEG),
    ("admission=waiting_room", "admission.release_per_s", _POS),
    ("admission=waiting_room", "admission.max_wait_s", _NONNEG),
    ("admission=waiting_room", "admission.capacity", _INT0 | st.integers(10**8 + 1, 10**12)),
    ("admission=aimd", "admission.decrease_factor", st.floats(1, 10) | st.floats(-10, 0)),
    ("admission=aimd", "admission.target_delay_s", _POS),
    ("admission=aimd", "admission.burst_s", _POS),
    ("admission=credit", "admission.beta", _SHARE0),
    ("admission=credit", "admission.min_credits", st.floats(-10, 1 - 1e-9) | st.just(NAN)),
    ("autoscaler=target", "autoscaler.target_utilisation", _SHARE0),
    ("autoscaler=target", "autoscaler.interval_s", _POS),
    ("autoscaler=target", "autoscaler.provisioning_delay_s", _NONNEG),
    ("autoscaler=target", "autoscaler.max_step", _INT1 | st.integers(10**6 + 1, 10**9)),
    ("autoscaler=target", "autoscaler.max_nodes", _INT1),
    ("default", "autoscaler.policy", _BAD_NAME.filter(lambda s: s not in ("none", "target"))),
    ("attack=join_flood", "attack.bot_retry_s", _POS),
    ("attack=join_flood", "attack.bot_max_attempts", _INT1),
    ("attack=join_flood", "attack.detect_delay_s", _NONNEG),
    ("attack=join_flood", "attack.efficacy", _SHARE),
    ("attack=join_flood", "attack.false_positive", _SHARE),
    ("attack=join_flood", "attack.target", _BAD_NAME),
]


def _with(base: Config, key: str, value: Any) -> Config:
    """A copy of ``base`` with the field at the dotted ``key`` set to ``value``."""
    cfg = copy.deepcopy(base)
    *path, last = key.split(".")
    node: Any = cfg
    for part in path:
        node = getattr(node, part)
    setattr(node, last, value)
    return cfg


def test_the_bases_of_the_bad_values_are_valid() -> None:
    for name in BASES:
        assert list(check(_base(name))) == [], name


@_settings(300)
@given(st.sampled_from(FIELDS).flatmap(lambda f: st.tuples(st.just(f), f[2])))
def test_one_bad_value_is_refused_by_check_naming_its_key(case: Any) -> None:
    (base, key, _), value = case
    problems = list(check(_with(_base(base), key, value)))
    assert problems, f"{key} = {value!r} was accepted"
    assert key in [k for k, _, _ in problems], problems
    last = key.rsplit(".", 1)[-1]
    for k, _, allowed in problems:  # nothing else is blamed but what is bounded by the key
        assert k == key or last in allowed, problems
    v = next(v for k, v, _ in problems if k == key)
    assert v is value or (isinstance(v, float) and math.isnan(v) and math.isnan(value))


# through Hydra, as `spacesim run KEY=VALUE` composes them: wrong types and names too
_WRONG_TYPE = st.sampled_from(["abc", "fast", "[1, 2]", "{a: 1}", "true"])
_BAD_INT = st.sampled_from(["2.5", "abc", "nan", "[1]"])
# (overrides before it, key, strategy of the override's value as typed on the command line)
OVERRIDES: list[tuple[tuple[str, ...], str, st.SearchStrategy[str]]] = [
    ((), "platform.nodes", _BAD_INT | _INT1.map(str)),
    ((), "platform.join_workers", _BAD_INT | _INT1.map(str)),
    ((), "platform.join_queue_cap", _BAD_INT | _INT0.map(str)),
    ((), "platform.connections_per_node", _BAD_INT | _INT1.map(str)),
    ((), "platform.join_timeout_s", _WRONG_TYPE | _POS.map(_num)),
    ((), "platform.join_service_mean_s", _WRONG_TYPE | _POS.map(_num)),
    ((), "platform.crash_after_s", _WRONG_TYPE | _POS.map(_num)),
    ((), "platform.timeout_wastes_work", st.sampled_from(["maybe", "abc", "[true]"])),
    ((), "engine.guard", st.sampled_from(["maybe", "abc", "[true]", "2"])),
    ((), "platform.placement", _BAD_NAME.filter(lambda s: s not in PLACEMENT)),
    ((), "engine.tick_s", _WRONG_TYPE | _POS.map(_num)),
    ((), "engine.kind", _BAD_NAME.filter(lambda s: s not in ("batched", "reference"))),
    ((), "scenario.session_mean_s", _WRONG_TYPE | _POS.map(_num)),
    ((), "admission.rate_per_s", _WRONG_TYPE | _NONNEG.map(_num)),
    ((), "client.retry", _BAD_NAME.filter(lambda s: s not in CLIENTS)),
    ((), "client.max_attempts", _BAD_INT | _INT1.map(str)),
    ((), "criterion.stable_share", _WRONG_TYPE | _SHARE0.map(_num)),
    (("admission=waiting_room",), "admission.release_per_s", _WRONG_TYPE | _POS.map(_num)),
    (("autoscaler=target",), "autoscaler.max_nodes", _BAD_INT | _INT1.map(str)),
    (("attack=join_flood",), "attack.efficacy", _WRONG_TYPE | _SHARE.map(_num)),
    ((), "seed", _BAD_INT | st.integers(-(2**40), -1).map(str)),
]


def _named(key: str, problems: list[str]) -> bool:
    """Whether every message names ``key`` (Hydra names a group by its name, as the CLI does)."""
    return bool(problems) and all(key in p for p in problems)


@_settings(10)
@given(st.sampled_from(OVERRIDES).flatmap(lambda o: st.tuples(st.just(o), o[2])))
def test_one_bad_override_is_refused_before_a_run_naming_its_key(case: Any) -> None:
    (before, key, _), value = case
    problems = check_overrides([*before, f"{key}={value}"])
    assert _named(key, problems), problems


@_settings(6)
@given(
    st.sampled_from(["admission", "client", "autoscaler", "attack", "engine", "platform"]),
    _BAD_NAME,
)
def test_an_unknown_group_option_is_refused_naming_the_group(group: str, name: str) -> None:
    if name in _options(group):
        return
    problems = check_overrides([f"{group}={name}"])
    assert _named(group, problems), problems


@_settings(2)
@given(
    st.sampled_from(
        [
            ("platform.nodes", _INT1.map(str)),
            ("platform.join_timeout_s", _POS.map(_num)),
            ("client.retry", _BAD_NAME.filter(lambda s: s not in CLIENTS)),
            ("engine.tick_s", _WRONG_TYPE),
        ]
    ).flatmap(lambda kv: st.tuples(st.just(kv[0]), kv[1]))
)
def test_the_cli_exits_2_naming_the_key_and_runs_nothing(case: tuple[str, str]) -> None:
    import tempfile

    key, value = case
    with tempfile.TemporaryDirectory() as tmp:  # a fresh directory per example
        out = Path(tmp) / "run"
        done = spacesim("run", f"{key}={value}", f"hydra.run.dir={out}", cwd=Path(tmp))
        assert done.returncode == 2, done.stderr[-2000:]
        assert f"{key} = " in done.stderr or f"{key}=" in done.stderr, done.stderr[-2000:]
        assert not out.exists()
