"""The policy kernels (admission, retry delay, placement) against their plain-Python twins.

Kernel and twin get identically seeded generators; their results must be equal, and after the same
calls both generators must be in the same state (the same draws, in the same order).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from sim.kernels import admission, pipeline, placement, retry
from sim.model.metrics import COUNTERS
from tests.twins import pipeline as twin_pipeline
from tests.twins import policies as twin


def same_state(a: np.random.Generator, b: np.random.Generator) -> bool:
    return bool(a.bit_generator.state == b.bit_generator.state)


def sorted_times(rng: np.random.Generator, n: int, span: float) -> np.ndarray:
    """``n`` sorted times over ``[0, span)``, with clumps (ties and near-ties included)."""
    times = np.concatenate([rng.uniform(0.0, span, n - n // 4), rng.uniform(0.4, 0.45, n // 4)])
    times[:10] = 0.2  # exact ties
    return np.sort(times)


def test_twins_use_the_kernels_numbers() -> None:
    assert (twin.ADMIT_NONE, twin.TOKEN_BUCKET) == (admission.NONE, admission.TOKEN_BUCKET)
    assert twin.REJECT_BUCKET == admission.REJECT_BUCKET == pipeline.REJECT_BUCKET
    assert (twin.RETRY_NONE, twin.FULL_JITTER, twin.CONSTANT) == (
        retry.NONE,
        retry.FULL_JITTER,
        retry.CONSTANT,
    )
    assert (twin.RANDOM, twin.POWER_OF_TWO, twin.LEAST_LOADED) == (
        placement.RANDOM,
        placement.POWER_OF_TWO,
        placement.LEAST_LOADED,
    )
    assert twin_pipeline.REASONS == pipeline.REASONS
    assert set(twin_pipeline.COUNTERS) == set(COUNTERS)


# --------------------------------------------------------------------------- admission


def test_token_bucket_hand_worked() -> None:
    # burst 2, 1 token/s: 0 s takes a token (1 left), 0.1 s the last one (0.1 left), 0.2 s finds
    # 0.2 tokens, 1.3 s finds 1.3
    times = np.array([0.0, 0.1, 0.2, 1.3])
    got, state = admission.token_bucket(times, 1.0, 2.0)
    assert got.tolist() == [True, True, False, True]
    assert state.tolist() == pytest.approx([0.3, 1.3], abs=1e-12)
    want, want_state = twin.token_bucket(times.tolist(), 1.0, 2.0)
    assert want == got.tolist() and want_state == state.tolist()


def test_token_bucket_with_no_refill_admits_the_burst_only() -> None:
    got, state = admission.token_bucket(np.linspace(0.0, 100.0, 50), 0.0, 7.0)
    assert got.tolist() == [True] * 7 + [False] * 43
    assert state.tolist() == [0.0, 100.0]


@pytest.mark.parametrize(("rate", "burst"), [(1.0, 1.0), (50.0, 20.0), (500.0, 3.5), (0.0, 30.0)])
def test_token_bucket_matches_the_twin(rate: float, burst: float) -> None:
    times = sorted_times(np.random.default_rng(int(rate) + 17), 2000, 10.0)
    got, state = admission.token_bucket(times, rate, burst)
    want, want_state = twin.token_bucket(times.tolist(), rate, burst)
    assert got.tolist() == want
    assert state.tolist() == want_state
    # cut into batches, the state carried across: the same decisions
    parts, st = [], None
    for chunk in np.array_split(times, 7):
        mask, st = admission.token_bucket(chunk, rate, burst, st)
        parts.append(mask)
    assert np.concatenate(parts).tolist() == want
    assert st is not None and st.tolist() == want_state


@pytest.mark.parametrize(("rate", "burst"), [(50.0, 20.0), (500.0, 3.0), (5.0, 1.0)])
def test_token_bucket_admits_at_most_burst_plus_rate_times_window(
    rate: float, burst: float
) -> None:
    times = sorted_times(np.random.default_rng(3), 2000, 10.0)
    got, _ = admission.token_bucket(times, rate, burst)
    t = times[got]
    # any window [t_i, t_j] of admitted attempts holds j - i + 1 <= burst + rate (t_j - t_i)
    idx = np.arange(t.size)
    g = idx - rate * t
    suffix_max = np.maximum.accumulate(g[::-1])[::-1]
    assert np.all(suffix_max - g <= burst - 1 + 1e-9)
    # the bucket rejects only when it must: a rejected attempt finds less than one token
    assert 0 < got.sum() < got.size


def test_admit_kernel_matches_the_twin_step_by_step() -> None:
    rng = np.random.default_rng(5)
    times = sorted_times(rng, 2000, 20.0)
    params = np.array([40.0, 12.0])
    state = np.array([12.0, 0.0])
    want_state = [12.0, 0.0]
    for t in times:
        got = admission.admit(admission.TOKEN_BUCKET, params, state, float(t))
        want = twin.admit(twin.TOKEN_BUCKET, (40.0, 12.0), want_state, float(t))
        assert got == want
        assert state.tolist() == want_state
    # NONE admits everything and leaves the state alone
    state = np.array([1.5, 2.5])
    for t in times[:100]:
        assert admission.admit(admission.NONE, np.zeros(0), state, float(t)) == -1
    assert state.tolist() == [1.5, 2.5]
    assert twin.admit(twin.ADMIT_NONE, (), [1.5, 2.5], 3.0) == -1


@pytest.mark.parametrize(
    ("times", "rate", "burst"),
    [([1.0, 0.5], 1.0, 1.0), ([0.0], -1.0, 1.0), ([0.0], 1.0, 0.5)],
)
def test_token_bucket_refuses_bad_input(times: list[float], rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        admission.token_bucket(np.array(times), rate, burst)


# --------------------------------------------------------------------------- retry


RETRY_CASES = {
    "none": (retry.NONE, np.array([1.0])),
    "full_jitter": (retry.FULL_JITTER, np.array([6.0, 0.5, 30.0])),
    "full_jitter_low_cap": (retry.FULL_JITTER, np.array([10.0, 0.25, 1.5])),
    "constant": (retry.CONSTANT, np.array([4.0, 1.25])),
    "immediate": (retry.CONSTANT, np.array([3.0, 0.0])),
}


@pytest.mark.parametrize("name", RETRY_CASES)
def test_retry_delays_match_the_twin(name: str) -> None:
    kind, params = RETRY_CASES[name]
    ks = np.random.default_rng(1).integers(1, 12, 2000)
    rng = np.random.default_rng(99)
    rng_twin = copy.deepcopy(rng)
    got = retry.delays(kind, params, ks, rng)
    want = [twin.delay(kind, tuple(params.tolist()), int(k), rng_twin) for k in ks]
    assert got.tolist() == want
    assert same_state(rng, rng_twin)
    # one draw per retry for full jitter, none otherwise
    fresh = np.random.default_rng(99)
    n_draws = int(np.sum(ks < params[0])) if kind == retry.FULL_JITTER else 0
    fresh.random(n_draws)
    assert same_state(rng, fresh)
    # the scalar kernel draws the same numbers
    rng_scalar = np.random.default_rng(99)
    assert [retry.delay(kind, params, int(k), rng_scalar) for k in ks] == want


def test_full_jitter_stays_within_its_capped_ceiling() -> None:
    max_attempts, base, cap = 9, 0.5, 30.0
    params = np.array([float(max_attempts), base, cap])
    ks = np.repeat(np.arange(1, max_attempts + 2), 400)
    waits = retry.delays(retry.FULL_JITTER, params, ks, np.random.default_rng(4))
    for k in range(1, max_attempts):
        w = waits[ks == k]
        ceiling = min(cap, base * 2 ** (k - 1))
        assert w.min() >= 0.0 and w.max() <= ceiling
        # uniform on [0, ceiling]: it fills the range, its mean is within 5 sigma of the middle
        assert w.max() > 0.95 * ceiling and w.min() < 0.05 * ceiling
        assert abs(w.mean() - ceiling / 2) < 5 * ceiling / np.sqrt(12 * w.size)
    # k = 7, 8: the cap (0.5 * 2**6 = 32 > 30) binds
    assert waits[ks == 8].max() <= cap
    # after attempt max_attempts fails, the listener abandons
    assert np.all(waits[ks >= max_attempts] == -1.0)
    assert np.all(waits[ks < max_attempts] >= 0.0)


def test_retry_abandons_after_max_attempts() -> None:
    rng = np.random.default_rng(0)
    state = copy.deepcopy(rng.bit_generator.state)
    for kind, params in RETRY_CASES.values():
        m = int(params[0])
        assert retry.delay(kind, params, m, rng) == -1.0
        assert retry.delay(kind, params, m + 5, rng) == -1.0
        if kind != retry.NONE:
            assert retry.delay(kind, params, m - 1, np.random.default_rng(1)) >= 0.0
    assert retry.delay(retry.NONE, np.array([5.0]), 1, rng) == -1.0
    assert rng.bit_generator.state == state  # abandoning draws nothing
    assert retry.delay(retry.CONSTANT, np.array([4.0, 1.25]), 3, rng) == 1.25


# --------------------------------------------------------------------------- placement


def random_fleet(rng: np.random.Generator, n: int, cap: int, horizon: float) -> list[list[float]]:
    """Each node's connection-release times (the twin's lists), some of them on the dot."""
    lists: list[list[float]] = []
    for _ in range(n):
        m = int(rng.integers(0, cap + 1))
        releases = rng.uniform(0.0, horizon, m)
        releases[: m // 5] = np.round(releases[: m // 5], 1)  # some releases on the dot
        lists.append(releases.tolist())
    return lists


def counts_at(lists: list[list[float]], t: float) -> np.ndarray:
    """The kernel's ``cn`` at ``t``: the connections each node still holds (releases ``> t``)."""
    return np.array([twin.held(releases, t) for releases in lists], dtype=np.int64)


@pytest.mark.parametrize("kind", [placement.RANDOM, placement.POWER_OF_TWO, placement.LEAST_LOADED])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_choose_matches_the_twin(kind: int, n: int) -> None:
    rng_fleet = np.random.default_rng(10 * n + kind)
    lists = random_fleet(rng_fleet, n, 30, 10.0)
    ts = np.sort(np.concatenate([rng_fleet.uniform(0.0, 11.0, 2000), np.arange(0.0, 11.0, 0.1)]))
    rng = np.random.default_rng(1234)
    rng_twin = copy.deepcopy(rng)
    loads = set()
    for t in ts.tolist():
        cn = counts_at(lists, t)
        loads.add(tuple(cn.tolist()))
        got = placement.choose(kind, cn, rng)
        want = twin.choose(kind, lists, t, rng_twin)
        assert got == want, t
        assert same_state(rng, rng_twin)
        assert cn.tolist() == counts_at(lists, t).tolist()  # choose only reads the counts
    # the loads changed over time, down to an empty fleet
    assert len(loads) > n and (0,) * n in loads


def test_placement_rules_by_hand() -> None:
    releases = [[5.0, 6.0, 7.0], [5.0], [4.0, 9.0], [3.0]]
    rng = np.random.default_rng(0)
    # least loaded: the lowest index among the least loaded; no draws
    state = copy.deepcopy(rng.bit_generator.state)
    for t, loads, node in [
        (2.0, [3, 1, 2, 1], 1),
        (5.0, [2, 0, 1, 0], 1),  # the releases at 5.0 are done
        (7.0, [0, 0, 1, 0], 0),  # all 0 but node 2
        (9.0, [0, 0, 0, 0], 0),
    ]:
        cn = counts_at(releases, t)
        assert cn.tolist() == loads
        assert placement.choose(placement.LEAST_LOADED, cn, rng) == node
        assert twin.choose(twin.LEAST_LOADED, releases, t, rng) == node
    assert placement.choose(placement.LEAST_LOADED, np.array([4, 2, 3, 2, 9]), rng) == 1
    assert placement.choose(placement.LEAST_LOADED, np.array([0, 0, 5]), rng) == 0
    assert placement.choose(placement.LEAST_LOADED, np.array([5, 5, 4]), rng) == 2
    assert rng.bit_generator.state == state
    # power of two: two distinct nodes, the less loaded, the first drawn on a tie
    loads = [3, 1, 2, 1]
    cn = np.array(loads, dtype=np.int64)
    seen = set()
    for seed in range(200):
        peek = np.random.default_rng(seed)
        i = int(peek.integers(0, 4))
        j = int(peek.integers(0, 3))
        j += j >= i
        rng = np.random.default_rng(seed)
        got = placement.choose(placement.POWER_OF_TWO, cn, rng)
        assert got == (i if loads[i] <= loads[j] else j)
        assert same_state(rng, peek)  # exactly those two draws
        seen.add((i, j))
    assert all(i != j for i, j in seen) and len(seen) == 12  # every ordered pair occurs
    assert cn.tolist() == loads


def test_random_placement_is_uniform() -> None:
    cn = np.array([0, 7, 2, 0], dtype=np.int64)  # the loads do not matter
    rng = np.random.default_rng(8)
    picks = [placement.choose(placement.RANDOM, cn, rng) for _ in range(4000)]
    counts = np.bincount(picks, minlength=4)
    assert counts.sum() == 4000 and np.all(np.abs(counts - 1000) < 5 * np.sqrt(1000 * 0.75))
