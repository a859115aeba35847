"""Closed forms of queueing theory, used to validate the simulated join queue.

The join queue of a room is a first-in-first-out queue in front of ``c`` identical servers
(admission slots). Customers (listeners wanting to join) arrive as a Poisson process of rate
``lam`` per unit time; each service takes an exponential time of rate ``mu`` (mean ``1/mu``).
The *offered load* ``a = lam / mu`` is the mean number of servers that would be busy if no
one were ever turned away; ``rho = a / c`` is the load per server (utilisation).

Models (Kendall notation ``arrivals/service/servers/capacity + patience``):

* **M/M/c/c (Erlang B, the loss system).** No waiting room: an arrival finding all ``c``
  servers busy is lost. The blocking probability is :func:`erlang_b`.
* **M/M/c (Erlang C, the delay system).** Infinite waiting room and infinitely patient
  customers. Stable only if ``a < c``. :func:`erlang_c` is the probability that an arrival
  must wait; the waiting time in queue ``Wq`` is 0 with probability ``1 - C`` and otherwise
  exponential with rate ``c mu - lam`` (see :func:`mmc_wait_cdf`). See :func:`mmc`.
* **M/M/c/K.** At most ``K >= c`` customers in the system (``K - c`` waiting places);
  arrivals finding ``K`` present are *blocked*. Always stable. See :func:`mmck`.
* **M/M/c+M (Erlang A).** Waiting customers are impatient: each abandons the queue after an
  exponential time of rate ``theta`` (mean patience ``1/theta``) unless service starts
  first. With ``theta > 0`` the system is stable for every load, because the abandonment
  rate grows with the queue. Optionally combined with a capacity ``K``. See :func:`erlang_a`.

All of them are birth-death chains on the number ``n`` of customers in the system: birth
(arrival) rate ``lam`` for ``n < K`` and death rate ``min(n, c) mu + max(n - c, 0) theta``
(service completions plus abandonments). :func:`birth_death` computes the stationary
distribution ``pi`` in log space, which stays finite for thousands of servers and offered
loads of ``1e4`` (no factorials are ever formed). By PASTA (Poisson Arrivals See Time
Averages) an arriving customer sees ``pi``, which turns state probabilities into
per-customer probabilities:

* ``p_block = pi_K``: share of all arrivals blocked because the system was full;
* ``p_wait = sum_{c <= n < K} pi_n / (1 - pi_K)``: share of *admitted* customers who found
  every server busy;
* ``mean_in_queue = E[Lq] = sum_n max(n - c, 0) pi_n`` and ``mean_in_system = E[L]``;
* ``p_abandon = theta E[Lq] / lam``: share of all arrivals who abandon (the abandonment
  flow is ``theta`` per waiting customer);
* ``wq = E[Lq] / (lam (1 - pi_K))``: mean time in queue of admitted customers, by Little's
  law on the queue; abandoners count with the time they waited before leaving.

Flow balance ties them together: ``lam (1 - p_block - p_abandon) = mu E[min(n, c)]``, i.e.
the admitted customers who do not abandon are exactly those the busy servers complete.

Erlang B and C use the classic numerically stable recursion
``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))`` and ``C = c B / (c - a (1 - B))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.kernels.checks import integer as _check_int
from sim.kernels.checks import rate as _check_rate

__all__ = [
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
]

#: Relative probability mass (and relative E[Lq] contribution) that may be cut off when an
#: infinite waiting room is truncated.
_TAIL_TOL = 1e-16
#: Upper bound on the number of states of a truncated infinite chain.
_MAX_STATES = 20_000_000


@dataclass(frozen=True)
class QueueMetrics:
    """Stationary performance measures of a FIFO multi-server queue.

    Attributes:
        wq: mean time in queue of admitted (not blocked) customers; abandoners count with
            the time they waited until abandoning.
        p_wait: share of admitted customers who found all servers busy on arrival.
        p_block: share of all arrivals blocked because the system held ``K`` customers.
        p_abandon: share of all arrivals who abandoned the queue before service.
        mean_in_queue: time-average number of waiting customers, E[Lq].
        mean_in_system: time-average number of customers present, E[L].
    """

    wq: float
    p_wait: float
    p_block: float
    p_abandon: float
    mean_in_queue: float
    mean_in_system: float


# --------------------------------------------------------------------------- validation


def _check_servers(c: int) -> int:
    return _check_int("c", c, 1, ">= 1")


def _check_capacity(K: int | None, c: int) -> int | None:
    if K is None:
        return None
    return _check_int("K", K, c, f">= c = {c} (or None for an infinite waiting room)")


def _check_stable(lam: float, mu: float, c: int) -> None:
    if lam >= c * mu:
        raise ValueError(
            f"lam must be < c * mu = {c * mu!r} for a stable M/M/c queue, got lam={lam!r}"
        )


# --------------------------------------------------------------------------- Erlang B / C


def erlang_b(c: int, a: float) -> float:
    """Erlang B: blocking probability of M/M/c/c with offered load ``a = lam / mu``.

    Uses the recursion ``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))``, which is stable
    for any ``c`` and ``a`` (every iterate lies in ``[0, 1]``).
    """
    c = _check_servers(c)
    a = _check_rate("a", a, allow_zero=True)
    b = 1.0
    for k in range(1, c + 1):
        ab = a * b
        b = ab / (k + ab)
    return b


def erlang_b_load(c: int, blocking: float) -> float:
    """The offered load ``a`` at which Erlang B ``(c, a)`` equals ``blocking`` (in (0, 1)).

    Erlang B grows strictly with ``a`` from 0 to 1, so the root is unique; it is bracketed by
    doubling and found by bisection to machine precision. The arrival rate is ``a * mu``.
    """
    c = _check_servers(c)
    if not 0 < blocking < 1:
        raise ValueError(f"blocking = {blocking!r}; allowed: a probability in (0, 1)")
    lo, hi = 0.0, max(1.0, float(c))
    while erlang_b(c, hi) < blocking:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if erlang_b(c, mid) < blocking else (lo, mid)
    return 0.5 * (lo + hi)


def erlang_c(c: int, a: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c; requires ``a < c``.

    Computed from Erlang B via ``C = c B / (c - a (1 - B))``.
    """
    c = _check_servers(c)
    a = _check_rate("a", a, allow_zero=True)
    if a >= c:
        raise ValueError(f"a must be < c = {c} for a stable M/M/c queue, got a={a!r}")
    b = erlang_b(c, a)
    return min(1.0, c * b / (c - a * (1.0 - b)))


# --------------------------------------------------------------------------- M/M/c


def mmc_mean_wait(lam: float, mu: float, c: int) -> float:
    """Mean waiting time in queue ``Wq = C / (c mu - lam)`` of M/M/c (requires lam < c mu)."""
    lam = _check_rate("lam", lam)
    mu = _check_rate("mu", mu)
    c = _check_servers(c)
    _check_stable(lam, mu, c)
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmc_wait_cdf(t: float, lam: float, mu: float, c: int) -> float:
    """``P(Wq <= t) = 1 - C exp(-(c mu - lam) t)`` for M/M/c; 0 for ``t < 0``."""
    lam = _check_rate("lam", lam)
    mu = _check_rate("mu", mu)
    c = _check_servers(c)
    _check_stable(lam, mu, c)
    t = float(t)
    if math.isnan(t):
        raise ValueError(f"t must be a number (not NaN), got {t!r}")
    if t < 0.0:
        return 0.0
    cw = erlang_c(c, lam / mu)
    return 1.0 - cw * math.exp(-(c * mu - lam) * t)


def mmc_wait_quantile(p: float, lam: float, mu: float, c: int) -> float:
    """Smallest ``t >= 0`` with ``P(Wq <= t) >= p`` for M/M/c; ``p`` in ``[0, 1]``.

    Returns 0 when ``p <= 1 - C`` (the atom at zero covers it) and ``inf`` for ``p == 1``.
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    lam = _check_rate("lam", lam)
    mu = _check_rate("mu", mu)
    c = _check_servers(c)
    _check_stable(lam, mu, c)
    cw = erlang_c(c, lam / mu)
    if p <= 1.0 - cw:  # covered by the atom at zero, P(Wq = 0) = 1 - C
        return 0.0
    tail = 1.0 - p  # required P(Wq > t)
    if tail == 0.0:
        return math.inf
    return (math.log(cw) - math.log(tail)) / (c * mu - lam)


def mmc(lam: float, mu: float, c: int) -> QueueMetrics:
    """Stationary metrics of M/M/c (infinite waiting room, patient customers; lam < c mu)."""
    lam = _check_rate("lam", lam)
    mu = _check_rate("mu", mu)
    c = _check_servers(c)
    _check_stable(lam, mu, c)
    a = lam / mu
    cw = erlang_c(c, a)
    wq = cw / (c * mu - lam)
    lq = lam * wq
    return QueueMetrics(
        wq=wq, p_wait=cw, p_block=0.0, p_abandon=0.0, mean_in_queue=lq, mean_in_system=lq + a
    )


# --------------------------------------------------------------------------- birth-death


def _log_weights(
    lam: float, mu: float, c: int, theta: float, n_max: int
) -> npt.NDArray[np.float64]:
    """``log w_n`` for ``n = 0..n_max`` with ``w_0 = 1``, ``w_n = w_{n-1} lam / d_n``."""
    n = np.arange(1, n_max + 1, dtype=np.float64)
    death = np.minimum(n, c) * mu + np.maximum(n - c, 0.0) * theta
    logw = np.empty(n_max + 1, dtype=np.float64)
    logw[0] = 0.0
    np.cumsum(math.log(lam) - np.log(death), out=logw[1:])
    return logw


def _normalise(logw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    w = np.exp(logw - logw.max())
    return w / w.sum()


def birth_death(
    lam: float, mu: float, c: int, theta: float = 0.0, K: int | None = None
) -> npt.NDArray[np.float64]:
    """Stationary distribution ``pi[n]`` of the M/M/c/K+M birth-death chain.

    States ``n = 0..K``; birth rate ``lam`` for ``n < K``; death rate
    ``min(n, c) mu + max(n - c, 0) theta``. Computed in log space (cumulative sums of
    ``log(lam / d_n)``) and normalised after subtracting the maximum, so nothing overflows.

    With ``K=None`` (infinite waiting room) the chain needs ``theta > 0`` or ``lam < c mu``;
    it is truncated where the neglected tail holds less than ``1e-16`` of the probability
    mass (and of E[Lq]), and the returned (renormalised) array covers ``n = 0..N`` for that
    truncation point ``N``.
    """
    lam = _check_rate("lam", lam)
    mu = _check_rate("mu", mu)
    c = _check_servers(c)
    theta = _check_rate("theta", theta, allow_zero=True)
    cap = _check_capacity(K, c)
    if cap is not None:
        return _normalise(_log_weights(lam, mu, c, theta, cap))
    if theta == 0.0:
        _check_stable(lam, mu, c)
    # First state whose death rate reaches lam: beyond it the weights decrease.
    if lam <= c * mu:
        n_peak = c
    else:
        n_peak = c + math.ceil((lam - c * mu) / theta)
    extra = 256
    while True:
        n_max = n_peak + extra
        if n_max > _MAX_STATES:
            raise ValueError(
                f"theta={theta!r} is too small for lam={lam!r} > c * mu={c * mu!r}: the "
                f"infinite chain needs more than {_MAX_STATES} states; pass a finite K"
            )
        logw = _log_weights(lam, mu, c, theta, n_max)
        shift = float(logw.max())
        w = np.exp(logw - shift)
        total = float(w.sum())
        # Weights beyond n_max decay at least geometrically with ratio r (ratios decrease).
        r = lam / (c * mu + (n_max + 1 - c) * theta)
        if r < 1.0:
            w_last = float(w[-1])
            tail_mass = w_last * r / (1.0 - r)
            tail_lq = w_last * ((n_max - c) * r / (1.0 - r) + r / (1.0 - r) ** 2)
            lq = float(np.dot(w[c:], np.arange(0, n_max + 1 - c, dtype=np.float64)))
            if tail_mass <= _TAIL_TOL * total and (tail_lq <= _TAIL_TOL * lq or tail_lq == 0.0):
                return w / total
        extra *= 2


def _metrics(
    pi: npt.NDArray[np.float64], lam: float, mu: float, c: int, theta: float, finite: bool
) -> QueueMetrics:
    n_states = pi.size
    n = np.arange(n_states, dtype=np.float64)
    queue = np.maximum(n - c, 0.0)
    lq = float(np.dot(queue, pi))
    l_sys = float(np.dot(n, pi))
    if finite:
        p_block = float(pi[-1])
        admitted = float(pi[:-1].sum())
        waiting = float(pi[c:-1].sum())
    else:
        p_block = 0.0
        admitted = 1.0
        waiting = float(pi[c:].sum())
    return QueueMetrics(
        wq=lq / (lam * admitted),
        p_wait=min(1.0, waiting / admitted),
        p_block=p_block,
        p_abandon=theta * lq / lam,
        mean_in_queue=lq,
        mean_in_system=l_sys,
    )


def mmck(lam: float, mu: float, c: int, K: int) -> QueueMetrics:
    """Stationary metrics of M/M/c/K: ``c`` servers, at most ``K >= c`` in the system."""
    lam = _check_rate("lam", lam)
    mu = _check_rate("mu", mu)
    c = _check_servers(c)
    cap = _check_int("K", K, c, f">= c = {c} for M/M/c/K")
    pi = birth_death(lam, mu, c, 0.0, cap)
    return _metrics(pi, lam, mu, c, 0.0, finite=True)


def erlang_a(lam: float, mu: float, c: int, theta: float, K: int | None = None) -> QueueMetrics:
    """Stationary metrics of M/M/c+M (Erlang A) with abandonment rate ``theta``.

    ``K=None`` means an infinite waiting room; with ``theta == 0`` this is M/M/c and needs
    ``lam < c mu``. A finite ``K >= c`` caps the number in the system (M/M/c/K+M).
    """
    lam = _check_rate("lam", lam)
    mu = _check_rate("mu", mu)
    c = _check_servers(c)
    theta = _check_rate("theta", theta, allow_zero=True)
    cap = _check_capacity(K, c)
    if cap is None and theta == 0.0:
        return mmc(lam, mu, c)
    pi = birth_death(lam, mu, c, theta, cap)
    return _metrics(pi, lam, mu, c, theta, finite=cap is not None)
