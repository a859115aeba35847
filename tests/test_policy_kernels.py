"""The policy kernels against their plain-Python twins and against hand-worked cases.

Covered: admission (``sim.kernels.admission``: every policy through ``admit``/``observe``), the
client (``sim.kernels.retry``: backoff waits, patience, sliding windows) and placement
(``sim.kernels.placement``). Kernel and twin draw from the same stream: a ``sim.kernels.rng`` state
row, and a ``tests.twins.rng.Xoshiro128ss`` started from that row. Their results must be equal,
and after the same calls the kernel's row must equal the twin's ``.s`` (the same draws, in the same
order). The hand-worked cases pin the rules of ``docs/policies.md`` themselves, so that a change
made to a kernel and to its twin alike still fails. Statistical checks derive their bounds from the
sample size (5 sigma, or the same false-alarm rate for chi-square tests); under
``NUMBA_DISABLE_JIT=1`` the kernels run as Python and the samples are smaller.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import pytest
from scipy import stats

from sim.config import PlatformConfig
from sim.kernels import admission, pipeline, placement, reasons, retry
from sim.kernels import rng as rn
from sim.kernels.admission import aimd, concurrency_cap, credit, waiting_room
from sim.kernels.admission import token_bucket as tb
from sim.model.fleet import EdgeFleet
from sim.model.joins import JoinPipeline
from sim.model.metrics import COUNTERS
from sim.policies import ADMISSION, PLACEMENT, RETRY, AdmissionConfig, ClientConfig
from sim.policies.admission import (
    Aimd,
    ConcurrencyCap,
    Credit,
    NoAdmission,
    TokenBucket,
    WaitingRoom,
)
from sim.policies.client import (
    PATIENCE,
    ConstantRetry,
    DecorrelatedJitter,
    Exponential,
    FullJitter,
    ImmediateRetry,
    NoRetry,
)
from sim.streams import states as run_states
from tests.twins import pipeline as twin_pipeline
from tests.twins import policies as twin
from tests.twins.rng import Xoshiro128ss

NO_JIT = bool(numba.config.DISABLE_JIT)  # type: ignore[attr-defined]  # not in numba's stubs
INF = math.inf
Z = 5.0  # bounds at 5 sigma
ALPHA = float(2.0 * stats.norm.sf(Z))  # the same two-sided false-alarm rate (5.7e-7) for chi-square


def streams(seed: int, k: int = 3) -> np.ndarray:
    """``k`` kernel streams of ``seed``, one int64 state row each."""
    return rn.seeded(seed, tuple(f"stream{j}" for j in range(k)))


def twin_of(states: np.ndarray, i: int) -> Xoshiro128ss:
    """The twin generator at the state of row ``i`` (the same numbers from here on)."""
    return Xoshiro128ss([int(x) for x in states[i]])


def seqsum(xs: Sequence[float]) -> float:
    """Left-to-right float sum, the kernels' running sum (``sum`` may compensate)."""
    acc = 0.0
    for x in xs:
        acc += x
    return acc


def sorted_times(rng: np.random.Generator, n: int, span: float) -> np.ndarray:
    """``n`` sorted times over ``[0, span)``, with clumps (ties and near-ties included)."""
    times = np.concatenate([rng.uniform(0.0, span, n - n // 4), rng.uniform(0.4, 0.45, n // 4)])
    times[:10] = 0.2  # exact ties
    return np.sort(times)


# --------------------------------------------------------------------------- the numbers

ADMISSION_CONFIGS: tuple[AdmissionConfig, ...] = (
    NoAdmission(),
    TokenBucket(rate_per_s=1.0, burst=1.0),
    ConcurrencyCap(),
    WaitingRoom(release_per_s=1.0),
    Aimd(),
    Credit(),
)
CLIENT_CONFIGS: tuple[ClientConfig, ...] = (
    NoRetry(),
    FullJitter(),
    ConstantRetry(),
    ImmediateRetry(),
    Exponential(),
    DecorrelatedJitter(),
)
P_NAMES = (
    "P_MAX_ATTEMPTS",
    "P_BASE",
    "P_CAP",
    "P_PATIENCE",
    "P_PATIENCE_MEAN",
    "P_PATIENCE_MU",
    "P_PATIENCE_SIGMA",
    "P_BUDGET",
    "P_BUDGET_WINDOW",
    "P_THROTTLE_K",
    "P_THROTTLE_WINDOW",
    "P_HONOUR",
)


def test_twins_use_the_kernels_numbers() -> None:
    # admission kinds: the twin's, the kernel's, and what every config packs
    kinds = (
        admission.NONE,
        admission.TOKEN_BUCKET,
        admission.CONCURRENCY_CAP,
        admission.WAITING_ROOM,
        admission.AIMD,
        admission.CREDIT,
    )
    assert kinds == (
        twin.ADMIT_NONE,
        twin.TOKEN_BUCKET,
        twin.CONCURRENCY_CAP,
        twin.WAITING_ROOM,
        twin.AIMD,
        twin.CREDIT,
    )
    assert len(set(kinds)) == len(kinds)
    assert tuple(cfg.kernel()[0] for cfg in ADMISSION_CONFIGS) == kinds
    assert all(type(cfg) is ADMISSION[cfg.policy] for cfg in ADMISSION_CONFIGS)
    assert len(ADMISSION) == len(kinds)
    # admit and hold: negative, apart from every reason, the same in every policy module
    assert (admission.ADMIT, admission.HOLD) == (twin.ADMIT, twin.HOLD) == (-1, -2)
    for module in (tb, concurrency_cap, waiting_room, aimd, credit):
        assert module.ADMIT == admission.ADMIT, module.__name__
    assert waiting_room.HOLD == admission.HOLD
    # the reasons: one tuple everywhere, each constant its name's index
    assert twin.REASONS == reasons.REASONS == pipeline.REASONS == twin_pipeline.REASONS
    assert len(set(reasons.REASONS)) == len(reasons.REASONS)
    for code, name in enumerate(reasons.REASONS):
        assert getattr(reasons, name.upper()) == code, name
    assert twin.REJECT_BUCKET == admission.REJECT_BUCKET == pipeline.REJECT_BUCKET == reasons.BUCKET
    # the counters: the same names in the same order, laid out 0 .. N_COUNTERS - 1
    assert tuple(COUNTERS) == twin_pipeline.COUNTERS
    assert sorted(COUNTERS.values()) == list(range(pipeline.N_COUNTERS))
    for code, name in enumerate(reasons.REASONS):
        assert COUNTERS[f"rejected_{name}"] == pipeline.C_REJECT + code
    # backoff kinds
    backoffs = (
        retry.NONE,
        retry.FULL_JITTER,
        retry.CONSTANT,
        retry.IMMEDIATE,
        retry.EXPONENTIAL,
        retry.DECORRELATED,
    )
    assert backoffs == (
        twin.RETRY_NONE,
        twin.FULL_JITTER,
        twin.CONSTANT,
        twin.IMMEDIATE,
        twin.EXPONENTIAL,
        twin.DECORRELATED,
    )
    assert len(set(backoffs)) == len(backoffs)
    assert tuple(cfg.kernel()[0] for cfg in CLIENT_CONFIGS) == backoffs
    assert all(type(cfg) is RETRY[cfg.retry] for cfg in CLIENT_CONFIGS)
    # patience kinds
    patience = (
        retry.PATIENCE_NONE,
        retry.PATIENCE_FIXED,
        retry.PATIENCE_EXP,
        retry.PATIENCE_LOGNORMAL,
    )
    assert patience == (
        twin.PATIENCE_NONE,
        twin.PATIENCE_FIXED,
        twin.PATIENCE_EXP,
        twin.PATIENCE_LOGNORMAL,
    )
    assert PATIENCE == dict(
        zip(("none", "fixed", "exponential", "lognormal"), patience, strict=True)
    )
    # the client's parameter layout
    for name in P_NAMES:
        assert getattr(twin, name) == getattr(retry, name), name
    layout = [getattr(retry, n) for n in dir(retry) if n.startswith("P_")]
    assert sorted(layout) == list(range(retry.N_PARAMS))
    # placement placements
    placements = (
        placement.RANDOM,
        placement.POWER_OF_TWO,
        placement.LEAST_LOADED,
        placement.POWER_OF_D,
        placement.CONSISTENT_HASH,
    )
    assert placements == (
        twin.RANDOM,
        twin.POWER_OF_TWO,
        twin.LEAST_LOADED,
        twin.POWER_OF_D,
        twin.CONSISTENT_HASH,
    )
    assert PLACEMENT == dict(
        zip(
            ("random", "power_of_two", "least_loaded", "power_of_d", "consistent_hash"),
            placements,
            strict=True,
        )
    )


def test_client_configs_pack_the_p_layout() -> None:
    cfg = FullJitter(
        max_attempts=7,
        base_s=0.25,
        cap_s=12.0,
        patience="lognormal",
        patience_mean_s=90.0,
        patience_cv=0.5,
        retry_budget=0.1,
        budget_window_s=9.5,
        throttle_k=2.0,
        throttle_window_s=120.0,
        honour_retry_after=False,
        reconnect_mean_s=4.0,
        reconnect_min_s=0.5,
    )
    kind, p = cfg.kernel()
    sigma2 = math.log(1.0 + 0.5**2)
    assert kind == retry.FULL_JITTER and p.shape == (retry.N_PARAMS,) and p.dtype == np.float64
    want = {
        twin.P_MAX_ATTEMPTS: 7.0,
        twin.P_BASE: 0.25,
        twin.P_CAP: 12.0,
        twin.P_PATIENCE: twin.PATIENCE_LOGNORMAL,
        twin.P_PATIENCE_MEAN: 90.0,
        twin.P_BUDGET: 0.1,
        twin.P_BUDGET_WINDOW: 10.0,  # whole bins: ceil(9.5)
        twin.P_THROTTLE_K: 2.0,
        twin.P_THROTTLE_WINDOW: 120.0,
        twin.P_HONOUR: 0.0,
        retry.P_RECONNECT_MEAN: 4.0,
        retry.P_RECONNECT_MIN: 0.5,
    }
    for index, value in want.items():
        assert p[index] == value, index
    assert p[twin.P_PATIENCE_SIGMA] == pytest.approx(math.sqrt(sigma2), rel=1e-15)
    assert p[twin.P_PATIENCE_MU] == pytest.approx(math.log(90.0) - sigma2 / 2, rel=1e-15)
    # no budget and no throttle: -1; honouring hints: 1; the constant delay is the base
    _, p = ConstantRetry(delay_s=2.5, max_attempts=3).kernel()
    assert (p[twin.P_BUDGET], p[twin.P_THROTTLE_K], p[twin.P_HONOUR]) == (-1.0, -1.0, 1.0)
    assert (p[twin.P_BASE], p[twin.P_MAX_ATTEMPTS]) == (2.5, 3.0)


# --------------------------------------------------------------------------- token bucket


def test_token_bucket_hand_worked() -> None:
    # burst 2, 1 token/s: 0 s takes a token (1 left), 0.1 s the last one (0.1 left), 0.2 s finds
    # 0.2 tokens, 1.3 s finds 1.3
    times = np.array([0.0, 0.1, 0.2, 1.3])
    got, state = tb.token_bucket(times, 1.0, 2.0)
    assert got.tolist() == [True, True, False, True]
    assert state.tolist() == pytest.approx([0.3, 1.3], abs=1e-12)
    want, want_state = twin.token_bucket(times.tolist(), 1.0, 2.0)
    assert want == got.tolist() and want_state == state.tolist()
    # the bucket starts full at the first attempt, not at t = 0
    got, _ = tb.token_bucket(np.array([50.0, 50.0, 50.0]), 1.0, 2.0)
    assert got.tolist() == [True, True, False]
    # it holds at most burst tokens: after a long pause, 2 in a row, not 100
    got, _ = tb.token_bucket(np.array([0.0, 100.0, 100.0, 100.0]), 1.0, 2.0)
    assert got.tolist() == [True, True, True, False]


def test_token_bucket_with_no_refill_admits_the_burst_only() -> None:
    got, state = tb.token_bucket(np.linspace(0.0, 100.0, 50), 0.0, 7.0)
    assert got.tolist() == [True] * 7 + [False] * 43
    assert state.tolist() == [0.0, 100.0]


@pytest.mark.parametrize(("rate", "burst"), [(1.0, 1.0), (50.0, 20.0), (500.0, 3.5), (0.0, 30.0)])
def test_token_bucket_matches_the_twin(rate: float, burst: float) -> None:
    times = sorted_times(np.random.default_rng(int(rate) + 17), 2000, 10.0)
    got, state = tb.token_bucket(times, rate, burst)
    want, want_state = twin.token_bucket(times.tolist(), rate, burst)
    assert got.tolist() == want
    assert state.tolist() == want_state
    assert 0 < sum(want) < len(want)  # it admitted some and rejected some
    # cut into batches, the state carried across: the same decisions
    parts, st = [], None
    for chunk in np.array_split(times, 7):
        mask, st = tb.token_bucket(chunk, rate, burst, st)
        parts.append(mask)
    assert np.concatenate(parts).tolist() == want
    assert st is not None and st.tolist() == want_state
    # the state passed in is not modified (the wrapper copies it)
    st0 = np.array([1.0, 0.0])
    tb.token_bucket(times[:50], rate, burst, st0)
    assert st0.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(("rate", "burst"), [(50.0, 20.0), (500.0, 3.0), (5.0, 1.0)])
def test_token_bucket_admits_at_most_burst_plus_rate_times_window(
    rate: float, burst: float
) -> None:
    times = sorted_times(np.random.default_rng(3), 2000, 10.0)
    got, _ = tb.token_bucket(times, rate, burst)
    t = times[got]
    # any window [t_i, t_j] of admitted attempts holds j - i + 1 <= burst + rate (t_j - t_i)
    idx = np.arange(t.size)
    g = idx - rate * t
    suffix_max = np.maximum.accumulate(g[::-1])[::-1]
    assert np.all(suffix_max - g <= burst - 1 + 1e-9)
    # and it rejects only when it must: a rejected attempt finds less than one token, which the
    # twin's state at that attempt shows
    st = [burst, float(times[0])]
    for x, ok in zip(times.tolist(), got.tolist(), strict=True):
        before = min(burst, st[0] + rate * (x - st[1]))
        assert ok == (before >= 1.0)
        twin.take_token(rate, burst, st, x)
    assert 0 < got.sum() < got.size


@pytest.mark.parametrize(
    ("times", "rate", "burst"),
    [([1.0, 0.5], 1.0, 1.0), ([0.0], -1.0, 1.0), ([0.0], 1.0, 0.5)],
)
def test_token_bucket_refuses_bad_input(times: list[float], rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        tb.token_bucket(np.array(times), rate, burst)


# --------------------------------------------------------------------------- admission


def twin_state(tw: twin.Admission) -> list[float]:
    """The twin's state in the kernel's layout (``admission.N_STATE`` floats, zero-padded)."""
    if tw.kind == twin.TOKEN_BUCKET:
        s = list(tw.bucket)
    elif tw.kind == twin.WAITING_ROOM:
        s = [tw.next_release, float(len(tw.room))]
    elif tw.kind == twin.AIMD:
        s = [*tw.bucket, tw.rate, float(tw.window), seqsum(tw.delays), float(len(tw.delays))]
    elif tw.kind == twin.CREDIT:
        s = [tw.credits, float(tw.window), seqsum(tw.delays), float(len(tw.delays))]
    else:
        s = []
    return s + [0.0] * (admission.N_STATE - len(s))


class Both:
    """One admission policy, the kernel and the twin side by side: every call is made on both,
    and their answers and states must agree before the kernel's answer is returned."""

    def __init__(self, cfg: AdmissionConfig) -> None:
        self.kind, self.params = cfg.kernel()
        self.state, self.room = admission.new_state(self.kind, self.params)
        self.twin = twin.Admission(self.kind, self.params.tolist())
        self.out = np.empty(2)
        self.check()

    def check(self) -> None:
        assert self.state.tolist() == twin_state(self.twin)
        if self.kind == admission.WAITING_ROOM:
            held = int(self.state[1])
            assert sorted(self.room[:held].tolist()) == sorted(self.twin.room)

    def decide(
        self, t: float, live: int = 0, in_flight: int = 0, patience: float = INF
    ) -> tuple[int, float, float]:
        self.out[:] = np.nan  # the kernel must write both
        code = admission.admit(
            self.kind, self.params, self.state, self.room, t, live, in_flight, patience, self.out
        )
        got = (int(code), float(self.out[0]), float(self.out[1]))
        want = self.twin.decide(t, live, in_flight, patience)
        assert got == want, (t, live, in_flight, patience)
        self.check()
        return got

    def observe(self, t: float, delay: float) -> None:
        admission.observe(self.kind, self.params, self.state, t, delay)
        self.twin.observe(t, delay)
        self.check()


@dataclass(frozen=True)
class AdmissionCase:
    cfg: AdmissionConfig
    codes: frozenset[int]  # every code the random sequence must reach
    mean_gap: float = 0.02  # seconds between events (a quarter of them tied)
    window_s: float = 1.0  # the spells of congestion and the boundaries are in windows
    target: float = 0.5  # observed delays: 0.25 or 3 times this, on average
    max_live: int = 30
    max_flight: int = 12


ADMIT, HOLD = admission.ADMIT, admission.HOLD
ADMISSION_CASES = {
    "none": AdmissionCase(NoAdmission(), frozenset({ADMIT})),
    "token_bucket": AdmissionCase(
        TokenBucket(rate_per_s=30.0, burst=8.0), frozenset({ADMIT, reasons.BUCKET})
    ),
    "token_bucket_slow": AdmissionCase(
        TokenBucket(rate_per_s=0.5, burst=1.0), frozenset({ADMIT, reasons.BUCKET}), mean_gap=0.5
    ),
    "cap": AdmissionCase(
        ConcurrencyCap(max_listeners=20, max_joins_in_flight=6, retry_after_s=2.0),
        frozenset({ADMIT, reasons.CAP}),
    ),
    "cap_listeners": AdmissionCase(
        ConcurrencyCap(max_listeners=20), frozenset({ADMIT, reasons.CAP})
    ),
    "cap_in_flight": AdmissionCase(
        ConcurrencyCap(max_joins_in_flight=6, retry_after_s=1.0), frozenset({ADMIT, reasons.CAP})
    ),
    "cap_unlimited": AdmissionCase(ConcurrencyCap(retry_after_s=1.0), frozenset({ADMIT})),
    "waiting_room": AdmissionCase(
        WaitingRoom(release_per_s=20.0, max_wait_s=1.0, capacity=12, retry_after_s=3.0),
        frozenset({ADMIT, HOLD, reasons.HOLD_FULL, reasons.HOLD_TIMEOUT}),
        mean_gap=0.04,
    ),
    "waiting_room_patient": AdmissionCase(
        WaitingRoom(release_per_s=7.0, max_wait_s=300.0, capacity=1000),
        frozenset({ADMIT, HOLD, reasons.HOLD_TIMEOUT}),
        mean_gap=0.15,
    ),
    "waiting_room_no_places": AdmissionCase(
        WaitingRoom(release_per_s=5.0, capacity=0, retry_after_s=1.0),
        frozenset({ADMIT, reasons.HOLD_FULL}),
        mean_gap=0.2,
    ),
    "aimd": AdmissionCase(
        Aimd(
            target_delay_s=0.5,
            window_s=1.0,
            initial_rate_per_s=30.0,
            min_rate_per_s=5.0,
            max_rate_per_s=60.0,
            increase_per_s=5.0,
            decrease_factor=0.6,
            burst_s=0.5,
            retry_after_s=1.0,
        ),
        frozenset({ADMIT, reasons.SHED}),
    ),
    "aimd_short_window": AdmissionCase(
        Aimd(
            target_delay_s=0.2,
            window_s=0.3,
            initial_rate_per_s=10.0,
            min_rate_per_s=1.0,
            max_rate_per_s=40.0,
            increase_per_s=4.0,
            decrease_factor=0.5,
            burst_s=0.05,  # a bucket of max(1, rate / 20) tokens
        ),
        frozenset({ADMIT, reasons.SHED}),
        window_s=0.3,
        target=0.2,
    ),
    "credit": AdmissionCase(
        Credit(
            target_delay_s=0.5,
            window_s=1.0,
            initial_credits=10.0,
            min_credits=2.0,
            max_credits=20.0,
            additive_credits=2.0,
            beta=0.5,
            retry_after_s=2.0,
        ),
        frozenset({ADMIT, reasons.NO_CREDIT}),
        max_flight=25,
    ),
    "credit_beta_1": AdmissionCase(
        Credit(
            target_delay_s=0.3,
            window_s=0.7,
            initial_credits=5.0,
            min_credits=1.0,
            max_credits=8.0,
            additive_credits=0.5,
            beta=1.0,
        ),
        frozenset({ADMIT, reasons.NO_CREDIT}),
        window_s=0.7,
        target=0.3,
        max_flight=10,
    ),
}
N_EVENTS = 4000


@pytest.mark.parametrize("name", ADMISSION_CASES)
def test_admission_matches_the_twin_step_by_step(name: str) -> None:
    """Random decisions and observations, in time order: the same codes, times, hints, states."""
    case = ADMISSION_CASES[name]
    rng = np.random.default_rng(sorted(ADMISSION_CASES).index(name) + 100)
    n, ws = N_EVENTS, case.window_s
    u = rng.random(n)
    gaps = rng.exponential(case.mean_gap, n)
    gaps[u < 0.25] = 0.0  # several events at one instant
    quiet = u > 0.996
    gaps[quiet] = rng.uniform(1.0, 5.0, int(quiet.sum())) * ws  # spells of empty windows
    t = np.cumsum(gaps)
    on_edge = rng.random(n) < 0.03
    t[on_edge] = np.ceil(t[on_edge] / ws) * ws  # events on a window's boundary
    t = np.maximum.accumulate(t - t[0])
    congested = np.floor(t / (10 * ws)) % 2 == 1  # spells of ten windows, then ten calm
    delay = rng.exponential(np.where(congested, 3.0 * case.target, 0.25 * case.target))
    delay[rng.random(n) < 0.1] = 0.0
    patience = rng.exponential(0.5, n)
    v = rng.random(n)
    patience[v < 0.4] = INF
    patience[v > 0.95] = 0.0
    is_observe = rng.random(n) < 0.35
    live = rng.integers(0, case.max_live + 1, n)
    in_flight = rng.integers(0, case.max_flight + 1, n)

    both = Both(case.cfg)
    codes: Counter[int] = Counter()
    trace = [both.state.copy()]
    for j in range(n):
        if is_observe[j]:
            both.observe(float(t[j]), float(delay[j]))
        else:
            code, _, _ = both.decide(
                float(t[j]), int(live[j]), int(in_flight[j]), float(patience[j])
            )
            codes[code] += 1
        trace.append(both.state.copy())
    assert set(codes) == case.codes, codes
    # the adaptive policies moved both ways, reached their bounds and never passed them
    states = np.array(trace)
    p = both.params
    if both.kind in (admission.AIMD, admission.CREDIT):
        col, lo, hi = (aimd.S_RATE, p[3], p[4]) if both.kind == admission.AIMD else (0, p[3], p[4])
        x = states[:, col]
        assert np.any(np.diff(x) > 0) and np.any(np.diff(x) < 0)
        assert x.min() == lo and x.max() == hi
    else:  # the others keep no adaptive state
        assert np.all(states[:, 2:] == 0.0)


def test_new_state_is_the_policies_state_at_zero() -> None:
    state, room = admission.new_state(*TokenBucket(rate_per_s=3.0, burst=7.5).kernel())
    assert state.tolist() == [7.5, 0.0] + [0.0] * (admission.N_STATE - 2)  # full at t = 0
    assert room.size == 0
    _, room = admission.new_state(*WaitingRoom(release_per_s=1.0, capacity=17).kernel())
    assert room.size == 17  # one place per person the hold queue can hold
    cfg = Aimd(initial_rate_per_s=40.0, burst_s=0.25)
    state, _ = admission.new_state(*cfg.kernel())
    assert state[:6].tolist() == [10.0, 0.0, 40.0, 0.0, 0.0, 0.0]  # a full bucket of rate·burst_s
    state, _ = admission.new_state(*Aimd(initial_rate_per_s=2.0, burst_s=0.1).kernel())
    assert state[aimd.S_TOKENS] == 1.0  # at least one token
    state, _ = admission.new_state(*Credit(initial_credits=12.5).kernel())
    assert state[:4].tolist() == [12.5, 0.0, 0.0, 0.0]
    for cfg_ in (NoAdmission(), ConcurrencyCap(max_listeners=3)):
        state, room = admission.new_state(*cfg_.kernel())
        assert not state.any() and room.size == 0


def test_waiting_room_by_hand() -> None:
    # one release every 0.5 s, a wait of at most 1 s, 3 places, hint 3 s
    room = Both(WaitingRoom(release_per_s=2.0, max_wait_s=1.0, capacity=3, retry_after_s=3.0))
    assert room.decide(0.0) == (ADMIT, 0.0, 0.0)  # nobody ahead: at once
    assert room.decide(0.1) == (HOLD, 0.5, 0.0)  # the next release
    assert room.decide(0.2) == (HOLD, 1.0, 0.0)  # 1/rate later
    # patience left 0.5 < max wait: it would be released at 1.5, gives up at 0.3 + 0.5 without
    # taking the release slot, and holds its place until then
    assert room.decide(0.3, patience=0.5) == (reasons.HOLD_TIMEOUT, 0.3 + 0.5, 3.0)
    assert room.state[0] == 1.5
    assert room.decide(0.4) == (reasons.HOLD_FULL, 0.4, 3.0)  # 3 held, the leaving one counts
    # at 0.8 the first was released and the impatient one left: its slot 1.5 goes to this one
    assert room.decide(0.8) == (HOLD, 1.5, 0.0)
    # release at 2.0, 1.15 s away > the 1 s maximum wait: gives up at 0.85 + 1.0
    assert room.decide(0.85) == (reasons.HOLD_TIMEOUT, 0.85 + 1.0, 3.0)
    assert room.decide(0.9) == (reasons.HOLD_FULL, 0.9, 3.0)
    # at 1.0 one was released (at 1.0 exactly: no longer held); the wait 2.0 - 1.0 is the maximum
    # exactly, which is not longer than it: held
    assert room.decide(1.0) == (HOLD, 2.0, 0.0)
    assert room.state[:2].tolist() == [2.5, 3.0]  # next release, people held (1.5, 1.85, 2.0)
    # patience 0: only an attempt with nobody ahead gets in
    assert room.decide(1.9, patience=0.0) == (reasons.HOLD_TIMEOUT, 1.9, 3.0)
    # long after, the queue is empty: at once again, then held 1/rate later
    assert room.decide(10.0) == (ADMIT, 10.0, 0.0)
    assert room.decide(10.0) == (HOLD, 10.5, 0.0)
    assert room.state[:2].tolist() == [11.0, 1.0]


def test_waiting_room_releases_one_person_every_one_over_rate() -> None:
    room = Both(WaitingRoom(release_per_s=3.0, max_wait_s=300.0, capacity=100))
    got = [room.decide(0.0) for _ in range(30)]
    assert got[0] == (ADMIT, 0.0, 0.0)
    assert all(code == HOLD and hint == 0.0 for code, _, hint in got[1:])
    release = np.array([r for _, r, _ in got])
    assert release == pytest.approx(np.arange(30) / 3.0, abs=1e-12)
    assert np.diff(release) == pytest.approx(np.full(29, 1 / 3), abs=1e-12)
    # attempts exactly 1/rate apart never wait
    room = Both(WaitingRoom(release_per_s=4.0, max_wait_s=0.0, capacity=5))
    assert [room.decide(0.25 * k)[0] for k in range(40)] == [ADMIT] * 40
    # 0.1 s apart they queue up (max wait 0: every one who would wait leaves at once)
    room = Both(WaitingRoom(release_per_s=4.0, max_wait_s=0.0, capacity=5, retry_after_s=1.0))
    got = [room.decide(0.1 * k) for k in range(6)]
    assert [code for code, _, _ in got] == [
        ADMIT,
        reasons.HOLD_TIMEOUT,
        reasons.HOLD_TIMEOUT,
        ADMIT,  # 0.3 > 0.25: the release is due
        reasons.HOLD_TIMEOUT,
        reasons.HOLD_TIMEOUT,
    ]
    assert [x for _, x, _ in got] == pytest.approx([0.1 * k for k in range(6)])


def test_waiting_room_with_no_places_admits_only_when_no_one_is_ahead() -> None:
    room = Both(WaitingRoom(release_per_s=2.0, capacity=0, retry_after_s=4.0))
    assert room.room.size == 0
    assert room.decide(0.0) == (ADMIT, 0.0, 0.0)
    assert room.decide(0.1) == (reasons.HOLD_FULL, 0.1, 4.0)
    assert room.decide(0.49) == (reasons.HOLD_FULL, 0.49, 4.0)
    assert room.decide(0.5) == (ADMIT, 0.5, 0.0)  # the release is due at 0.5
    assert room.decide(3.0) == (ADMIT, 3.0, 0.0)
    assert room.state[:2].tolist() == [3.5, 0.0]


AIMD_HAND = Aimd(
    target_delay_s=0.5,
    window_s=1.0,
    initial_rate_per_s=10.0,
    min_rate_per_s=2.0,
    max_rate_per_s=14.0,
    increase_per_s=3.0,
    decrease_factor=0.5,
    burst_s=1.0,  # a bucket of one second of the current rate
    retry_after_s=1.5,
)


def test_aimd_by_hand() -> None:
    a = Both(AIMD_HAND)
    rate = aimd.S_RATE
    # a full bucket of 10 at t = 0: ten attempts, then shed with the hint
    assert [a.decide(0.0) for _ in range(10)] == [(ADMIT, 0.0, 0.0)] * 10
    assert a.decide(0.0) == (reasons.SHED, 0.0, 1.5)
    # window 0: delays 0.2 and 0.35, mean 0.275 < 0.5 (their sum, 0.55, is not what counts)
    a.observe(0.1, 0.2)
    a.observe(0.3, 0.35)
    assert a.decide(0.5) == (ADMIT, 0.5, 0.0)  # 5 tokens refilled, 4 left
    # 1.25: the tokens accrue at the old rate 10 to the window's end (4 + 5 = 9), the rate goes up
    # to 13, then 0.25 s at 13 (+3.25): 12.25, one taken
    assert a.decide(1.25) == (ADMIT, 1.25, 0.0)
    assert a.state[:6].tolist() == [11.25, 1.25, 13.0, 1.0, 0.0, 0.0]
    # window 1: mean 0.65 > 0.5 (the last delay alone, 0.4, is below it)
    a.observe(1.25, 0.9)
    a.observe(1.5, 0.4)
    # 4.5: window 1 closes with a cut (13 -> 6.5, the bucket clipped to 6.5), the empty windows
    # 2 and 3 each count as an increase (9.5, 12.5), the bucket refilled to 9.5 at 4.0, then
    # refilled at 12.5 up to its burst of 12.5
    assert a.decide(4.5) == (ADMIT, 4.5, 0.0)
    assert a.state[:6].tolist() == [11.5, 4.5, 12.5, 4.0, 0.0, 0.0]
    # ten quiet windows: the rate stops at its maximum
    assert a.decide(14.0) == (ADMIT, 14.0, 0.0)
    assert a.state[rate] == 14.0 and a.state[aimd.S_TOKENS] == 13.0
    # congested windows 14 .. 18: 14 -> 7 -> 3.5 -> 2 (the minimum, not 1.75) -> 2 -> 2
    for w in range(14, 19):
        a.observe(w + 0.5, 2.0)
        a.observe(w + 0.5, 0.1)  # mean 1.05 > 0.5
    assert a.decide(19.0) == (ADMIT, 19.0, 0.0)
    assert a.state[rate] == 2.0
    assert a.state[aimd.S_TOKENS] == 1.0  # a bucket of 2 at 2/s
    assert a.decide(19.0) == (ADMIT, 19.0, 0.0)
    assert a.decide(19.0) == (reasons.SHED, 19.0, 1.5)
    # an observation closes the windows before it too, without an attempt: windows 19 and 20
    # are empty (rate 5, then 8), the bucket refilled at 2/s to 2 by 20, at 5/s to 5 by 21
    a.observe(21.0, 0.1)
    assert a.state[:6].tolist() == [5.0, 21.0, 8.0, 21.0, 0.1, 1.0]
    # a mean delay exactly at the target does not exceed it: an increase (a cut would give 5.5)
    a.observe(22.5, 0.5)
    assert a.state[rate] == 11.0
    a.decide(23.0)
    assert a.state[rate] == 14.0


def test_aimd_bucket_holds_at_least_one_token() -> None:
    # rate 10 and burst_s 0.05: a bucket of max(1, 0.5) = 1 token, refilled at 10/s
    a = Both(Aimd(initial_rate_per_s=10.0, min_rate_per_s=1.0, burst_s=0.05, retry_after_s=0.0))
    assert a.decide(0.0) == (ADMIT, 0.0, 0.0)
    assert a.decide(0.0) == (reasons.SHED, 0.0, 0.0)
    assert a.decide(0.05)[0] == reasons.SHED  # half a token
    assert a.decide(0.15)[0] == ADMIT  # 0.5 + 1.0, clipped to 1
    assert a.decide(0.2)[0] == reasons.SHED
    assert a.state[aimd.S_TOKENS] == pytest.approx(0.5)


CREDIT_HAND = Credit(
    target_delay_s=0.5,
    window_s=1.0,
    initial_credits=10.5,
    min_credits=2.0,
    max_credits=14.0,
    additive_credits=3.0,
    beta=0.8,
    retry_after_s=2.0,
)


def admits_below(c: Both, t: float, n: int) -> None:
    """At ``t`` the policy admits with ``n - 1`` joins in flight and rejects with ``n``."""
    assert c.decide(t, in_flight=n - 1) == (ADMIT, t, 0.0)
    assert c.decide(t, in_flight=n) == (reasons.NO_CREDIT, t, 2.0)
    assert c.decide(t, in_flight=n + 5)[0] == reasons.NO_CREDIT


def test_credit_by_hand() -> None:
    c = Both(CREDIT_HAND)
    admits_below(c, 0.0, 10)  # floor(10.5)
    # window 0: d = 0.8 > 0.5, credits · (1 − 0.8 · 0.3 / 0.8) = 10.5 · 0.7
    c.observe(0.5, 0.8)
    admits_below(c, 1.0, 7)
    assert c.state[credit.S_CREDITS] == pytest.approx(7.35)
    # window 1: d = 0.5 exactly, not below the target: the decrease, by a factor 1 (an increase
    # would give 10.35; the sum of the delays, 1.0, would cut to 4.41)
    c.observe(1.2, 0.5)
    c.observe(1.7, 0.5)
    admits_below(c, 2.0, 7)
    assert c.state[credit.S_CREDITS] == pytest.approx(7.35)
    # window 2: d = 0.25 < 0.5: + 3
    c.observe(2.5, 0.25)
    admits_below(c, 3.0, 10)
    assert c.state[credit.S_CREDITS] == pytest.approx(10.35)
    # window 3: d = 0.625: factor 1 − 0.8 · 0.125 / 0.625 = 0.84: 8.694, and floor(8.694) = 8
    c.observe(3.5, 0.625)
    admits_below(c, 4.0, 8)
    assert c.state[credit.S_CREDITS] == pytest.approx(8.694)
    # window 4: d = 5: factor 1 − 0.8 · 4.5 / 5 = 0.28, held at 0.5: 4.347
    c.observe(4.5, 5.0)
    admits_below(c, 5.0, 4)
    assert c.state[credit.S_CREDITS] == pytest.approx(4.347)
    # the empty windows 5 and 6 count as below the target, each: 7.347, 10.347
    admits_below(c, 7.0, 10)
    assert c.state[credit.S_CREDITS] == pytest.approx(10.347)
    # windows 7 .. 10 empty: 13.347, then the maximum 14
    admits_below(c, 11.0, 14)
    assert c.state[credit.S_CREDITS] == 14.0
    # congested windows 11 .. 15: 14 -> 7 -> 3.5 -> 2 (the minimum, not 1.75) -> 2 -> 2
    for w in range(11, 16):
        c.observe(w + 0.5, 5.0)
    admits_below(c, 16.0, 2)
    assert c.state[credit.S_CREDITS] == 2.0
    # the observations of the current window are kept: sum and count
    c.observe(16.25, 0.5)
    c.observe(16.5, 0.25)
    assert c.state[:4].tolist() == [2.0, 16.0, 0.75, 2.0]


def test_concurrency_cap_by_hand() -> None:
    cap = Both(ConcurrencyCap(max_listeners=5, max_joins_in_flight=2, retry_after_s=4.0))
    assert cap.decide(1.0, live=4, in_flight=1) == (ADMIT, 1.0, 0.0)
    assert cap.decide(1.5, live=5, in_flight=0) == (reasons.CAP, 1.5, 4.0)  # listeners
    assert cap.decide(2.0, live=0, in_flight=2) == (reasons.CAP, 2.0, 4.0)  # joins in flight
    assert cap.decide(2.5, live=9, in_flight=9) == (reasons.CAP, 2.5, 4.0)
    assert cap.decide(3.0, live=4, in_flight=1) == (ADMIT, 3.0, 0.0)  # no memory
    assert not cap.state.any()
    # null = no limit
    cap = Both(ConcurrencyCap(max_joins_in_flight=3))
    assert cap.params[0] == INF
    assert cap.decide(0.0, live=10**9, in_flight=2) == (ADMIT, 0.0, 0.0)
    assert cap.decide(0.0, live=0, in_flight=3) == (reasons.CAP, 0.0, 0.0)  # hint 0 = none
    cap = Both(ConcurrencyCap(max_listeners=5))
    assert cap.decide(0.0, live=4, in_flight=10**9) == (ADMIT, 0.0, 0.0)
    assert cap.decide(0.0, live=5, in_flight=0)[0] == reasons.CAP
    cap = Both(ConcurrencyCap())
    assert cap.decide(0.0, live=10**12, in_flight=10**12) == (ADMIT, 0.0, 0.0)
    # a cap of 0 refuses everyone
    cap = Both(ConcurrencyCap(max_listeners=0, retry_after_s=1.0))
    assert cap.decide(0.0, live=0, in_flight=0) == (reasons.CAP, 0.0, 1.0)


def test_no_admission_admits_everything() -> None:
    a = Both(NoAdmission())
    for t in np.linspace(0.0, 10.0, 50).tolist():
        assert a.decide(t, live=10**6, in_flight=10**6, patience=0.0) == (ADMIT, t, 0.0)
        a.observe(t, 100.0)
    assert not a.state.any()
    assert not admission.needs_in_flight(admission.NONE)
    assert admission.needs_in_flight(admission.CONCURRENCY_CAP)
    assert admission.needs_in_flight(admission.CREDIT)


# --------------------------------------------------------------------------- backoff

RETRY_CASES: dict[str, ClientConfig] = {
    "none": NoRetry(),
    "immediate": ImmediateRetry(max_attempts=5),
    "constant": ConstantRetry(max_attempts=4, delay_s=1.25),
    "exponential": Exponential(max_attempts=10, base_s=0.5, cap_s=30.0),
    "full_jitter": FullJitter(max_attempts=6, base_s=0.5, cap_s=30.0),
    "full_jitter_low_cap": FullJitter(max_attempts=10, base_s=0.25, cap_s=1.5),
    "decorrelated_jitter": DecorrelatedJitter(max_attempts=8, base_s=0.5, cap_s=20.0),
    "decorrelated_low_cap": DecorrelatedJitter(max_attempts=12, base_s=1.0, cap_s=3.0),
}
JITTERED = (retry.FULL_JITTER, retry.DECORRELATED)  # one uniform (two outputs) per wait


@pytest.mark.parametrize("name", RETRY_CASES)
def test_backoff_matches_the_twin(name: str) -> None:
    kind, p = RETRY_CASES[name].kernel()
    pt = p.tolist()
    base, cap, most = pt[retry.P_BASE], pt[retry.P_CAP], int(pt[retry.P_MAX_ATTEMPTS])
    st = streams(31)
    before = st.copy()
    tw = twin_of(st, 1)
    inputs = np.random.default_rng(5)
    calls = 0
    seen_cap = False
    # people retrying until they abandon, each wait the next one's ``prev``, then random (k, prev)
    people = [(k, -1.0) for _ in range(200) for k in range(1, most + 2)]
    ks = inputs.integers(1, most + 4, 1500)
    prevs = inputs.uniform(0.0, 2.0 * max(cap, base), 1500)
    prevs[::7] = base
    people += list(zip(ks.tolist(), prevs.tolist(), strict=True))
    prev = base
    for k, given in people:
        if given >= 0.0:
            prev = given
        elif k == 1:
            prev = base
        w = retry.delay(kind, p, k, prev, st, 1)
        assert w == twin.delay(kind, pt, k, prev, tw), (k, prev)
        assert st[1].tolist() == tw.s
        if k >= most or kind == retry.NONE:
            assert w == -1.0
        else:
            calls += 2 if kind in JITTERED else 0
            assert w >= 0.0
            ceiling = min(cap, base * 2.0 ** (k - 1))
            if kind == retry.FULL_JITTER:
                assert w <= ceiling
            elif kind == retry.DECORRELATED:
                assert min(cap, base, 3 * prev) <= w <= min(cap, max(base, 3 * prev))
                seen_cap |= w == cap
            elif kind == retry.EXPONENTIAL:
                assert w == ceiling
            elif kind == retry.CONSTANT:
                assert w == base
            else:
                assert w == 0.0
            if given < 0.0:
                prev = w
    assert tw.calls == calls  # one uniform per jittered wait, nothing otherwise
    assert (st[0] == before[0]).all() and (st[2] == before[2]).all()  # only stream 1 drawn
    if kind == retry.DECORRELATED:
        assert seen_cap  # 3 · prev went past the cap


def test_backoff_waits_by_hand() -> None:
    st = streams(2, 1)
    _, p = Exponential(max_attempts=10, base_s=0.5, cap_s=30.0).kernel()
    waits = [retry.delay(retry.EXPONENTIAL, p, k, 0.0, st, 0) for k in range(1, 11)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, -1.0]
    _, p = ConstantRetry(max_attempts=3, delay_s=1.25).kernel()
    assert [retry.delay(retry.CONSTANT, p, k, 0.0, st, 0) for k in (1, 2, 3)] == [1.25, 1.25, -1]
    _, p = ImmediateRetry(max_attempts=3).kernel()
    assert [retry.delay(retry.IMMEDIATE, p, k, 9.0, st, 0) for k in (1, 2, 3)] == [0.0, 0.0, -1]
    assert st.tolist() == streams(2, 1).tolist()  # none of them drew
    # full jitter: u · min(cap, base · 2^(k − 1)), u one uniform of the stream
    _, p = FullJitter(max_attempts=10, base_s=0.5, cap_s=6.0).kernel()
    for k in range(1, 10):
        u = twin_of(st, 0).uniform()
        assert retry.delay(retry.FULL_JITTER, p, k, 0.0, st, 0) == u * min(6.0, 0.5 * 2 ** (k - 1))
    # decorrelated: min(cap, base + u · (3 · prev − base)); the first wait uses prev = base
    _, p = DecorrelatedJitter(max_attempts=10, base_s=0.5, cap_s=6.0).kernel()
    capped = 0
    for prev in (0.5, 1.0, 1.7, 4.0, 30.0) * 4:
        u = twin_of(st, 0).uniform()
        w = retry.delay(retry.DECORRELATED, p, 3, prev, st, 0)
        assert w == min(6.0, 0.5 + u * (3.0 * prev - 0.5))
        capped += w == 6.0
    assert capped > 0  # the cap was reached, never passed


def test_full_jitter_fills_its_capped_range() -> None:
    max_attempts, base, cap = 9, 0.5, 30.0
    kind, p = FullJitter(max_attempts=max_attempts, base_s=base, cap_s=cap).kernel()
    n = 4000
    ks = np.repeat(np.arange(1, max_attempts + 2), n)
    waits = retry.delays(kind, p, ks, streams(4, 1))
    for k in range(1, max_attempts):
        w = waits[ks == k]
        ceiling = min(cap, base * 2 ** (k - 1))
        assert w.min() >= 0.0 and w.max() <= ceiling
        # uniform on [0, ceiling]: it fills the range, its mean is within 5 sigma of the middle
        assert w.max() > 0.99 * ceiling and w.min() < 0.01 * ceiling
        assert abs(w.mean() - ceiling / 2) < Z * ceiling / np.sqrt(12 * w.size)
    assert waits[ks == 7].max() > 0.5 * 2**5  # k = 7, 8: the cap (32 > 30) binds
    assert np.all(waits[ks >= max_attempts] == -1.0)


@pytest.mark.parametrize("name", RETRY_CASES)
def test_backoff_abandons_at_max_attempts_without_a_draw(name: str) -> None:
    kind, p = RETRY_CASES[name].kernel()
    most = int(p[retry.P_MAX_ATTEMPTS])
    st = streams(0, 2)
    before = st.tolist()
    for k in (most, most + 1, most + 20):
        assert retry.delay(kind, p, k, 1.0, st, 1) == -1.0
    assert st.tolist() == before
    if kind != retry.NONE:
        assert retry.delay(kind, p, most - 1, 1.0, st, 1) >= 0.0
    # no retry abandons at once, whatever max_attempts says
    p2 = p.copy()
    p2[retry.P_MAX_ATTEMPTS] = 5.0
    st = streams(0, 2)
    assert [retry.delay(retry.NONE, p2, k, 1.0, st, 1) for k in (1, 2, 4)] == [-1.0] * 3
    assert st.tolist() == before


@pytest.mark.parametrize("name", RETRY_CASES)
def test_delays_wrapper_is_the_scalar_kernel(name: str) -> None:
    kind, p = RETRY_CASES[name].kernel()
    inputs = np.random.default_rng(8)
    ks = inputs.integers(1, 14, 500)
    prevs = inputs.uniform(0.0, 10.0, 500)
    for prev in (prevs, None):
        a, b = streams(12), streams(12)
        got = retry.delays(kind, p, ks, a, 2, prev)
        pv = np.full(500, p[retry.P_BASE]) if prev is None else prev
        want = [retry.delay(kind, p, int(k), float(x), b, 2) for k, x in zip(ks, pv, strict=True)]
        assert got.dtype == np.float64 and got.shape == ks.shape
        assert got.tolist() == want
        assert a.tolist() == b.tolist()
        assert a[:2].tolist() == streams(12)[:2].tolist()  # stream 2 only
    # the default stream is row 0
    a, b = streams(3), streams(3)
    assert retry.delays(kind, p, ks, a).tolist() == retry.delays(kind, p, ks, b, 0).tolist()


# --------------------------------------------------------------------------- patience

PATIENCE_CASES: dict[str, tuple[ClientConfig, int]] = {  # the config, outputs drawn per person
    "none": (FullJitter(patience="none"), 0),
    "fixed": (FullJitter(patience="fixed", patience_mean_s=45.0), 0),
    "exponential": (FullJitter(patience="exponential", patience_mean_s=30.0), 2),
    "lognormal": (FullJitter(patience="lognormal", patience_mean_s=120.0, patience_cv=1.0), 4),
    "lognormal_narrow": (
        FullJitter(patience="lognormal", patience_mean_s=8.0, patience_cv=0.3),
        4,
    ),
}


@pytest.mark.parametrize("name", PATIENCE_CASES)
def test_patience_matches_the_twin(name: str) -> None:
    cfg, outputs = PATIENCE_CASES[name]
    _, p = cfg.kernel()
    pt = p.tolist()
    st = streams(17)
    before = st.copy()
    tw = twin_of(st, 2)
    got = []
    for _ in range(2000):
        x = retry.patience(p, st, 2)
        assert x == twin.patience(pt, tw)
        assert st[2].tolist() == tw.s
        got.append(x)
    assert tw.calls == 2000 * outputs
    assert st[:2].tolist() == before[:2].tolist()
    if cfg.patience == "none":
        assert got == [INF] * 2000
    elif cfg.patience == "fixed":
        assert got == [45.0] * 2000
    else:
        assert min(got) > 0.0 and max(got) < INF and len(set(got)) == 2000


def test_patience_by_hand() -> None:
    """Exponential: ``-mean · log1p(-u)``; lognormal: ``exp(μ + σ z)`` with z from the cosine
    branch of Box–Muller on two uniforms (the sine branch is normal too: no statistic sees it)."""
    st = streams(23, 1)
    _, p = FullJitter(patience="exponential", patience_mean_s=30.0).kernel()
    for _ in range(20):
        u = twin_of(st, 0).uniform()
        assert retry.patience(p, st, 0) == -30.0 * math.log1p(-u)
    _, p = FullJitter(patience="lognormal", patience_mean_s=60.0, patience_cv=0.8).kernel()
    sigma = math.sqrt(math.log(1.0 + 0.8**2))
    mu = math.log(60.0) - sigma**2 / 2
    for _ in range(20):
        tw = twin_of(st, 0)
        u1, u2 = tw.uniform(), tw.uniform()
        z = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
        assert retry.patience(p, st, 0) == pytest.approx(math.exp(mu + sigma * z), rel=1e-12)
        assert st[0].tolist() == tw.s  # two uniforms


@numba.njit
def _patience_sample(p: np.ndarray, st: np.ndarray, i: int, n: int) -> np.ndarray:
    out = np.empty(n)
    for j in range(n):
        out[j] = retry.patience(p, st, i)
    return out


N_PATIENCE = 20_000 if NO_JIT else 200_000


@pytest.mark.parametrize(("mean", "cv"), [(120.0, 1.0), (8.0, 0.3)])
def test_lognormal_patience_has_the_configured_mean_and_cv(mean: float, cv: float) -> None:
    """The mean, and the CV two ways, within bounds derived from the sample size.

    With X lognormal, σ² = ln(1 + cv²) and μ = ln(mean) − σ²/2 (``docs/policies.md``):

    - the sample mean has standard deviation cv·mean/√n: 5 sigma;
    - ln X is exactly normal, so the mean of the logs is within 5 σ/√n of μ and
      (n − 1)·s²/σ² of the logs is χ²(n − 1): its two-sided 5-sigma quantiles bound s², hence the
      CV sqrt(exp(s²) − 1), which is increasing in s²;
    - the plain sample variance v has standard deviation sqrt((μ₄ − var²)/n) (μ₄ the 4th central
      moment, in closed form from E[X^k] = exp(kμ + k²σ²/2)); the plain CV sqrt(v)/mean_hat is
      bounded by combining the 5-sigma intervals of v and of the mean (conservative, normal
      approximation of v, fine for n = 200k at these CVs: kurtosis 41 at cv = 1).
    """
    _, p = FullJitter(patience="lognormal", patience_mean_s=mean, patience_cv=cv).kernel()
    x = _patience_sample(p, streams(41, 1), 0, N_PATIENCE)
    n = x.size
    sigma2 = math.log1p(cv**2)
    mu = math.log(mean) - sigma2 / 2
    assert abs(x.mean() - mean) < Z * cv * mean / math.sqrt(n)
    logs = np.log(x)
    assert abs(logs.mean() - mu) < Z * math.sqrt(sigma2 / n)
    lo, hi = stats.chi2.ppf(ALPHA / 2, n - 1), stats.chi2.isf(ALPHA / 2, n - 1)
    s2 = float(logs.var(ddof=1))
    assert lo < (n - 1) * s2 / sigma2 < hi
    cv_logs = math.sqrt(math.expm1(s2))
    assert math.sqrt(math.expm1(sigma2 * lo / (n - 1))) < cv_logs
    assert cv_logs < math.sqrt(math.expm1(sigma2 * hi / (n - 1)))

    def raw(k: int) -> float:
        return math.exp(k * mu + k * k * sigma2 / 2)

    var = (cv * mean) ** 2
    m4 = raw(4) - 4 * mean * raw(3) + 6 * mean**2 * raw(2) - 3 * mean**4
    dv = Z * math.sqrt((m4 - var**2) / n)
    dm = Z * cv * mean / math.sqrt(n)
    cv_hat = float(x.std(ddof=1) / x.mean())
    assert math.sqrt(var - dv) / (mean + dm) < cv_hat < math.sqrt(var + dv) / (mean - dm)
    assert abs(cv_hat - cv) < 0.05 * cv  # what those bounds amount to at this n


def test_exponential_patience_has_the_configured_mean() -> None:
    _, p = FullJitter(patience="exponential", patience_mean_s=30.0).kernel()
    x = _patience_sample(p, streams(43, 1), 0, N_PATIENCE)
    assert abs(x.mean() - 30.0) < Z * 30.0 / math.sqrt(x.size)  # sd = mean
    assert abs(x.std() - 30.0) < Z * 30.0 * math.sqrt(8 / x.size)  # var(s²) ≈ 8 mean⁴ / n


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize("bins", [1, 2, 7, 120])
def test_windows_match_the_twin(bins: int) -> None:
    """Random increasing times, gaps shorter and longer than the window: counts exact."""
    rng = np.random.default_rng(bins)
    n = 800 if NO_JIT else 2500
    u = rng.random(n)
    gaps = rng.uniform(0.0, 0.6, n)
    gaps[u < 0.3] = 0.0
    mid = (u > 0.75) & (u < 0.85)
    gaps[mid] = rng.uniform(1.0, bins + 1.0, int(mid.sum()))  # within the window
    long = u > 0.95
    gaps[long] = rng.uniform(bins, 3.0 * bins + 2.0, int(long.sum()))  # the window empties
    t = np.cumsum(gaps)
    whole = rng.random(n) < 0.05
    t[whole] = np.ceil(t[whole])  # on a bin's edge
    t = np.maximum.accumulate(t)
    ring, sums = retry.window(float(bins))
    assert ring.shape == (bins, 2) and sums.tolist() == [-1.0, 0.0, 0.0]
    tw = twin.Window(bins)
    counted = 0
    for x in t.tolist():
        retry.window_at(ring, sums, x)
        assert sums[retry.W_BIN] == math.floor(x)
        assert [sums[1], sums[2]] == [tw.count(x, 0), tw.count(x, 1)], x
        for _ in range(int(rng.integers(0, 3))):
            c = int(rng.integers(0, 2))
            retry.window_add(ring, sums, c, 1.0)
            tw.add(x, c)
            counted += 1
        assert [sums[1], sums[2]] == [tw.count(x, 0), tw.count(x, 1)], x
        assert ring.sum(axis=0).tolist() == sums[1:].tolist()
        # the twin keeps every event; forget those no window can count again (times increase)
        tw.events = [e for e in tw.events if e[0] > math.floor(x) - bins]
    assert counted > n // 2
    # the window emptied and refilled
    assert np.any(np.diff(t) > bins)


def test_window_by_hand() -> None:
    ring, sums = retry.window(3.0)  # bins floor(t) - 2 .. floor(t)
    for x, c in [(0.5, 0), (1.2, 0), (2.9, 0), (2.9, 1)]:
        retry.window_at(ring, sums, x)
        retry.window_add(ring, sums, c, 1.0)
    assert sums.tolist() == [2.0, 3.0, 1.0]
    retry.window_at(ring, sums, 2.99)
    assert sums.tolist() == [2.0, 3.0, 1.0]
    retry.window_at(ring, sums, 3.0)  # bin 0 leaves
    assert sums.tolist() == [3.0, 2.0, 1.0]
    retry.window_at(ring, sums, 2.5)  # times only move forward: nothing changes
    assert sums.tolist() == [3.0, 2.0, 1.0]
    retry.window_add(ring, sums, 1, 2.0)  # n at once
    assert sums.tolist() == [3.0, 2.0, 3.0]
    retry.window_at(ring, sums, 4.5)  # bins 2 .. 4
    assert sums.tolist() == [4.0, 1.0, 3.0]
    retry.window_at(ring, sums, 5.0)  # bins 3 .. 5
    assert sums.tolist() == [5.0, 0.0, 2.0]
    retry.window_at(ring, sums, 1000.0)
    assert sums.tolist() == [1000.0, 0.0, 0.0] and not ring.any()
    # at least one bin
    assert retry.window(0.5)[0].shape == (1, 2)


# --------------------------------------------------------------------------- placement

NO_RING = (np.zeros(1), np.zeros(1, dtype=np.int64))
ALL_UP = {n: np.ones(n, dtype=np.int64) for n in range(1, 65)}
ALL_IDX = {n: np.arange(n, dtype=np.int64) for n in range(1, 65)}
SCRATCH = np.empty(64, dtype=np.int64)  # ``chosen``, refilled with junk before every call


def pick(
    kind: int,
    cn: np.ndarray,
    st: np.ndarray,
    i: int,
    *,
    d: int = 2,
    key: float = 0.0,
    ring: tuple[np.ndarray, np.ndarray] = NO_RING,
    load_bound: float = 1.25,
    up: np.ndarray | None = None,
) -> int:
    """``placement.choose`` as the pipeline calls it (the only call of it here).

    ``up`` is the mask of the nodes up (all by default); ``upidx`` lists them in index order and
    then the others, ``held`` is what the up nodes hold, ``chosen`` is scratch full of junk.
    """
    n = cn.shape[0]
    if up is None:
        up_, upidx, n_up, held = ALL_UP[n], ALL_IDX[n], n, int(cn.sum())
    else:
        up_ = up
        upidx = np.concatenate([np.flatnonzero(up), np.flatnonzero(up == 0)]).astype(np.int64)
        n_up, held = int(up.sum()), int(cn[up == 1].sum())
    SCRATCH.fill(10**6)
    node = placement.choose(
        kind, cn, up_, upidx, n_up, st, i, d, SCRATCH, held, key, ring[0], ring[1], load_bound
    )
    return int(node)


def twin_pick(
    kind: int,
    cn: np.ndarray,
    tw: Xoshiro128ss,
    *,
    d: int = 2,
    key: float = 0.0,
    ring: tuple[np.ndarray, np.ndarray] = NO_RING,
    load_bound: float = 1.25,
    up: np.ndarray | None = None,
) -> int:
    """The twin on the fleet of the up nodes (its node ``q`` is the ``q``-th node up)."""
    ups = np.flatnonzero(np.ones(cn.shape[0]) if up is None else up).tolist()
    conns = [[1.0] * int(cn[j]) for j in ups]  # connections released after t = 0
    where = {j: q for q, j in enumerate(ups)}
    tring = [
        (pos, where[node])
        for pos, node in zip(ring[0].tolist(), ring[1].tolist(), strict=True)
        if node in where
    ]
    if kind != twin.CONSISTENT_HASH:
        tring = []
    q = twin.choose(kind, conns, 0.0, tw, d=d, key=key, ring=tring, load_bound=load_bound)
    return int(ups[q])


def random_loads(rng: np.random.Generator, n: int) -> np.ndarray:
    """Loads with ties: spread, nearly equal, all equal, or one node apart."""
    mode = int(rng.integers(0, 4))
    if mode == 0:
        cn = rng.integers(0, 31, n)
    elif mode == 1:
        cn = rng.integers(0, 3, n)
    elif mode == 2:
        cn = np.full(n, int(rng.integers(0, 10)))
    else:
        cn = np.full(n, 5)
        cn[int(rng.integers(0, n))] = int(rng.choice([0, 9]))
    return cn.astype(np.int64)


def random_key(rng: np.random.Generator, ring: tuple[np.ndarray, np.ndarray]) -> float:
    """A key: uniform, or exactly a ring point, past the last point, or 0."""
    u = float(rng.random())
    if u < 0.15:
        return float(ring[0][int(rng.integers(0, ring[0].size))])
    if u < 0.2:
        return float(rng.uniform(ring[0][-1], 1.0))
    if u < 0.25:
        return 0.0
    return float(rng.random())


KINDS = [
    placement.RANDOM,
    placement.POWER_OF_TWO,
    placement.LEAST_LOADED,
    placement.POWER_OF_D,
    placement.CONSISTENT_HASH,
]
N_PICKS = 100 if NO_JIT else 300


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 5, 37])
@pytest.mark.parametrize("d", [2, 3, 8])
def test_choose_matches_the_twin(kind: int, n: int, d: int) -> None:
    rng = np.random.default_rng(1000 * kind + 10 * n + d)
    st = streams(kind + n + d)
    before = st.copy()
    tw = twin_of(st, 1)
    ring = placement.hash_ring(n, int(rng.choice([1, 4, 16])))
    picked = set()
    for _ in range(N_PICKS):
        cn = random_loads(rng, n)
        loads = cn.copy()
        key = random_key(rng, ring)
        bound = float(rng.choice([1.0, 1.25, 2.0]))
        got = pick(kind, cn, st, 1, d=d, key=key, ring=ring, load_bound=bound)
        want = twin_pick(kind, cn, tw, d=d, key=key, ring=ring, load_bound=bound)
        assert got == want, (cn.tolist(), key, bound)
        assert st[1].tolist() == tw.s
        assert cn.tolist() == loads.tolist()  # choose only reads the loads
        picked.add(got)
    assert (st[0] == before[0]).all() and (st[2] == before[2]).all()
    # draws: random (n > 1), power of d with d < n; none for least loaded, hashing, d >= n
    d_eff = 2 if kind == placement.POWER_OF_TWO else d
    draws = (kind == placement.RANDOM and n > 1) or (
        kind in (placement.POWER_OF_TWO, placement.POWER_OF_D) and d_eff < n
    )
    assert (tw.calls > 0) == draws
    assert n == 37 or len(picked) == n


@pytest.mark.parametrize("kind", KINDS)
def test_choose_picks_up_nodes_only(kind: int) -> None:
    """With some nodes down, the choice among the up nodes is the twin's on that smaller fleet.

    Down nodes hold nothing (the most attractive loads), yet are never chosen. ``n_up = 2`` is
    the case ``n = 2`` of ``test_choose_matches_the_twin``; here ``n_up`` is 1 or 3 .. 12.
    """
    rng = np.random.default_rng(50 + kind)
    n = 12
    st = streams(kind, 2)
    tw = twin_of(st, 1)
    ring = placement.hash_ring(n, 8)
    for _ in range(N_PICKS):
        n_up = int(rng.choice([1, *range(3, n + 1)]))
        up = np.zeros(n, dtype=np.int64)
        up[rng.permutation(n)[:n_up]] = 1
        cn = random_loads(rng, n)
        cn[up == 0] = 0
        key = random_key(rng, ring)
        d = int(rng.choice([2, 3, 8]))
        got = pick(kind, cn, st, 1, d=d, key=key, ring=ring, up=up)
        assert up[got] == 1
        assert got == twin_pick(kind, cn, tw, d=d, key=key, ring=ring, up=up)
        assert st[1].tolist() == tw.s


def test_least_loaded_by_hand() -> None:
    st = streams(0, 1)
    before = st.tolist()
    for loads, node in [
        ([3, 1, 2, 1], 1),  # the lowest index among the least loaded
        ([2, 0, 1, 0], 1),
        ([0, 0, 1, 0], 0),
        ([0, 0, 0, 0], 0),
        ([4, 2, 3, 2, 9], 1),
        ([5, 5, 4], 2),
        ([7], 0),
    ]:
        cn = np.array(loads, dtype=np.int64)
        assert pick(placement.LEAST_LOADED, cn, st, 0) == node
        # d >= n: power of d is least loaded
        assert pick(placement.POWER_OF_D, cn, st, 0, d=len(loads)) == node
        assert pick(placement.POWER_OF_D, cn, st, 0, d=len(loads) + 5) == node
    up = np.array([0, 1, 1, 0, 1], dtype=np.int64)
    cn = np.array([0, 3, 2, 0, 2], dtype=np.int64)
    assert pick(placement.LEAST_LOADED, cn, st, 0, up=up) == 2  # the least loaded up node
    assert pick(placement.RANDOM, cn, st, 0, up=np.array([0, 0, 0, 1, 0])) == 3  # one up
    assert st.tolist() == before  # no draws


def test_power_of_two_with_two_nodes_is_least_loaded() -> None:
    """``power_of_two`` is ``power_of_d`` with d = 2, and with d >= n that is ``least_loaded``:
    with two nodes, the lower index on a tie and no draw (``docs/policies.md``, Placement)."""
    st = streams(1, 1)
    before = st.tolist()
    cn = np.array([3, 3], dtype=np.int64)
    assert [pick(placement.POWER_OF_TWO, cn, st, 0) for _ in range(20)] == [0] * 20
    assert pick(placement.POWER_OF_TWO, np.array([4, 3], dtype=np.int64), st, 0) == 1
    assert st.tolist() == before
    # the same with two nodes up in a larger fleet
    up = np.array([0, 1, 0, 1], dtype=np.int64)
    cn = np.array([0, 4, 0, 4], dtype=np.int64)
    assert [pick(placement.POWER_OF_TWO, cn, st, 0, up=up) for _ in range(20)] == [1] * 20
    assert st.tolist() == before


def drawn_by_the_rule(tw: Xoshiro128ss, n: int, d: int) -> list[int]:
    """The ``d`` nodes power of d draws: ``x_m = integers(n − m)``, the ``x_m``-th node not yet
    drawn in index order."""
    drawn: list[int] = []
    for m in range(d):
        x = tw.integers(n - m)
        drawn.append([j for j in range(n) if j not in drawn][x])
    assert len(set(drawn)) == d
    return drawn


@pytest.mark.parametrize(("n", "d"), [(5, 2), (5, 3), (8, 3), (37, 8)])
def test_power_of_d_by_hand(n: int, d: int) -> None:
    kind = placement.POWER_OF_TWO if d == 2 else placement.POWER_OF_D
    rng = np.random.default_rng(n + d)
    st = streams(n * d, 1)
    seen = set()
    for _ in range(1000):
        cn = random_loads(rng, n)
        tw = twin_of(st, 0)
        drawn = drawn_by_the_rule(tw, n, d)
        least = min(int(cn[j]) for j in drawn)
        first = next(j for j in drawn if cn[j] == least)  # the earliest drawn on a tie
        assert pick(kind, cn, st, 0, d=d) == first
        assert st[0].tolist() == tw.s  # exactly those d draws
        seen.add(tuple(drawn))
    if n == 5:  # every ordered choice comes up (20 or 60 of them, in 1000 draws)
        assert len(seen) == math.perm(n, d)
    # all loads equal: the first drawn
    cn = np.full(n, 4, dtype=np.int64)
    for _ in range(50):
        first = twin_of(st, 0).integers(n)
        assert pick(kind, cn, st, 0, d=d) == first


@pytest.mark.parametrize(("n", "d"), [(5, 2), (8, 3), (37, 8)])
def test_power_of_d_draws_distinct_uniform_nodes(n: int, d: int) -> None:
    """With loads increasing with the index, the pick is the lowest node drawn. For d distinct
    uniform nodes, P(lowest = j) = C(n − 1 − j, d − 1) / C(n, d); drawing with replacement (or
    any bias) changes it. Chi-square over the cells expecting >= 5, at false-alarm rate 5.7e-7."""
    kind = placement.POWER_OF_TWO if d == 2 else placement.POWER_OF_D
    st = streams(77, 1)
    cn = np.arange(n, dtype=np.int64)
    draws = 3000 if NO_JIT else 30_000
    counts = np.bincount([pick(kind, cn, st, 0, d=d) for _ in range(draws)], minlength=n)
    prob = np.array([math.comb(n - 1 - j, d - 1) for j in range(n)]) / math.comb(n, d)
    assert counts[prob == 0].sum() == 0  # the d − 1 highest nodes are never the lowest drawn
    expected = draws * prob
    keep = expected >= 5
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    obs, exp = obs[exp > 0], exp[exp > 0]
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    assert chi2 < stats.chi2.isf(ALPHA, obs.size - 1)
    # in particular the empty node is chosen with probability d / n (with replacement it would be
    # 1 − (1 − 1/n)^d), within 5 sigma
    cn = np.full(n, 5, dtype=np.int64)
    cn[n // 2] = 0
    hits = sum(pick(kind, cn, st, 0, d=d) == n // 2 for _ in range(draws))
    p = d / n
    assert abs(hits / draws - p) < Z * math.sqrt(p * (1 - p) / draws)


def test_consistent_hash_by_hand() -> None:
    ring = (np.array([0.1, 0.3, 0.5, 0.7, 0.9]), np.array([0, 1, 2, 0, 1], dtype=np.int64))
    st = streams(5, 1)
    before = st.tolist()
    h = placement.CONSISTENT_HASH
    empty = np.zeros(3, dtype=np.int64)
    # the first point at or after the key, wrapping past the last
    for key, node in [(0.0, 0), (0.1, 0), (0.3, 1), (0.31, 2), (0.5, 2), (0.6, 0), (0.9, 1)]:
        assert pick(h, empty, st, 0, key=key, ring=ring) == node, key
    assert pick(h, empty, st, 0, key=0.95, ring=ring) == 0
    # loads 2, 1, 0 (H = 3): bound ceil(1.25 · 4 / 3) = 2, node 0 is at it and skipped
    cn = np.array([2, 1, 0], dtype=np.int64)
    assert pick(h, cn, st, 0, key=0.05, ring=ring) == 1
    assert pick(h, cn, st, 0, key=0.6, ring=ring) == 1  # 0.7 is node 0: on to 0.9
    assert pick(h, cn, st, 0, key=0.4, ring=ring) == 2
    # the bound is a ceiling: ceil(1.25 · 4 / 3) = 2, so a node holding 1 is under it
    cn = np.array([1, 2, 0], dtype=np.int64)
    assert pick(h, cn, st, 0, key=0.05, ring=ring) == 0
    # it counts the attempt itself, H + 1: loads 1, 1, 0 with c = 1.5: ceil(1.5 · 3 / 3) = 2
    cn = np.array([1, 1, 0], dtype=np.int64)
    assert pick(h, cn, st, 0, key=0.05, ring=ring, load_bound=1.5) == 0
    # the walk skipping full nodes wraps around: 0.9 (node 1, at the bound) then 0.1 (node 0)
    cn = np.array([0, 3, 3], dtype=np.int64)  # bound ceil(1.25 · 7 / 3) = 3
    assert pick(h, cn, st, 0, key=0.8, ring=ring) == 0
    # a down node is skipped on the ring (and the bound is over the nodes up)
    up = np.array([0, 1, 1], dtype=np.int64)
    assert pick(h, empty, st, 0, key=0.05, ring=ring, up=up) == 1
    assert pick(h, empty, st, 0, key=0.8, ring=ring, up=up) == 1
    assert pick(h, empty, st, 0, key=0.6, ring=ring, up=up) == 1  # 0.7 is node 0, down
    assert pick(h, empty, st, 0, key=0.4, ring=ring, up=up) == 2
    # c = 1: the bound is the mean load after the attempt, rounded up: ceil(7 / 3) = 3
    cn = np.array([2, 2, 2], dtype=np.int64)
    assert pick(h, cn, st, 0, key=0.05, ring=ring, load_bound=1.0) == 0
    assert st.tolist() == before  # the key was drawn before: no draws here


def test_hash_ring_is_fixed_sorted_and_has_vnodes_points_per_node() -> None:
    for nodes, vnodes in [(1, 1), (3, 5), (37, 64), (200, 1)]:
        pos, node = placement.hash_ring(nodes, vnodes)
        assert pos.shape == node.shape == (nodes * vnodes,)
        assert node.dtype == np.int64
        assert np.all(np.diff(pos) > 0)  # sorted (and no two points at one place)
        assert pos.min() >= 0.0 and pos.max() < 1.0
        assert np.bincount(node, minlength=nodes).tolist() == [vnodes] * nodes
        again = placement.hash_ring(nodes, vnodes)  # fixed positions
        assert pos.tolist() == again[0].tolist() and node.tolist() == again[1].tolist()
    # the nodes' points are interleaved on the ring, not in blocks
    _, node = placement.hash_ring(4, 64)
    assert np.count_nonzero(np.diff(node)) > 100
    # the pipelines of two runs with different seeds use the same ring
    platform = PlatformConfig(nodes=6, placement="consistent_hash", placement_vnodes=16)
    rings = []
    for seed in (1, 2):
        pipe = JoinPipeline(EdgeFleet(platform), NoAdmission(), NoRetry(), 30.0, run_states(seed))
        rings.append((pipe.ring_pos.tolist(), pipe.ring_node.tolist()))
    pos, node = placement.hash_ring(6, 16)
    assert rings[0] == rings[1] == (pos.tolist(), node.tolist())


@pytest.mark.parametrize("n", [5, 37])
def test_random_placement_is_uniform(n: int) -> None:
    """Chi-square of the counts against n equal cells, df = n − 1, rejected only above the
    quantile of false-alarm rate 5.7e-7 (5 sigma): at 400 (or 100) draws per cell, any bias
    of a few percent per cell is far above it, a uniform pick essentially never is."""
    rng = np.random.default_rng(n)
    st = streams(9, 1)
    per_cell = 100 if NO_JIT else 400
    picks = [pick(placement.RANDOM, random_loads(rng, n), st, 0) for _ in range(n * per_cell)]
    counts = np.bincount(picks, minlength=n)
    assert counts.size == n and counts.sum() == n * per_cell
    chi2 = float(((counts - per_cell) ** 2 / per_cell).sum())
    assert chi2 < stats.chi2.isf(ALPHA, n - 1)
    # and the loads do not matter: the same draws, the same picks, whatever the loads
    a, b = streams(9, 1), streams(9, 1)
    for _ in range(200):
        assert pick(placement.RANDOM, random_loads(rng, n), a, 0) == pick(
            placement.RANDOM, np.zeros(n, dtype=np.int64), b, 0
        )
