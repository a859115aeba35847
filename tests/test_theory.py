"""Tests of the queueing-theory closed forms in :mod:`sim.theory`."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from sim import theory
from sim.theory import (
    QueueMetrics,
    birth_death,
    erlang_a,
    erlang_b,
    erlang_c,
    mmc,
    mmc_mean_wait,
    mmc_wait_cdf,
    mmc_wait_quantile,
    mmck,
)

# --------------------------------------------------------------------------- references


def _erlang_b_exact(c: int, a: Fraction) -> Fraction:
    """Erlang B from the factorial formula (a^c/c!) / sum_k a^k/k!, in exact arithmetic."""
    terms = [a**k / math.factorial(k) for k in range(c + 1)]
    return terms[-1] / sum(terms)


def _erlang_c_exact(c: int, a: Fraction) -> Fraction:
    """Erlang C from its factorial formula, in exact arithmetic (a < c)."""
    head = sum(a**k / math.factorial(k) for k in range(c))
    last = a**c / math.factorial(c) * c / (c - a)
    return last / (head + last)


def _mmck_exact(lam: Fraction, mu: Fraction, c: int, k_cap: int) -> list[Fraction]:
    """Stationary distribution of M/M/c/K from the product form, in exact arithmetic."""
    weights = [Fraction(1)]
    for n in range(1, k_cap + 1):
        weights.append(weights[-1] * lam / (min(n, c) * mu))
    total = sum(weights)
    return [w / total for w in weights]


def _busy_servers(pi: np.ndarray, c: int) -> float:
    return float(np.dot(np.minimum(np.arange(pi.size), c), pi))


# --------------------------------------------------------------------------- Erlang B / C


@pytest.mark.parametrize("a", [0.0, 0.1, 1.0, 3.7, 50.0])
def test_erlang_b_single_server(a: float) -> None:
    assert erlang_b(1, a) == pytest.approx(a / (1 + a), rel=1e-15, abs=0.0)


def test_erlang_b_known_value() -> None:
    assert erlang_b(10, 5.0) == pytest.approx(0.018384570336648, rel=1e-12)
    assert erlang_b(10, 5.0) == pytest.approx(float(_erlang_b_exact(10, Fraction(5))), rel=1e-13)


@pytest.mark.parametrize("c", [1, 2, 5, 13, 30])
@pytest.mark.parametrize("a", ["0.5", "2.25", "7", "29.5"])
def test_erlang_b_matches_factorial_formula(c: int, a: str) -> None:
    exact = float(_erlang_b_exact(c, Fraction(a)))
    assert erlang_b(c, float(a)) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize(("c", "a"), [(1, 0.5), (2, 1.5), (10, 5.0), (13, 12.5), (30, 20.0)])
def test_erlang_c_matches_factorial_formula_and_identity(c: int, a: float) -> None:
    exact = float(_erlang_c_exact(c, Fraction(a)))
    got = erlang_c(c, a)
    assert got == pytest.approx(exact, rel=1e-12)
    b = erlang_b(c, a)
    assert got == pytest.approx(c * b / (c - a * (1 - b)), rel=1e-14)
    assert b < got < 1.0  # waiting is likelier than losing in the loss system


def test_erlang_c_single_server_is_rho() -> None:
    assert erlang_c(1, 0.3) == pytest.approx(0.3, rel=1e-14)


def test_erlang_b_c_zero_load() -> None:
    assert erlang_b(5, 0.0) == 0.0
    assert erlang_c(5, 0.0) == 0.0


# --------------------------------------------------------------------------- M/M/c


@pytest.mark.parametrize(("lam", "mu"), [(0.5, 1.0), (3.0, 4.0), (0.99, 1.0)])
def test_mm1_mean_wait(lam: float, mu: float) -> None:
    rho = lam / mu
    assert mmc_mean_wait(lam, mu, 1) == pytest.approx(rho / (mu - lam), rel=1e-12)
    m = mmc(lam, mu, 1)
    assert m.wq == pytest.approx(rho / (mu - lam), rel=1e-12)
    assert m.p_wait == pytest.approx(rho, rel=1e-12)
    assert m.mean_in_system == pytest.approx(rho / (1 - rho), rel=1e-12)
    assert m.mean_in_queue == pytest.approx(rho**2 / (1 - rho), rel=1e-12)
    assert m.p_block == 0.0
    assert m.p_abandon == 0.0


def test_mmc_little_and_consistency() -> None:
    lam, mu, c = 7.0, 1.0, 9
    m = mmc(lam, mu, c)
    assert m.p_wait == pytest.approx(erlang_c(c, lam / mu), rel=1e-14)
    assert m.wq == pytest.approx(mmc_mean_wait(lam, mu, c), rel=1e-14)
    assert m.mean_in_queue == pytest.approx(lam * m.wq, rel=1e-14)
    assert m.mean_in_system == pytest.approx(m.mean_in_queue + lam / mu, rel=1e-14)


def test_mmc_matches_truncated_birth_death() -> None:
    lam, mu, c = 7.0, 1.5, 6
    pi = birth_death(lam, mu, c)
    m = mmc(lam, mu, c)
    assert pi.sum() == pytest.approx(1.0, rel=1e-14)
    n = np.arange(pi.size)
    assert float(np.dot(n, pi)) == pytest.approx(m.mean_in_system, rel=1e-12)
    assert float(pi[c:].sum()) == pytest.approx(m.p_wait, rel=1e-12)


@pytest.mark.parametrize(("lam", "mu", "c"), [(0.5, 1.0, 1), (7.0, 1.0, 9), (95.0, 1.0, 100)])
def test_wait_cdf_and_quantile(lam: float, mu: float, c: int) -> None:
    cw = erlang_c(c, lam / mu)
    assert mmc_wait_cdf(0.0, lam, mu, c) == pytest.approx(1 - cw, rel=1e-14)
    assert mmc_wait_cdf(-1.0, lam, mu, c) == 0.0
    assert mmc_wait_cdf(1e6, lam, mu, c) == pytest.approx(1.0, abs=1e-15)
    # Mean of the distribution: integral of the survival function = C / (c mu - lam).
    assert cw / (c * mu - lam) == pytest.approx(mmc_mean_wait(lam, mu, c), rel=1e-14)
    for p in [0.0, 0.5 * (1 - cw), 1 - cw]:
        assert mmc_wait_quantile(p, lam, mu, c) == 0.0
    for p in [1 - cw + 1e-6, 1 - 0.5 * cw, 0.9, 0.99, 0.999999]:
        if p <= 1 - cw:
            continue
        t = mmc_wait_quantile(p, lam, mu, c)
        assert t > 0.0
        assert mmc_wait_cdf(t, lam, mu, c) == pytest.approx(p, rel=1e-12)
    assert mmc_wait_quantile(1.0, lam, mu, c) == math.inf


def test_wait_quantile_monotone() -> None:
    ts = [mmc_wait_quantile(p, 9.0, 1.0, 10) for p in np.linspace(0.0, 0.999, 50)]
    assert all(b >= a for a, b in itertools.pairwise(ts))


# --------------------------------------------------------------------------- M/M/c/K


@pytest.mark.parametrize(("lam", "mu", "c"), [(0.5, 1.0, 1), (5.0, 1.0, 10), (30.0, 2.0, 12)])
def test_mmck_with_k_equal_c_is_erlang_b(lam: float, mu: float, c: int) -> None:
    m = mmck(lam, mu, c, c)
    assert m.p_block == pytest.approx(erlang_b(c, lam / mu), rel=1e-12)
    assert m.p_wait == 0.0
    assert m.wq == 0.0
    assert m.mean_in_queue == 0.0
    assert m.mean_in_system == pytest.approx(lam / mu * (1 - m.p_block), rel=1e-12)


@pytest.mark.parametrize(("lam", "mu", "c", "k_cap"), [(2.0, 1.0, 3, 7), (9.0, 2.0, 4, 10)])
def test_mmck_matches_exact_product_form(lam: float, mu: float, c: int, k_cap: int) -> None:
    exact = _mmck_exact(Fraction(lam), Fraction(mu), c, k_cap)
    pi = birth_death(lam, mu, c, 0.0, k_cap)
    assert pi.size == k_cap + 1
    np.testing.assert_allclose(pi, [float(x) for x in exact], rtol=1e-12)
    m = mmck(lam, mu, c, k_cap)
    lq = sum(max(n - c, 0) * p for n, p in enumerate(exact))
    admitted = 1 - exact[-1]
    assert m.p_block == pytest.approx(float(exact[-1]), rel=1e-12)
    assert m.mean_in_queue == pytest.approx(float(lq), rel=1e-12)
    assert m.wq == pytest.approx(float(lq / (Fraction(lam) * admitted)), rel=1e-12)
    assert m.p_wait == pytest.approx(float(sum(exact[c:k_cap]) / admitted), rel=1e-12)


def test_mmck_large_k_converges_to_mmc() -> None:
    lam, mu, c = 8.0, 1.0, 10
    big = mmck(lam, mu, c, 2000)
    ref = mmc(lam, mu, c)
    assert big.p_block < 1e-150
    assert big.wq == pytest.approx(ref.wq, rel=1e-12)
    assert big.p_wait == pytest.approx(ref.p_wait, rel=1e-12)
    assert big.mean_in_queue == pytest.approx(ref.mean_in_queue, rel=1e-12)
    assert big.mean_in_system == pytest.approx(ref.mean_in_system, rel=1e-12)
    # The error shrinks as K grows.
    small = mmck(lam, mu, c, 20)
    mid = mmck(lam, mu, c, 60)
    assert abs(small.wq - ref.wq) > abs(mid.wq - ref.wq) > abs(big.wq - ref.wq)


def test_mmck_overloaded_is_finite() -> None:
    m = mmck(50.0, 1.0, 10, 40)
    assert 0.0 < m.p_block < 1.0
    assert m.p_wait == pytest.approx(1.0, rel=1e-9)
    # Admitted throughput equals the service throughput.
    pi = birth_death(50.0, 1.0, 10, 0.0, 40)
    assert 50.0 * (1 - m.p_block) == pytest.approx(_busy_servers(pi, 10), rel=1e-12)


# --------------------------------------------------------------------------- Erlang A


@pytest.mark.parametrize(("lam", "mu", "c"), [(0.5, 1.0, 1), (7.0, 1.0, 9), (45.0, 0.5, 100)])
def test_erlang_a_tiny_theta_approaches_mmc(lam: float, mu: float, c: int) -> None:
    ref = mmc(lam, mu, c)
    m = erlang_a(lam, mu, c, 1e-9)
    assert m.wq == pytest.approx(ref.wq, rel=1e-6)
    assert m.p_wait == pytest.approx(ref.p_wait, rel=1e-6)
    assert m.mean_in_queue == pytest.approx(ref.mean_in_queue, rel=1e-6)
    assert m.mean_in_system == pytest.approx(ref.mean_in_system, rel=1e-6)
    assert 0.0 < m.p_abandon < 1e-6
    assert m.p_block == 0.0


def test_erlang_a_theta_zero_infinite_room_is_mmc() -> None:
    assert erlang_a(7.0, 1.0, 9, 0.0) == mmc(7.0, 1.0, 9)


@pytest.mark.parametrize(("lam", "mu", "c", "k_cap"), [(2.0, 1.0, 3, 7), (30.0, 2.0, 12, 30)])
def test_erlang_a_theta_zero_finite_k_is_mmck(lam: float, mu: float, c: int, k_cap: int) -> None:
    assert erlang_a(lam, mu, c, 0.0, k_cap) == mmck(lam, mu, c, k_cap)


def test_erlang_a_single_server_equal_rates() -> None:
    # With mu = theta the chain with c = 1 has death rate n * mu for n >= 1: the number in
    # the system is Poisson(a), exactly as in M/M/infinity.
    lam, mu = 2.0, 1.0
    m = erlang_a(lam, mu, 1, mu)
    a = lam / mu
    assert m.mean_in_system == pytest.approx(a, rel=1e-13)
    assert m.p_wait == pytest.approx(1 - math.exp(-a), rel=1e-13)
    assert m.mean_in_queue == pytest.approx(a - (1 - math.exp(-a)), rel=1e-13)


@pytest.mark.parametrize(
    ("lam", "mu", "c", "theta", "k_cap"),
    [
        (2.0, 1.0, 1, 1.0, None),
        (12.0, 1.0, 10, 0.5, None),
        (15.0, 1.0, 10, 0.2, None),  # overloaded: stable only thanks to abandonment
        (15.0, 1.0, 10, 0.2, 25),
        (5.0, 1.0, 10, 2.0, 12),
        (100.0, 0.1, 50, 0.01, 400),
    ],
)
def test_erlang_a_flow_balance(
    lam: float, mu: float, c: int, theta: float, k_cap: int | None
) -> None:
    m = erlang_a(lam, mu, c, theta, k_cap)
    pi = birth_death(lam, mu, c, theta, k_cap)
    assert pi.sum() == pytest.approx(1.0, rel=1e-14)
    if k_cap is not None:
        assert pi.size == k_cap + 1
    for p in (m.p_wait, m.p_block, m.p_abandon):
        assert 0.0 <= p <= 1.0
    served = lam * (1 - m.p_block - m.p_abandon)
    assert served == pytest.approx(mu * _busy_servers(pi, c), rel=1e-12)
    assert m.mean_in_system == pytest.approx(m.mean_in_queue + _busy_servers(pi, c), rel=1e-12)
    # Little's law on the queue, restricted to admitted customers.
    assert m.mean_in_queue == pytest.approx(lam * (1 - m.p_block) * m.wq, rel=1e-12)
    # Each admitted waiting customer abandons with probability at most 1.
    assert m.p_abandon <= m.p_wait * (1 - m.p_block) + 1e-15


def test_erlang_a_more_patience_means_longer_waits() -> None:
    waits = [erlang_a(11.0, 1.0, 10, th).wq for th in (2.0, 1.0, 0.5, 0.1)]
    assert waits == sorted(waits)
    aband = [erlang_a(11.0, 1.0, 10, th).p_abandon for th in (2.0, 1.0, 0.5, 0.1)]
    assert aband == sorted(aband, reverse=True)


def test_erlang_a_heavy_overload_is_fluid_limit() -> None:
    # Far in overload all servers are busy and the excess (lam - c mu) abandons.
    lam, mu, c, theta = 1e4, 1.0, 5000, 0.1
    m = erlang_a(lam, mu, c, theta)
    assert m.p_abandon == pytest.approx((lam - c * mu) / lam, rel=1e-9)
    assert m.mean_in_queue == pytest.approx((lam - c * mu) / theta, rel=1e-9)
    assert m.p_wait == pytest.approx(1.0, rel=1e-12)


# --------------------------------------------------------------------------- stability


def test_large_c_is_finite() -> None:
    c, a = 2000, 1900.0
    b, cw = erlang_b(c, a), erlang_c(c, a)
    assert 0.0 < b < cw < 1.0
    m = mmc(a, 1.0, c)
    assert math.isfinite(m.wq) and m.wq > 0.0
    assert 0.0 < m.p_wait < 1.0
    bigk = mmck(a, 1.0, c, c + 500)
    assert bigk.p_wait == pytest.approx(m.p_wait, rel=1e-9)
    assert mmck(a, 1.0, c, c).p_block == pytest.approx(b, rel=1e-9)
    ea = erlang_a(a, 1.0, c, 1e-9)
    assert ea.wq == pytest.approx(m.wq, rel=1e-6)
    for metrics in (m, bigk, ea, erlang_a(2100.0, 1.0, c, 0.5, c + 300)):
        for p in (metrics.p_wait, metrics.p_block, metrics.p_abandon):
            assert 0.0 <= p <= 1.0
        assert all(math.isfinite(getattr(metrics, f)) for f in QueueMetrics.__dataclass_fields__)


def test_huge_load_erlang_b() -> None:
    # a = 1e4 with c = 9000 servers: the classic factorial formula would overflow.
    b = erlang_b(9000, 1e4)
    assert 0.0 < b < 1.0
    # Overload asymptote: B ~ 1 - c/a.
    assert b == pytest.approx(1 - 9000 / 1e4, rel=0.02)
    m = mmck(1e4, 1.0, 9000, 9000)
    assert m.p_block == pytest.approx(b, rel=1e-9)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: erlang_b(0, 1.0), "c"),
        (lambda: erlang_b(2, -1.0), "a"),
        (lambda: erlang_b(2, math.nan), "a"),
        (lambda: erlang_b(2.5, 1.0), "c"),  # type: ignore[arg-type]
        (lambda: erlang_c(2, 2.0), "a"),
        (lambda: mmc(0.0, 1.0, 1), "lam"),
        (lambda: mmc(-1.0, 1.0, 1), "lam"),
        (lambda: mmc(1.0, 0.0, 1), "mu"),
        (lambda: mmc(1.0, math.inf, 1), "mu"),
        (lambda: mmc(1.0, 1.0, 0), "c"),
        (lambda: mmc(2.0, 1.0, 2), "lam"),
        (lambda: mmc_mean_wait(3.0, 1.0, 2), "lam"),
        (lambda: mmc_wait_cdf(1.0, 3.0, 1.0, 2), "lam"),
        (lambda: mmc_wait_cdf(math.nan, 1.0, 1.0, 2), "t"),
        (lambda: mmc_wait_quantile(1.5, 1.0, 1.0, 2), "p"),
        (lambda: mmc_wait_quantile(-0.1, 1.0, 1.0, 2), "p"),
        (lambda: mmck(1.0, 1.0, 3, 2), "K"),
        (lambda: mmck(1.0, 1.0, 0, 2), "c"),
        (lambda: mmck(1.0, -1.0, 1, 2), "mu"),
        (lambda: erlang_a(1.0, 1.0, 1, -0.5), "theta"),
        (lambda: erlang_a(1.0, 1.0, 3, 0.5, 1), "K"),
        (lambda: erlang_a(3.0, 1.0, 2, 0.0), "lam"),
        (lambda: birth_death(0.0, 1.0, 1), "lam"),
        (lambda: birth_death(3.0, 1.0, 2, 0.0, None), "lam"),
        (lambda: birth_death(1e4, 1.0, 10, 1e-12), "theta"),
    ],
)
def test_invalid_input_names_argument(call: object, name: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=rf"\b{name}\b") as info:
        call()
    message = str(info.value)
    assert message.startswith(name) or f"{name}=" in message


def test_public_api() -> None:
    assert set(theory.__all__) == {
        "QueueMetrics",
        "birth_death",
        "erlang_a",
        "erlang_b",
        "erlang_c",
        "mmc",
        "mmc_mean_wait",
        "mmc_wait_cdf",
        "mmc_wait_quantile",
        "mmck",
    }
    m = mmc(0.5, 1.0, 1)
    with pytest.raises(AttributeError):
        m.wq = 2.0  # type: ignore[misc]
