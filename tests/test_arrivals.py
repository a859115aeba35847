"""NHPP arrival kernels against their plain-Python twin, and statistically."""

from __future__ import annotations

import dataclasses
import math

import numba
import numpy as np
import pytest
from scipy import integrate, stats

from sim.kernels.arrivals import (
    NHPPStream,
    Profile,
    iter_parallel,
    iter_thinning,
    sample_parallel,
    sample_thinning,
)
from tests.twins import arrivals as twin

JIT = not numba.config.DISABLE_JIT
BIG = 100_000 if JIT else 2_000  # expected arrivals in statistical tests
SMALL = 3_000 if JIT else 300  # expected arrivals in point-by-point twin comparisons


def reference(total: float | None = None) -> Profile:
    p = Profile(
        np.array([0.0, 60, 120, 600]),
        np.array([2.0, 2, 60, 2]),
        np.array([0, 0, 1]),
        np.array([0.0, 0, 90]),
    )
    return p if total is None else p.scaled(total / p.total())


def random_profile(rng: np.random.Generator, n: int = 6) -> Profile:
    """Mixed linear/exp segments, some with zero rate on both ends (zero mass)."""
    t = np.concatenate(([rng.uniform(0, 5)], rng.uniform(0.5, 20, n))).cumsum()
    rate = rng.uniform(0, 10, n + 1)
    rate[rng.random(n + 1) < 0.25] = 0.0
    zero = rng.integers(n)
    rate[zero : zero + 2] = 0.0
    shape = rng.integers(0, 2, n)
    tau = np.where(shape == 1, rng.choice([0.2, 3.0, 50.0], n), 0.0)
    return Profile(t, rate, shape, tau)


def mixed_profile(total: float) -> Profile:
    """Zero gap, ramp from 0, slow exp decay (vectorised Newton for small windows), fast exp
    rise (scalar Newton), exp decay to 0, exp rise from 0 (rate 0 at the knot)."""
    p = Profile.from_points(
        [(1.0, 0.0), (3.0, 0.0), (5.0, 8.0), (9.0, 1.0), (12.0, 6.0), (20.0, 0.0), (25.0, 3.0)],
        ["linear", "linear", "exp", "exp", "exp", "exp"],
        [0.0, 0.0, 60.0, 0.4, 2.0, 1.0],
    )
    return p.scaled(total / p.total())


# ---------------------------------------------------------------- profile and Lambda
def test_reference_total() -> None:
    p = reference()
    exact = 120 + 1860 + 960 + 5220 * (1 - math.exp(-480 / 90))
    assert p.total() == pytest.approx(8134.8, rel=1e-6)
    assert p.cumulative(600.0) == pytest.approx(exact, rel=1e-13)
    assert p.cumulative(1e9) == p.total() and p.cumulative(-1.0) == 0.0
    assert p.end_s == 600.0 and p.start_s == 0.0
    assert p.scaled(3.0).total() == pytest.approx(3 * exact, rel=1e-13)
    np.testing.assert_allclose(p.rate_at(np.array([-1, 30, 90, 120, 600])), [0, 2, 31, 60, 0])


def test_cumulative_and_rate_match_twin() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = random_profile(rng)
        xs = rng.uniform(p.start_s - 2, p.end_s + 2, 40)
        xs[:3] = p.t[:3]
        got, rates = p.cumulative(xs), p.rate_at(xs)
        want = [twin.cumulative(p, x) for x in xs]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * p.total())
        np.testing.assert_allclose(rates, [twin.rate_at(p, x) for x in xs], rtol=1e-12)
        np.testing.assert_allclose(p.cum, [twin.cumulative(p, x) for x in p.t], rtol=1e-9)


def test_twin_cumulative_is_the_integral_of_the_rate() -> None:
    p = random_profile(np.random.default_rng(2))
    for x in np.linspace(p.start_s, p.end_s, 7):
        quad = sum(
            integrate.quad(lambda s: twin.rate_at(p, s), a, min(b, x))[0]
            for a, b in zip(p.t[:-1], p.t[1:], strict=True)
            if a < x
        )
        assert twin.cumulative(p, x) == pytest.approx(quad, rel=1e-9, abs=1e-9)


def test_inverse_round_trips_and_matches_twin() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = random_profile(rng)
        y = rng.uniform(0, p.total(), 50)
        y[0] = 0.0
        x = p.inverse(y)
        assert np.all((x >= p.start_s) & (x < p.end_s))
        np.testing.assert_allclose(p.cumulative(x), y, rtol=1e-9, atol=1e-9 * p.total())
        np.testing.assert_allclose(x, [twin.inverse(p, v) for v in y], rtol=1e-9)
        assert np.all(p.rate_at(x[1:]) > 0)  # never inside a zero-rate stretch
    p = reference()
    assert p.inverse(p.total()) == math.inf and math.isnan(p.inverse(-1.0))
    gap = Profile.from_points([(0, 1), (1, 0), (4, 0), (5, 1)])
    assert gap.inverse(0.5) == pytest.approx(4.0)  # inf{t: Lambda(t) > y}: skips the gap


# ---------------------------------------------------------------- validation
BAD = [
    ("t", dict(t=[0, 10, 10])),
    ("t", dict(t=[-1, 10, 20])),
    ("t", dict(t=[0, np.nan, 20])),
    ("rate", dict(rate=[1, -2, 3])),
    ("rate", dict(rate=[1, 2])),
    ("shape", dict(shape=[0, 2])),
    ("shape", dict(shape=[0, 0.5])),
    ("tau", dict(shape=[0, 1], tau=[0, 0])),
    ("tau", dict(tau=[0, np.inf])),
]


@pytest.mark.parametrize(("field", "change"), BAD)
def test_invalid_profile_names_the_field(field: str, change: dict[str, object]) -> None:
    args: dict[str, object] = dict(t=[0, 10, 20], rate=[1, 2, 3], shape=[0, 1], tau=[0, 5])
    with pytest.raises(ValueError, match=rf"Profile\.{field}"):
        Profile(**{**args, **change})  # type: ignore[arg-type]


def test_profile_is_frozen_and_from_points_checks_shapes() -> None:
    p = reference()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.t = np.zeros(2)  # type: ignore[misc]
    with pytest.raises(ValueError):
        p.rate[0] = 5.0
    with pytest.raises(ValueError, match=r"Profile\.shape"):
        Profile.from_points([(0, 1), (1, 2)], ["cubic"])
    with pytest.raises(ValueError, match="factor"):
        p.scaled(-1.0)


# ---------------------------------------------------------------- streaming sampler
def test_stream_matches_twin() -> None:
    p = mixed_profile(SMALL)
    ticks = np.arange(0.0, 27.0, 0.7)
    kern, tw = NHPPStream(p, np.random.default_rng(4)), twin.Stream(p, np.random.default_rng(4))
    a = np.concatenate([kern.next_batch(x) for x in ticks])
    b = np.concatenate([tw.next_batch(x) for x in ticks])
    assert a.size == b.size > 0.5 * SMALL
    np.testing.assert_allclose(a, b, rtol=1e-9)
    assert kern.exhausted


def test_stream_is_independent_of_batch_boundaries() -> None:
    p = reference(BIG)
    runs = []
    for step in (0.1, 7.0, 1e4):
        s = NHPPStream(p, np.random.default_rng(5))
        runs.append(np.concatenate([s.next_batch(x) for x in np.arange(step, 600 + step, step)]))
    s = NHPPStream(p, np.random.default_rng(5))
    chunks = list(s.iter_chunks(700.0, max_chunk=997))
    assert max(c.size for c in chunks) <= 997
    runs.append(np.concatenate(chunks))
    for r in runs[1:]:
        assert np.array_equal(r, runs[0])
    with pytest.raises(ValueError, match="t_end"):
        s.next_batch(10.0)


def check_nhpp(arr: np.ndarray, p: Profile) -> None:
    """Sorted, inside [t0, tn), Poisson count, and Lambda(t)/Lambda(T) uniform (KS)."""
    lam = p.total()
    assert np.all(np.diff(arr) >= 0)
    assert arr[0] >= p.start_s and arr[-1] < p.end_s
    assert abs(arr.size - lam) < 4 * math.sqrt(lam)
    assert stats.kstest(p.cumulative(arr) / lam, "uniform").pvalue > 1e-3


def test_stream_statistics() -> None:
    for p in (reference(BIG), mixed_profile(BIG)):
        check_nhpp(NHPPStream(p, np.random.default_rng(6)).next_batch(math.inf), p)


# ---------------------------------------------------------------- parallel sampler
def test_parallel_is_independent_of_threads_and_chunks() -> None:
    p = reference(BIG)
    n_max = min(2, numba.config.NUMBA_NUM_THREADS)
    one = sample_parallel(p, seed=7, n_threads=1)
    two = sample_parallel(p, seed=7, n_threads=n_max)
    assert np.array_equal(one, two)
    chunks = list(iter_parallel(p, seed=7, max_chunk=BIG // 10))
    assert max(c.size for c in chunks) <= BIG // 10
    assert np.array_equal(np.concatenate(chunks), one)
    assert not np.array_equal(sample_parallel(p, seed=8), one)


@pytest.mark.parametrize("window_s", [0.1, 0.02, 7.0])
def test_parallel_matches_twin(window_s: float) -> None:
    p = mixed_profile(SMALL)
    a = sample_parallel(p, seed=9, window_s=window_s)
    b = twin.sample_parallel(p, seed=9, window_s=window_s)
    assert a.size == b.size > 0.5 * SMALL
    np.testing.assert_allclose(a, b, rtol=1e-9)


def test_parallel_statistics() -> None:
    for p, w in ((reference(BIG), 0.1), (mixed_profile(BIG), 0.05), (mixed_profile(BIG), 3.0)):
        check_nhpp(sample_parallel(p, seed=10, window_s=w), p)
    with pytest.raises(ValueError, match="window_s"):
        sample_parallel(reference(), seed=1, window_s=0.0)


# ---------------------------------------------------------------- thinning
@numba.njit(cache=True)
def wave(t: float) -> float:
    return 5.0 + 4.0 * math.sin(t)


@numba.njit(cache=True)
def too_high(t: float) -> float:
    return 3.0 if t > 2.0 else 1.0


def test_thinning_matches_twin_and_statistics() -> None:
    a = sample_thinning(wave, 9.0, 0.0, 50.0, np.random.default_rng(11))
    b = twin.thinning(wave, 9.0, 0.0, 50.0, np.random.default_rng(11))
    np.testing.assert_allclose(a, b, rtol=1e-12)
    p = mixed_profile(SMALL)
    c = sample_thinning(p, None, None, None, np.random.default_rng(12))
    lam_max = float(p.rate.max())
    d = twin.thinning(
        lambda t: twin.rate_at(p, t), lam_max, p.start_s, p.end_s, np.random.default_rng(12)
    )
    assert c.size == d.size
    np.testing.assert_allclose(c, d, rtol=1e-12)
    q = mixed_profile(BIG)
    check_nhpp(sample_thinning(q, None, None, None, np.random.default_rng(13)), q)


@pytest.mark.parametrize("max_chunk", [1, 7, 1000])
def test_thinning_chunks_are_bounded_and_change_nothing(max_chunk: int) -> None:
    whole = sample_thinning(wave, 9.0, 0.0, 50.0, np.random.default_rng(21))
    chunks = list(iter_thinning(wave, 9.0, 0.0, 50.0, np.random.default_rng(21), max_chunk))
    assert all(0 < c.size <= max_chunk for c in chunks)
    assert np.array_equal(np.concatenate(chunks), whole)


def test_thinning_rejects_a_violated_bound() -> None:
    with pytest.raises(ValueError, match="outside"):
        sample_thinning(too_high, 2.0, 0.0, 100.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="lam_max"):
        sample_thinning(wave, 0.0, 0.0, 1.0, np.random.default_rng(0))
    if JIT:
        with pytest.raises(TypeError, match="njit"):
            sample_thinning(lambda t: 1.0, 2.0, 0.0, 1.0, np.random.default_rng(0))
