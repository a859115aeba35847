"""The fused join-pipeline kernel against its plain-Python twin, counter for counter.

The kernel is driven the way the engine drives it (``EdgeFleet`` + ``JoinPipeline``, one ``step``
per tick, the named streams of ``sim.streams``), the twin (``tests.twins.pipeline``) is given the
same arrivals and identically seeded generators, and every per-tick counter, every join latency,
the fleet snapshot at each tick end and the concurrency peak must agree exactly, for every
admission, client and placement policy of ``docs/policies.md``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest

from sim.config import PlatformConfig
from sim.kernels import calendar, pipeline, tally
from sim.kernels import placement as k_placement
from sim.model import fleet as fleet_module
from sim.model import joins
from sim.model.fleet import EdgeFleet
from sim.model.joins import JoinPipeline
from sim.model.metrics import COUNTERS
from sim.policies import PLACEMENT, AdmissionConfig, ClientConfig
from sim.policies.admission import (
    Aimd,
    ConcurrencyCap,
    Credit,
    NoAdmission,
    TokenBucket,
    WaitingRoom,
)
from sim.policies.client import (
    ConstantRetry,
    DecorrelatedJitter,
    Exponential,
    FullJitter,
    ImmediateRetry,
    NoRetry,
)
from sim.streams import states
from tests.twins import pipeline as twin
from tests.twins import policies as twin_policies

# A steady trickle of listeners and a burst in the middle that the bucket cannot absorb. The fleet
# has a waiting room of 30 (not 5): with 2 workers of mean 1/6 s, a wait beyond the 2 s timeout
# needs some 24 attempts ahead, so with a room of 5 a timeout practically never happens (see
# ``small_waiting_room`` below: no timeouts). The connection cap (50) leaves room for the burst.
N_BASE, N_BURST = 120, 2880

SMALL_FLEET = PlatformConfig(
    nodes=3,
    join_workers=2,
    join_service_mean_s=1 / 6,
    join_queue_cap=30,
    join_timeout_s=2.0,
    connections_per_node=50,
    placement="power_of_two",
)
SESSION_S = 30.0
BUCKET = TokenBucket(rate_per_s=20.0, burst=200.0)
JITTER = FullJitter(max_attempts=6, base_s=0.5, cap_s=30.0)


@dataclass(frozen=True)
class Case:
    platform: PlatformConfig
    admission: AdmissionConfig
    client: ClientConfig
    session_mean_s: float = SESSION_S
    seed: int = 7
    bot_retry_s: float = 1.0  # the bots of a join flood (``fp[F_BOT_*]``)
    bot_max_attempts: int = 1


BASE = Case(SMALL_FLEET, BUCKET, JITTER)
CASES = {
    "power_of_two+bucket+jitter": BASE,
    "random": replace(BASE, platform=replace(SMALL_FLEET, placement="random"), seed=11),
    "least_loaded": replace(BASE, platform=replace(SMALL_FLEET, placement="least_loaded"), seed=12),
    "no_retry": replace(BASE, client=NoRetry(), seed=13),
    "constant_retry": replace(BASE, client=ConstantRetry(max_attempts=4, delay_s=0.25), seed=14),
    "immediate_retry": replace(BASE, client=ConstantRetry(max_attempts=3, delay_s=0.0), seed=15),
    "small_waiting_room": replace(
        BASE,
        platform=replace(SMALL_FLEET, join_queue_cap=5, connections_per_node=40),
        seed=17,
    ),
    # no admission control, room for more listeners: long queues, many timeouts
    "no_admission": replace(
        BASE,
        platform=replace(SMALL_FLEET, connections_per_node=400),
        admission=NoAdmission(),
        session_mean_s=10.0,
        seed=16,
    ),
    "power_of_d": replace(
        BASE,
        platform=replace(SMALL_FLEET, nodes=7, placement="power_of_d", placement_choices=3),
        seed=18,
    ),
    "consistent_hash": replace(
        BASE, platform=replace(SMALL_FLEET, nodes=5, placement="consistent_hash"), seed=19
    ),
    "concurrency_cap": replace(
        BASE,
        admission=ConcurrencyCap(max_listeners=60, max_joins_in_flight=12, retry_after_s=1.5),
        seed=20,
    ),
    "waiting_room": replace(
        BASE,
        admission=WaitingRoom(release_per_s=25.0, max_wait_s=30.0, capacity=400, retry_after_s=4),
        client=replace(JITTER, patience="exponential", patience_mean_s=40.0),
        seed=21,
    ),
    "aimd": replace(
        BASE,
        admission=Aimd(target_delay_s=0.3, window_s=0.5, initial_rate_per_s=30, increase_per_s=3),
        client=DecorrelatedJitter(max_attempts=8, base_s=0.25, cap_s=10.0),
        seed=22,
    ),
    "credit": replace(
        BASE,
        admission=Credit(target_delay_s=0.3, window_s=0.5, initial_credits=8, min_credits=2),
        client=Exponential(max_attempts=5, base_s=0.2, cap_s=5.0),
        seed=23,
    ),
    "retry_budget": replace(
        BASE, client=replace(JITTER, retry_budget=0.2, budget_window_s=5), seed=24
    ),
    "adaptive_throttle": replace(
        BASE,
        admission=NoAdmission(),
        client=replace(JITTER, throttle_k=1.2, throttle_window_s=10),
        seed=25,
    ),
    "lognormal_patience": replace(
        BASE,
        client=replace(JITTER, patience="lognormal", patience_mean_s=6.0, patience_cv=1.5),
        seed=26,
    ),
    "auth_service": replace(
        BASE,
        platform=replace(
            SMALL_FLEET,
            auth_workers=2,
            auth_service_mean_s=0.04,
            auth_queue_cap=40,
            auth_timeout_s=1.0,
        ),
        admission=WaitingRoom(release_per_s=60.0, max_wait_s=20.0, capacity=200),
        seed=28,
    ),
    "wasted_work": replace(
        BASE,
        platform=replace(SMALL_FLEET, timeout_wastes_work=True, connections_per_node=400),
        admission=NoAdmission(),
        client=ImmediateRetry(max_attempts=3),
        seed=29,
    ),
    "immediate_fixed_patience": replace(
        BASE, client=ImmediateRetry(max_attempts=4, patience="fixed", patience_mean_s=1.0), seed=27
    ),
}


def surge(seed: int, n_base: int = N_BASE, n_burst: int = N_BURST) -> np.ndarray:
    """Sorted arrival times: a steady stream over [0, 60) s and a burst over [20, 25) s."""
    rng = np.random.default_rng(seed)
    times = np.concatenate([rng.uniform(0.0, 60.0, n_base), rng.uniform(20.0, 25.0, n_burst)])
    return np.sort(times)


def twin_setup(case: Case) -> twin.Setup:
    p = case.platform
    adm_kind, adm_params = case.admission.kernel()
    rty_kind, rty_params = case.client.kernel()
    ring: tuple[tuple[float, int], ...] = ()
    if p.placement == "consistent_hash":
        pos, owner = k_placement.hash_ring(p.nodes, p.placement_vnodes)
        ring = tuple(zip(pos.tolist(), owner.tolist(), strict=True))
    return twin.Setup(
        nodes=p.nodes,
        join_workers=p.join_workers,
        join_service_mean_s=p.join_service_mean_s,
        join_queue_cap=p.join_queue_cap,
        join_timeout_s=p.join_timeout_s,
        connections_per_node=p.connections_per_node,
        session_mean_s=case.session_mean_s,
        placement=PLACEMENT[p.placement],
        admission=adm_kind,
        admission_params=tuple(adm_params.tolist()),
        retry=rty_kind,
        retry_params=tuple(rty_params.tolist()),
        placement_choices=p.placement_choices,
        placement_load_bound=p.placement_load_bound,
        ring=ring,
        timeout_wastes_work=p.timeout_wastes_work,
        auth_workers=p.auth_workers,
        auth_service_mean_s=p.auth_service_mean_s,
        auth_queue_cap=p.auth_queue_cap,
        auth_timeout_s=p.auth_timeout_s,
        bot_retry_s=case.bot_retry_s,
        bot_max_attempts=case.bot_max_attempts,
    )


@dataclass
class KernelRun:
    tick_ends: list[float]
    ticks: list[dict[str, int]]
    latencies: list[list[float]]
    snapshots: list[tuple[int, int]]  # (waiting, connections) at each tick end
    concurrent: list[int]
    pending: list[int]
    peak: int
    peak_t: float
    pipe: JoinPipeline

    def totals(self) -> dict[str, int]:
        return {c: sum(tick[c] for tick in self.ticks) for c in COUNTERS}


MAX_SIM_S = 50_000.0  # far beyond any case here (sessions average 300 s)


def run_kernel(
    case: Case,
    arrivals: np.ndarray,
    tick_s: float,
    until: float | None = None,
    akind: np.ndarray | None = None,
    gates: Sequence[tuple[float, twin.Gates]] = (),
) -> KernelRun:
    """Drive ``JoinPipeline`` like the engine: ticks ``k·tick_s`` until ``until`` or idle.

    ``akind`` marks the bots among the arrivals (``None``: not passed); ``gates`` are set into
    ``fp`` before each tick, as the twin has them in force at the tick's start (each ``from_t``
    must be a tick end, so that they hold over whole ticks).
    """
    fleet = EdgeFleet(case.platform)
    pipe = JoinPipeline(
        fleet, case.admission, case.client, case.session_mean_s, states(case.seed), tick_s=tick_s
    )
    pipe.fp[pipeline.F_BOT_RETRY_S] = case.bot_retry_s
    pipe.fp[pipeline.F_BOT_MAX_ATTEMPTS] = case.bot_max_attempts
    last = float(arrivals[-1]) if arrivals.size else 0.0
    run = KernelRun([], [], [], [], [], [], 0, 0.0, pipe)
    lo = 0
    k = 0
    t_start = 0.0
    while True:
        k += 1
        t_end = k * tick_s
        g = twin.gates_in_force(gates, t_start)
        pipe.fp[pipeline.F_LOSS] = g.loss
        pipe.fp[pipeline.F_FILTER_BOT] = g.filter_bot
        pipe.fp[pipeline.F_FILTER_ORGANIC] = g.filter_organic
        pipe.fp[pipeline.F_GATE] = 1.0 if g.presence else 0.0
        assert not any(t_start < x < t_end for x, _ in gates), "gates change at tick ends only"
        hi = int(np.searchsorted(arrivals, t_end, side="left"))
        counts = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)
        kinds = None if akind is None else akind[lo:hi]
        latency = pipe.step(t_end, arrivals[lo:hi], counts, kinds)
        lo = hi
        t_start = t_end
        run.tick_ends.append(t_end)
        run.ticks.append({c: int(counts[i]) for c, i in COUNTERS.items()})
        run.latencies.append(latency.tolist())
        run.snapshots.append(fleet.snapshot(t_end))
        run.concurrent.append(pipe.concurrent)
        run.pending.append(pipe.pending_retries)
        if until is None and t_end > last and pipe.idle:
            break
        if until is not None and t_end >= until:
            break
        # a kernel that miscounts joins or departures never goes idle: fail, do not run forever
        assert t_end < MAX_SIM_S, f"not idle after {MAX_SIM_S} s of simulated time"
    run.peak, run.peak_t = pipe.peak
    return run


def run_twin(
    case: Case,
    arrivals: np.ndarray,
    tick_ends: list[float],
    akind: np.ndarray | None = None,
    gates: Sequence[tuple[float, twin.Gates]] = (),
) -> twin.Result:
    kinds = () if akind is None else akind.tolist()
    seeded = states(case.seed).tolist()
    return twin.simulate(twin_setup(case), arrivals.tolist(), tick_ends, seeded, kinds, gates)


def assert_same(kern: KernelRun, ref: twin.Result, *, snapshots: bool = True) -> None:
    """Every per-tick counter, latency, state and the peak agree exactly."""
    assert kern.tick_ends == ref.tick_ends
    for i, (got, want) in enumerate(zip(kern.ticks, ref.ticks, strict=True)):
        assert got == want, f"tick {i} (end {kern.tick_ends[i]}): {got} != {want}"
    assert kern.latencies == ref.latencies
    assert kern.peak == ref.peak
    assert kern.peak_t == ref.peak_t or (math.isnan(kern.peak_t) and math.isnan(ref.peak_t))
    assert kern.pending[-1] == ref.pending_retries
    joined = np.cumsum([t["joined"] - t["left"] for t in ref.ticks])
    assert kern.concurrent == joined.tolist()
    if snapshots:
        want_snap = [ref.snapshot(t) for t in ref.tick_ends]
        assert kern.snapshots == want_snap
        pending = [
            sum(1 for a in ref.attempts if a.t < t and a.retry_t is not None and a.retry_t >= t)
            for t in ref.tick_ends
        ]
        if not any(a.placed_t is not None and a.placed_t > a.t for a in ref.attempts):
            assert kern.pending == pending  # (held attempts are pending too: not counted here)


# --------------------------------------------------------------------------- kernel == twin


@pytest.fixture(scope="module")
def base_runs() -> tuple[KernelRun, twin.Result]:
    arrivals = surge(BASE.seed)
    kern = run_kernel(BASE, arrivals, 1.0)
    return kern, run_twin(BASE, arrivals, kern.tick_ends)


def test_base_case_matches_the_twin_with_all_four_reasons(
    base_runs: tuple[KernelRun, twin.Result],
) -> None:
    kern, ref = base_runs
    assert_same(kern, ref)
    totals = kern.totals()
    for reason in ("bucket", "full", "queue", "timeout"):
        assert totals[f"rejected_{reason}"] > 0, totals
    # conservation: every listener joins or abandons, every attempt joins or is rejected
    assert totals["arrivals"] == arrivals_count(ref) == totals["joining"] + totals["abandoned"]
    rejected = sum(totals[f"rejected_{r}"] for r in twin.REASONS)
    assert totals["attempts"] == totals["joining"] + rejected
    assert totals["joined"] == totals["left"] == totals["joining"]
    assert kern.concurrent[-1] == 0 and kern.snapshots[-1] == (0, 0)
    # the fleet never holds more than its connection cap
    cap = SMALL_FLEET.nodes * SMALL_FLEET.connections_per_node
    assert max(c for _, c in kern.snapshots) <= cap
    assert 0 < kern.peak <= cap


def arrivals_count(ref: twin.Result, bot: bool = False) -> int:
    """First attempts of people (of bots with ``bot``) in the twin's run."""
    return sum(1 for a in ref.attempts if a.k == 1 and a.bot == bot)


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n] is not BASE])
def test_policy_variant_matches_the_twin(name: str) -> None:
    case = CASES[name]
    arrivals = surge(case.seed)
    kern = run_kernel(case, arrivals, 0.7)
    ref = run_twin(case, arrivals, kern.tick_ends)
    assert_same(kern, ref, snapshots=False)
    totals = kern.totals()
    assert totals["joining"] > 0
    if name != "no_retry":
        assert totals["attempts"] > totals["arrivals"]
    else:
        assert totals["attempts"] == totals["arrivals"]
        assert totals["abandoned"] == totals["arrivals"] - totals["joining"]
    if name == "no_admission":
        assert totals["rejected_bucket"] == 0 and totals["rejected_timeout"] > 0
        assert totals["admitted"] == totals["attempts"]
    max_attempts = int(case.client.kernel()[1][0])
    assert max(a.k for a in ref.attempts) <= max_attempts
    for counter in EXERCISES.get(name, ()):  # the case reaches what it is there for
        assert totals[counter] > 0, (name, counter, totals)
    assert totals["arrivals"] == totals["joining"] + totals["abandoned"]
    rejected = sum(totals[f"rejected_{r}"] for r in twin.REASONS)
    assert totals["attempts"] == totals["joining"] + rejected


EXERCISES = {
    "concurrency_cap": ("rejected_cap",),
    "waiting_room": ("rejected_hold_timeout", "rejected_hold_full"),
    "aimd": ("rejected_shed", "rejected_timeout"),
    "credit": ("rejected_no_credit",),
    "retry_budget": ("retries_denied",),
    "adaptive_throttle": ("rejected_throttled",),
    "lognormal_patience": ("rejected_timeout",),
    "auth_service": ("rejected_auth", "rejected_hold_full"),
    "wasted_work": ("rejected_timeout", "rejected_queue"),
}


def test_every_listener_leaves_and_the_run_ends_idle(
    base_runs: tuple[KernelRun, twin.Result],
) -> None:
    kern, ref = base_runs
    assert kern.pipe.idle and kern.pending[-1] == 0 and ref.pending_retries == 0
    for a in ref.attempts:
        if a.outcome == "joined":
            assert a.join_t is not None and a.leave_t is not None
            assert a.t <= a.join_t <= a.leave_t < kern.tick_ends[-1]


# --------------------------------------------------------------------------- tick boundaries


def test_results_do_not_depend_on_the_tick_length() -> None:
    arrivals = surge(BASE.seed)
    fine = run_kernel(BASE, arrivals, 0.3)
    coarse = run_kernel(BASE, arrivals, 5.0)
    horizon = max(fine.tick_ends[-1], coarse.tick_ends[-1])
    single = run_kernel(BASE, arrivals, horizon, until=horizon)
    assert len(single.ticks) == 1
    ref = run_twin(BASE, arrivals, [horizon])
    assert_same(single, ref)
    want = ref.totals()
    for run in (fine, coarse, single):
        assert run.totals() == want
        assert [x for tick in run.latencies for x in tick] == ref.all_latencies()
        assert (run.peak, run.peak_t) == (ref.peak, ref.peak_t)
        assert run.concurrent[-1] == 0 and run.pending[-1] == 0
    # per tick the fine run agrees with the twin cut the same way
    assert_same(fine, run_twin(BASE, arrivals, fine.tick_ends), snapshots=False)


# --------------------------------------------------------------------------- buffer growth


@pytest.mark.parametrize("slots", [None, 3])
def test_join_pipeline_grows_its_buffers_from_one_entry(
    monkeypatch: pytest.MonkeyPatch, slots: int | None
) -> None:
    """1-entry join records, bins and latencies, 1-block calendars (and with ``slots=3`` rings
    of 3 buckets, so that most releases and retries wait beyond the ring): same results."""
    monkeypatch.setattr(joins, "_INITIAL", 1)
    monkeypatch.setattr(calendar, "new", functools.partial(calendar.new, blocks=1))
    if slots is not None:
        monkeypatch.setattr(joins, "RETRY_SLOTS", slots)
        monkeypatch.setattr(fleet_module, "RELEASE_SLOTS", slots)
    case = CASES["no_admission"]
    arrivals = surge(case.seed)
    kern = run_kernel(case, arrivals, 10.0)
    p = kern.pipe
    assert min(a.shape[0] for a in (p.jr, p.bins, p.latency)) > 1
    assert p.ret.ring.shape[0] == joins.RETRY_SLOTS
    assert p.fleet.rel.ring.shape[0] == fleet_module.RELEASE_SLOTS
    far_rows = calendar.new(2, 1.0).far.shape[0]
    for c in (p.ret, p.fleet.rel):
        assert c.pool.shape[0] > calendar.BLOCK  # it started with one block
        if slots is not None:  # most records waited beyond the ring, in the far heap
            assert c.far.shape[0] > far_rows
    assert_same(kern, run_twin(case, arrivals, kern.tick_ends))


# --------------------------------------------------------------------------- fleet snapshot


def test_fleet_snapshot_counts_waiting_attempts_and_connections() -> None:
    """Mid-surge the snapshot sees waiting attempts and held connections, as the twin does."""
    case = CASES["no_admission"]
    arrivals = surge(case.seed)
    kern = run_kernel(case, arrivals, 0.5, until=40.0)
    ref = run_twin(case, arrivals, kern.tick_ends)
    assert_same(kern, ref)
    assert max(w for w, _ in kern.snapshots) > 0
    assert max(c for _, c in kern.snapshots) > 0
    # the waiting rooms never exceed their capacity, connections never exceed the cap
    p = case.platform
    assert max(w for w, _ in kern.snapshots) <= p.nodes * p.join_queue_cap
    assert max(c for _, c in kern.snapshots) <= p.nodes * p.connections_per_node
    # the snapshot drains lazily and is idempotent; far in the future everything is released
    fleet = kern.pipe.fleet
    t = kern.tick_ends[-1]
    assert fleet.snapshot(t) == fleet.snapshot(t) == ref.snapshot(t)
    assert fleet.snapshot(1e9) == (0, 0)


@pytest.mark.parametrize("most", [30, 2])
@pytest.mark.parametrize("slots", [fleet_module.RELEASE_SLOTS, 3])
def test_release_calendar_hands_back_connections_exactly(slots: int, most: int) -> None:
    """``pipeline.release(rel, cn, t)`` leaves node ``i`` holding its releases ``> t``.

    Connections are taken as the clock moves (the kernel's way: a release is pushed at a time
    before it), fewer than ``most`` per probe time (2: a sparse calendar, often with nothing
    due for a while); some are released exactly at a later probe time (handed back at it), some
    just after one (still held at it), some far beyond the ring of ``slots`` one-second buckets.
    """
    rng = np.random.default_rng(40 + slots + most)
    n = 4
    probes = np.unique(np.concatenate([rng.uniform(0.0, 60.0, 80), np.arange(0.0, 60.0, 2.5)]))
    rel = calendar.new(3, fleet_module.RELEASE_BUCKET_S, slots=slots, blocks=1)
    cn = np.zeros(n, dtype=np.int64)
    epoch = np.zeros(n + 1, dtype=np.int64)
    lists: list[list[float]] = [[] for _ in range(n)]
    at_t = just_after = 0
    for k, t in enumerate(probes.tolist()):
        after = math.nextafter(t, math.inf)
        at_t += sum(r == t for releases in lists for r in releases)
        just_after += sum(r == after for releases in lists for r in releases)
        rel = pipeline.release(rel, cn, epoch, t)
        want = [twin_policies.held(releases, t) for releases in lists]
        assert cn.tolist() == want, t
        assert calendar.size(rel) == sum(want)
        # again at the same time: nothing more to hand back
        rel = pipeline.release(rel, cn, epoch, t)
        assert cn.tolist() == want, t
        for _ in range(int(rng.integers(0, most))):
            node = int(rng.integers(0, n))
            later = float(probes[rng.integers(k + 1, probes.size)]) if k + 1 < probes.size else t
            kind = int(rng.integers(0, 4))
            if kind == 0 and later > t:
                x = later
            elif kind == 1:
                x = math.nextafter(later, math.inf)
            elif kind == 2:
                x = t + float(rng.exponential(2.0))
            else:
                x = t + float(rng.uniform(0.0, 100.0))
            rel = calendar.push(rel, x, float(node), -1.0)
            lists[node].append(x)
            cn[node] += 1
    assert at_t > 5 and just_after > 5  # both edges were probed
    # the snapshot counts what is held; long after the last release nothing is
    t = float(probes[-1]) + 50.0
    no_room = np.zeros((n, 1))
    rel, waiting, held = pipeline.fleet_snapshot(
        t, no_room, np.zeros(n, dtype=np.int64), cn, epoch, rel
    )
    assert (waiting, held) == (0, sum(twin_policies.held(r, t) for r in lists)) and held > 0
    assert cn.tolist() == [twin_policies.held(r, t) for r in lists]
    rel = pipeline.release(rel, cn, epoch, 1e9)
    assert cn.tolist() == [0] * n and calendar.size(rel) == 0


# --------------------------------------------------------------------------- tiny hand-worked cases


TINY = PlatformConfig(
    nodes=1,
    join_workers=1,
    join_service_mean_s=1 / 6,
    join_queue_cap=0,
    join_timeout_s=2.0,
    connections_per_node=10,
)


def tiny_run(
    case: Case, arrivals: list[float], tick_s: float = 1.0
) -> tuple[KernelRun, twin.Result]:
    arr = np.array(arrivals)
    kern = run_kernel(case, arr, tick_s)
    ref = run_twin(case, arr, kern.tick_ends)
    assert_same(kern, ref)
    return kern, ref


def first_draws(seed: int, name: str, n: int, mean: float) -> list[float]:
    rng = twin.rngs_of(states(seed).tolist())[name]
    return [rng.exponential(mean) for _ in range(n)]


def stream_after(seed: int, name: str, n: int, mean: float) -> list[int]:
    """The state of stream ``name`` after ``n`` exponential draws."""
    rng = twin.rngs_of(states(seed).tolist())[name]
    for _ in range(n):
        rng.exponential(mean)
    return rng.s


def test_two_arrivals_no_waiting_room_second_is_rejected_queue() -> None:
    case = Case(TINY, NoAdmission(), NoRetry(), seed=1)
    (s1,) = first_draws(case.seed, "service", 1, 1 / 6)
    (z1,) = first_draws(case.seed, "session", 1, SESSION_S)
    assert s1 > 0.01  # the first listener is still in service when the second arrives
    kern, ref = tiny_run(case, [0.0, 0.01])
    assert [a.outcome for a in ref.attempts] == ["joined", "queue"]
    t = kern.totals()
    assert (t["joining"], t["rejected_queue"], t["abandoned"], t["attempts"]) == (1, 1, 1, 2)
    assert kern.latencies[0] == [s1]
    assert (kern.peak, kern.peak_t) == (1, s1)
    assert ref.attempts[0].leave_t == s1 + z1
    # the service of the rejected attempt was drawn too (before the queue refused it)
    after = stream_after(case.seed, "service", 2, 1 / 6)
    assert kern.pipe.states[pipeline.R_SERVICE].tolist() == after


def test_timeout_leaves_at_patience_and_holds_its_connection_until_then() -> None:
    # service mean 100 s: the first listener blocks the only worker far beyond the 2 s patience
    case = Case(
        replace(TINY, join_service_mean_s=100.0, join_queue_cap=5), NoAdmission(), NoRetry(), seed=2
    )
    (s1,) = first_draws(case.seed, "service", 1, 100.0)
    assert s1 > 3.0
    kern, ref = tiny_run(case, [0.0, 0.01], tick_s=0.5)
    assert [a.outcome for a in ref.attempts] == ["joined", "timeout"]
    assert ref.attempts[1].conn_until == ref.attempts[1].wait_until == 0.01 + 2.0
    snaps = dict(zip(kern.tick_ends, kern.snapshots, strict=True))
    assert snaps[1.0] == (1, 2)  # the second waits and holds a connection
    assert snaps[2.5] == (0, 1)  # it gave up at 2.01 s
    assert kern.totals()["rejected_timeout"] == 1
    # the timeout bounds the wait for a worker, not the join latency: the first joins after s1 > 2 s
    assert kern.latencies[0] == [s1]
    assert s1 > case.platform.join_timeout_s


@pytest.mark.parametrize("tick_s", [0.5, 2.5, 5.0])
def test_a_connection_released_at_the_instant_of_an_attempt_is_free_for_it(tick_s: float) -> None:
    """Released at ``t`` means free for an attempt at ``t``: the cap counts releases ``> t``.

    The first listener holds the only worker for far longer than the patience; the second waits,
    gives up at exactly 0.5 + 2.0 = 2.5 s and hands its connection back then; the third arrives at
    2.5 s on a node whose cap is 2, so it finds one connection free (not ``full``).
    """
    case = Case(
        replace(TINY, join_service_mean_s=100.0, join_queue_cap=5, connections_per_node=2),
        NoAdmission(),
        NoRetry(),
        seed=2,
    )
    (s1,) = first_draws(case.seed, "service", 1, 100.0)
    assert s1 > 5.0
    kern, ref = tiny_run(case, [0.0, 0.5, 2.5], tick_s=tick_s)
    assert [a.outcome for a in ref.attempts] == ["joined", "timeout", "timeout"]
    assert ref.attempts[1].conn_until == ref.attempts[2].t == 2.5
    t = kern.totals()
    assert (t["rejected_full"], t["rejected_timeout"]) == (0, 2)


def test_a_first_attempt_goes_before_a_retry_at_the_same_instant() -> None:
    """The bucket refills 2 tokens/s up to 1: A takes it at 0, B is refused at 0.1 and retries at
    0.6, the instant C arrives; the one token there is C's, the first attempt's."""
    case = Case(
        TINY, TokenBucket(rate_per_s=2.0, burst=1.0), ConstantRetry(max_attempts=2, delay_s=0.5), 5
    )
    assert 0.1 + 0.5 == 0.6
    for tick_s in (1.0, 0.3):
        _, ref = tiny_run(case, [0.0, 0.1, 0.6], tick_s=tick_s)
        assert [(a.t, a.first, a.outcome) for a in ref.attempts] == [
            (0.0, 0.0, "joined"),
            (0.1, 0.1, "bucket"),
            (0.6, 0.6, "joined"),
            (0.6, 0.1, "bucket"),
        ]


def test_a_retry_due_exactly_at_a_tick_end_belongs_to_the_next_tick() -> None:
    case = Case(
        TINY, TokenBucket(rate_per_s=0.0, burst=1.0), ConstantRetry(max_attempts=2, delay_s=0.5), 8
    )
    kern, ref = tiny_run(case, [0.0, 0.5], tick_s=0.5)
    assert [(a.t, a.k) for a in ref.attempts] == [(0.0, 1), (0.5, 1), (1.0, 2)]
    assert [t["attempts"] for t in kern.ticks[:3]] == [1, 1, 1]


def test_connection_cap_rejects_full_without_drawing_a_service_time() -> None:
    case = Case(
        replace(TINY, connections_per_node=1, join_queue_cap=3), NoAdmission(), NoRetry(), seed=3
    )
    kern, ref = tiny_run(case, [0.0, 0.5, 0.7])
    assert [a.outcome for a in ref.attempts] == ["joined", "full", "full"]
    assert kern.totals()["rejected_full"] == 2
    after = stream_after(case.seed, "service", 1, 1 / 6)  # one draw, for the attempt that joined
    assert kern.pipe.states[pipeline.R_SERVICE].tolist() == after


def test_empty_bucket_rejects_bucket() -> None:
    case = Case(TINY, TokenBucket(rate_per_s=0.0, burst=1.0), NoRetry(), seed=4)
    kern, ref = tiny_run(case, [0.0, 5.0, 9.0])
    assert [a.outcome for a in ref.attempts] == ["joined", "bucket", "bucket"]
    t = kern.totals()
    assert (t["admitted"], t["rejected_bucket"], t["abandoned"]) == (1, 2, 2)


def test_constant_retries_until_max_attempts_then_abandon() -> None:
    # one worker busy for ~100 s, no waiting room: the second listener fails at 0.1, 0.6 and 1.1 s
    case = Case(
        replace(TINY, join_service_mean_s=100.0),
        NoAdmission(),
        ConstantRetry(max_attempts=3, delay_s=0.5),
        seed=5,
    )
    (s1,) = first_draws(case.seed, "service", 1, 100.0)
    assert s1 > 1.2
    kern, ref = tiny_run(case, [0.0, 0.1], tick_s=0.25)
    second = [a for a in ref.attempts if a.first == 0.1]
    assert [a.t for a in second] == [0.1, 0.1 + 0.5, 0.1 + 0.5 + 0.5]
    assert [a.k for a in second] == [1, 2, 3]
    assert [a.outcome for a in second] == ["queue"] * 3
    t = kern.totals()
    assert (t["attempts"], t["rejected_queue"], t["abandoned"], t["joining"]) == (4, 3, 1, 1)
    # each retry is handled in the tick that holds its time
    assert [kern.ticks[i]["attempts"] for i in range(5)] == [2, 0, 1, 0, 1]


def test_a_retry_after_a_timeout_waits_from_the_give_up_time() -> None:
    case = Case(
        replace(TINY, join_service_mean_s=100.0, join_queue_cap=1),
        NoAdmission(),
        ConstantRetry(max_attempts=2, delay_s=1.0),
        seed=6,
    )
    (s1,) = first_draws(case.seed, "service", 1, 100.0)
    assert s1 > 6.0  # so the retry at 3.25 s would wait more than 2 s too
    kern, ref = tiny_run(case, [0.0, 0.25])
    second = [a for a in ref.attempts if a.first == 0.25]
    assert [(a.t, a.outcome) for a in second] == [(0.25, "timeout"), (0.25 + 2.0 + 1.0, "timeout")]
    assert kern.totals()["abandoned"] == 1


def test_immediate_retry_is_handled_at_the_same_instant() -> None:
    case = Case(
        TINY,
        TokenBucket(rate_per_s=0.0, burst=1.0),
        ConstantRetry(max_attempts=3, delay_s=0.0),
        seed=8,
    )
    kern, ref = tiny_run(case, [0.0, 0.4])
    assert [(a.t, a.k, a.outcome) for a in ref.attempts] == [
        (0.0, 1, "joined"),
        (0.4, 1, "bucket"),
        (0.4, 2, "bucket"),
        (0.4, 3, "bucket"),
    ]
    assert kern.ticks[0]["attempts"] == 4 and kern.ticks[0]["abandoned"] == 1


def test_two_workers_serve_two_at_once_and_the_third_waits() -> None:
    case = Case(replace(TINY, join_workers=2, join_queue_cap=1), NoAdmission(), NoRetry(), seed=9)
    s = first_draws(case.seed, "service", 3, 1 / 6)
    kern, ref = tiny_run(case, [0.0, 1e-6, 2e-6])
    a1, a2, a3 = ref.attempts
    assert (a1.join_t, a2.join_t) == (s[0], 1e-6 + s[1])
    start3 = min(s[0], 1e-6 + s[1])
    assert a3.outcome == "joined" and a3.wait_until == start3 and a3.join_t == start3 + s[2]
    assert sorted(kern.latencies[0]) == sorted([s[0], s[1], start3 + s[2] - 2e-6])


def _peak_by_full_sort(records: np.ndarray) -> tuple[int, float]:
    """The obvious peak: every join against every departure before it (join first on a tie)."""
    joins = np.sort(records[:, 0])
    leaves = np.sort(records[:, 1])
    now = np.arange(1, joins.size + 1) - np.searchsorted(leaves, joins, side="left")
    i = int(np.argmax(now))
    return int(now[i]), float(joins[i])


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("bin_s", [0.5, 1.0, 7.0])
def test_peak_from_candidate_bins_equals_the_full_sort(seed: int, bin_s: float) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    join = np.sort(rng.uniform(0.0, 60.0, n)) + rng.exponential(0.5, n)
    if seed % 2:  # times on a grid: ties between joins and departures, times on bin edges
        join = np.round(join * 2) / 2
    leave = join + (np.round(rng.exponential(20.0, n)) if seed % 2 else rng.exponential(20.0, n))
    records = np.stack([join, leave], axis=1)
    assert tally.peak(records, _bins(records, bin_s), bin_s) == _peak_by_full_sort(records)


def _bins(records: np.ndarray, bin_s: float) -> np.ndarray:
    bins = np.zeros((int(records[:, 1].max() // bin_s) + 2, 2), dtype=np.int64)
    np.add.at(bins[:, 0], (records[:, 0] // bin_s).astype(np.int64), 1)
    np.add.at(bins[:, 1], (records[:, 1] // bin_s).astype(np.int64), 1)
    return bins


def test_peak_by_hand() -> None:
    # three listeners join in the first second and leave together at 10 s: the peak is the count
    # at the end of the first bin (no departure in it), first reached by the third join
    three = np.array([[0.1, 10.0], [0.2, 10.0], [0.3, 10.0]])
    assert tally.peak(three, _bins(three, 1.0), 1.0) == (3, 0.3)
    # a fourth joins at 10.0, the instant the three leave: the join counts first, 4 at once
    four = np.vstack([three, [[10.0, 12.0]]])
    assert tally.peak(four, _bins(four, 1.0), 1.0) == (4, 10.0)


# --------------------------------------------------------------------------- attack traffic

N_BOTS = 1500
# a volumetric flood from 10 s, mitigation from 18 s (most bots filtered, a few people too), the
# presence channel saturated over [26, 27) s, everything off again from 40 s; tick ends, all
GATES = (
    (10.0, twin.Gates(loss=0.15)),
    (18.0, twin.Gates(loss=0.15, filter_bot=0.8, filter_organic=0.05)),
    (26.0, twin.Gates(filter_bot=0.8, filter_organic=0.05, presence=True)),
    (27.0, twin.Gates(filter_bot=0.8, filter_organic=0.05)),
    (40.0, twin.Gates()),
)
BOTS = replace(BASE, bot_retry_s=0.5, bot_max_attempts=3, seed=31)
ATTACK_CASES = {
    "bucket+retrying_bots": BOTS,
    "bucket+one_shot_bots": replace(BOTS, bot_max_attempts=1, seed=32),
    "concurrency_cap": replace(
        BOTS,
        admission=ConcurrencyCap(max_listeners=60, max_joins_in_flight=12, retry_after_s=1.5),
        seed=33,
    ),
    "waiting_room": replace(
        BOTS,
        admission=WaitingRoom(release_per_s=25.0, max_wait_s=30.0, capacity=400, retry_after_s=4),
        client=replace(JITTER, patience="exponential", patience_mean_s=40.0),
        seed=34,
    ),
    "credit": replace(
        BOTS,
        admission=Credit(target_delay_s=0.3, window_s=0.5, initial_credits=8, min_credits=2),
        bot_max_attempts=2,
        seed=35,
    ),
    "auth+consistent_hash": replace(
        BOTS,
        platform=replace(
            SMALL_FLEET,
            nodes=5,
            placement="consistent_hash",
            auth_workers=2,
            auth_service_mean_s=0.04,
            auth_queue_cap=40,
            auth_timeout_s=1.0,
        ),
        admission=WaitingRoom(release_per_s=60.0, max_wait_s=20.0, capacity=200),
        seed=36,
    ),
    "budget+throttle": replace(
        BOTS,
        admission=NoAdmission(),
        client=replace(JITTER, retry_budget=0.2, budget_window_s=5, throttle_k=1.2),
        seed=37,
    ),
    "wasted_work": replace(
        BOTS,
        platform=replace(SMALL_FLEET, timeout_wastes_work=True, connections_per_node=400),
        admission=NoAdmission(),
        client=ImmediateRetry(max_attempts=3),
        seed=38,
    ),
}
ATTACK = ("attack_attempts", "attack_admitted", "attack_rejected", "attack_filtered")
ORGANIC = tuple(c for c in COUNTERS if not c.startswith("attack_"))


def with_bots(seed: int, n_bots: int = N_BOTS) -> tuple[np.ndarray, np.ndarray]:
    """The surge of ``seed`` and ``n_bots`` bot first attempts over [15, 30) s: sorted times and
    their kinds (0 a person, 1 a bot)."""
    people = surge(seed)
    bots = np.random.default_rng(seed + 1000).uniform(15.0, 30.0, n_bots)
    times = np.concatenate([people, bots])
    kinds = np.concatenate([np.zeros(people.size, np.int8), np.ones(n_bots, np.int8)])
    order = np.argsort(times, kind="stable")
    return times[order], kinds[order]


def attack_run(
    case: Case,
    tick_s: float = 0.5,
    gates: Sequence[tuple[float, twin.Gates]] = GATES,
    n_bots: int = N_BOTS,
) -> tuple[KernelRun, twin.Result, np.ndarray]:
    arrivals, akind = with_bots(case.seed, n_bots)
    kern = run_kernel(case, arrivals, tick_s, akind=akind, gates=gates)
    ref = run_twin(case, arrivals, kern.tick_ends, akind, gates)
    assert_same(kern, ref)
    return kern, ref, akind


def assert_bots_apart(kern: KernelRun, ref: twin.Result, akind: np.ndarray, case: Case) -> None:
    """Bots count only in ``attack_*``; every bot attempt ends in exactly one way.

    Every attempt of a bot is filtered, rejected (any other reason, before or after admission)
    or served, so ``attack_attempts = attack_filtered + attack_rejected + attack_served``, and
    ``attack_served <= attack_admitted``. A bot's attempts are numbered 1, 2, ... and it stops
    after it is served or after failing attempt ``bot_max_attempts``: with ``gone`` the bots
    whose last attempt failed, ``bots = attack_served + gone`` and ``attack_attempts - bots``
    (the retries) ``= attack_filtered + attack_rejected - gone``. The people still satisfy their
    own conservation laws with no bot in them.
    """
    totals = kern.totals()
    n_bots = int(akind.sum())
    people = int(akind.size - n_bots)
    # organic: the laws of the policy variants, with the people only
    assert totals["arrivals"] == people == arrivals_count(ref, bot=False)
    assert totals["arrivals"] == totals["joining"] + totals["abandoned"]
    rejected = sum(totals[f"rejected_{r}"] for r in twin.REASONS)
    assert totals["attempts"] == totals["joining"] + rejected
    assert int(kern.pipe.istate[pipeline.S_RECORDED]) == totals["joining"] == totals["joined"]
    assert sum(len(x) for x in kern.latencies) == totals["joining"]
    assert all(not a.bot for a in ref.attempts if a.join_t is not None)
    # bots
    served, filtered = totals["attack_served"], totals["attack_filtered"]
    assert totals["attack_attempts"] == filtered + totals["attack_rejected"] + served
    assert served <= totals["attack_admitted"] <= totals["attack_attempts"] - filtered
    bots: dict[float, list[twin.Attempt]] = {}
    for a in ref.attempts:
        if a.bot:
            bots.setdefault(a.first, []).append(a)
    assert len(bots) == n_bots == arrivals_count(ref, bot=True)
    gone = 0
    for tries in bots.values():
        assert [a.k for a in tries] == list(range(1, len(tries) + 1))
        assert all(a.outcome != "served" for a in tries[:-1])
        assert len(tries) <= max(1, case.bot_max_attempts)
        if tries[-1].outcome != "served":
            assert len(tries) == max(1, case.bot_max_attempts)
            gone += 1
    assert n_bots == served + gone
    assert totals["attack_attempts"] - n_bots == filtered + totals["attack_rejected"] - gone
    if case.bot_max_attempts == 1:
        assert totals["attack_attempts"] == n_bots
    assert kern.pipe.idle  # served bots handed their connections back


@pytest.mark.parametrize("name", list(ATTACK_CASES))
def test_bot_flood_with_gates_matches_the_twin(name: str) -> None:
    case = ATTACK_CASES[name]
    kern, ref, akind = attack_run(case)
    assert_bots_apart(kern, ref, akind, case)
    totals = kern.totals()
    for counter in (*ATTACK, "attack_served", "rejected_flooded", "rejected_filtered"):
        assert totals[counter] > 0, (name, counter, totals)
    assert totals["joining"] > 0
    # every gate turned bots and people away (the throttle turns away most people of one case)
    gated = {"flooded", "filtered", "presence"}
    assert {a.outcome for a in ref.attempts if a.bot} >= gated | {"served"}
    assert {a.outcome for a in ref.attempts if not a.bot} >= gated - {"presence"} | {"joined"}
    if case.bot_max_attempts > 1:
        assert totals["attack_attempts"] > int(akind.sum())


def test_bots_alone_touch_no_organic_counter_and_no_join_record() -> None:
    case = BOTS
    bots = np.sort(np.random.default_rng(5).uniform(0.0, 20.0, 2000))
    akind = np.ones(bots.size, np.int8)
    kern = run_kernel(case, bots, 0.5, akind=akind, gates=GATES)
    assert_same(kern, run_twin(case, bots, kern.tick_ends, akind, GATES))
    totals = kern.totals()
    assert all(totals[c] == 0 for c in ORGANIC), totals
    assert totals["attack_served"] > 0 and totals["attack_rejected"] > 0
    assert kern.pipe.istate[pipeline.S_RECORDED] == 0 and kern.peak == 0
    assert all(not x for x in kern.latencies)
    # no patience, no session, no backoff: only the bucket's, placement's, service's and gates'
    start = states(case.seed)
    for row in (pipeline.R_RETRY, pipeline.R_SESSION, pipeline.R_PATIENCE, pipeline.R_CLIENT):
        assert kern.pipe.states[row].tolist() == start[row].tolist()


def same_runs(a: KernelRun, b: KernelRun) -> None:
    assert a.tick_ends == b.tick_ends and a.ticks == b.ticks and a.latencies == b.latencies
    assert (a.snapshots, a.concurrent, a.pending) == (b.snapshots, b.concurrent, b.pending)
    assert (a.peak, a.peak_t) == (b.peak, b.peak_t)
    assert a.pipe.states.tolist() == b.pipe.states.tolist()


@pytest.mark.parametrize("name", ["power_of_two+bucket+jitter", "waiting_room", "auth_service"])
def test_akind_all_zeros_is_the_call_without_akind(name: str) -> None:
    case = CASES[name]
    arrivals = surge(case.seed)
    without = run_kernel(case, arrivals, 0.7)
    zeros = run_kernel(case, arrivals, 0.7, akind=np.zeros(arrivals.size, np.int8))
    same_runs(without, zeros)
    # and with no gate set the attack stream is never drawn from
    assert (
        without.pipe.states[pipeline.R_ATTACK].tolist()
        == states(case.seed)[pipeline.R_ATTACK].tolist()
    )
    assert sum(t[c] for t in without.ticks for c in COUNTERS if c.startswith("attack_")) == 0


def uniforms_drawn(seed: int, n: int) -> list[int]:
    """The ``attack`` stream's state after ``n`` uniform draws."""
    rng = twin.rngs_of(states(seed).tolist())["attack"]
    for _ in range(n):
        rng.uniform()
    return rng.s


def test_presence_gate_rejects_every_attempt_without_a_draw() -> None:
    case = BOTS
    kern, _, akind = attack_run(case, gates=((0.0, twin.Gates(presence=True)),), n_bots=300)
    totals = kern.totals()
    assert totals["rejected_presence"] == totals["attempts"] > totals["arrivals"]
    assert totals["admitted"] == totals["joining"] == totals["joined"] == 0
    assert totals["attack_rejected"] == totals["attack_attempts"] == 3 * int(akind.sum())
    assert totals["attack_admitted"] == totals["attack_served"] == 0
    assert sum(totals[f"rejected_{r}"] for r in twin.REASONS) == totals["rejected_presence"]
    assert kern.pipe.states[pipeline.R_ATTACK].tolist() == uniforms_drawn(case.seed, 0)


def test_total_loss_floods_every_attempt_one_draw_each() -> None:
    case = BOTS
    kern, _, akind = attack_run(case, gates=((0.0, twin.Gates(loss=1.0)),), n_bots=300)
    totals = kern.totals()
    assert totals["rejected_flooded"] == totals["attempts"] > totals["arrivals"]
    assert totals["admitted"] == totals["joining"] == 0
    assert totals["attack_rejected"] == totals["attack_attempts"] == 3 * int(akind.sum())
    assert totals["attack_admitted"] == totals["attack_filtered"] == 0
    drawn = totals["attempts"] + totals["attack_attempts"]
    assert kern.pipe.states[pipeline.R_ATTACK].tolist() == uniforms_drawn(case.seed, drawn)


def test_filtering_every_bot_filters_no_person() -> None:
    case = BOTS
    kern, ref, akind = attack_run(case, gates=((0.0, twin.Gates(filter_bot=1.0)),))
    assert_bots_apart(kern, ref, akind, case)
    totals = kern.totals()
    assert totals["attack_filtered"] == totals["attack_attempts"] == 3 * int(akind.sum())
    assert totals["attack_admitted"] == totals["attack_rejected"] == totals["attack_served"] == 0
    assert totals["rejected_filtered"] == 0 and totals["joining"] > 0
    # one draw per bot attempt, none for a person (their filter is off)
    drawn = totals["attack_attempts"]
    assert kern.pipe.states[pipeline.R_ATTACK].tolist() == uniforms_drawn(case.seed, drawn)


def test_join_pipeline_checks_akind() -> None:
    pipe = JoinPipeline(EdgeFleet(SMALL_FLEET), BUCKET, JITTER, SESSION_S, states(1))
    counts = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)
    with pytest.raises(ValueError, match="akind"):
        pipe.step(1.0, np.array([0.1, 0.2]), counts, np.array([1], np.int8))
    with pytest.raises(ValueError, match="akind"):
        pipe.step(1.0, np.array([0.1, 0.2]), counts, np.array([0, 2]))
    pipe.step(1.0, np.array([0.1, 0.2]), counts, np.array([0, 1]))  # any integer dtype
    assert (counts[pipeline.C_ARRIVALS], counts[pipeline.C_ATTACK_ATTEMPTS]) == (1, 1)
