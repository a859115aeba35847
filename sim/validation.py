"""Validating the join queue against queueing theory: ``spacesim validate``.

The engine's join queue (:func:`sim.kernels.queue.offer`) is simulated alone, as the textbook
M/M/c/K+M queue (:mod:`sim.kernels.mmc`), and four long-run quantities are compared with their
closed forms (:mod:`sim.theory`):

- ``wq``: mean time in queue of admitted customers (abandoners count with the time they waited);
- ``p_wait``: share of admitted customers who found every server busy;
- ``p_block``: share of all arrivals blocked because the system held ``K`` customers;
- ``p_abandon``: share of all arrivals who abandoned the queue before service.

**Replications and confidence intervals.** One long run gives one estimate, but its error is hard
to judge: successive customers' waits are strongly correlated. Instead ``R`` independent
replications are run (seeds from ``np.random.SeedSequence(seed).spawn(R)``), each starting empty,
simulating a warm-up of customers that is thrown away (the empty start is not typical of the
stationary queue) and then ``customers`` counted customers. Each replication gives one ratio
estimate per quantity, e.g. ``wq_r = total wait / admitted``. These ``R`` numbers are independent
and, for long runs, nearly normal, so their mean ``x`` has the 95% confidence half-width
``h = t_{0.975, R-1} s / sqrt(R)`` (``s`` their sample standard deviation, ``t`` Student's
quantile). The closed form ``y`` *passes* when ``|x - y| <= 1.5 h``: the interval is widened by
50% so that a correct simulation fails only rarely (about 1% per quantity at ``R = 10``), while a
systematic error larger than the interval is still caught.

**Shares that never (or always) happen.** When the event behind a share occurred in none (or in
all) of the ``n`` pooled trials, say nobody was blocked, every replication gives the same 0 and
``s = 0``: the t interval has zero width although the data only say that the share is small.
Then ``h`` is the exact (Clopper-Pearson) 95% bound instead: ``1 - 0.025^(1/n)``, about
``3.7 / n``. ``wq`` is 0 in every replication exactly when nobody waited; its ``h`` is then that
bound on ``p_wait`` times the closed-form mean wait of those who wait (``wq / p_wait``), so ``wq``
passes exactly when the bound on ``p_wait`` does. A closed form of exactly 0 (``p_block`` without
``K``, ``p_abandon`` without ``theta``, ``wq`` and ``p_wait`` when ``K == c``) always passes then.

**Which closed form.** ``theta`` given: Erlang A (:func:`sim.theory.erlang_a`, with or without
``K``); otherwise ``K`` given: M/M/c/K (:func:`sim.theory.mmck`, Erlang B when ``K == c``);
otherwise M/M/c (:func:`sim.theory.mmc`, Erlang C), which needs ``lam < c mu``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
from scipy import stats

from sim import theory
from sim.kernels.checks import integer as _integer
from sim.kernels.checks import rate as _rate
from sim.kernels.mmc import JoinQueueSim, JoinQueueStats

__all__ = [
    "QUANTITIES",
    "Quantity",
    "ValidationReport",
    "format_report",
    "main",
    "model_name",
    "validate",
]

log = logging.getLogger(__name__)

#: The compared quantities, in report order (names as in :class:`sim.theory.QueueMetrics`).
QUANTITIES = ("wq", "p_wait", "p_block", "p_abandon")
#: Default widening of the 95% confidence interval in the pass criterion.
WIDEN = 1.5


@dataclass(frozen=True)
class Quantity:
    """A simulated mean over replications, its 95% confidence half-width and the closed form."""

    sim: float
    ci95: float
    theory: float

    def covered(self, widen: float = WIDEN) -> bool:
        """Whether the closed form lies within ``sim ± widen * ci95`` (False if anything is NaN)."""
        return abs(self.theory - self.sim) <= widen * self.ci95


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of :func:`validate`.

    Attributes:
        quantities: ``wq``, ``p_wait``, ``p_block`` and ``p_abandon``, in that order.
        customers: counted customers per replication (after the warm-up).
        reps: number of independent replications.
        wall_s: wall-clock time of the simulation, in seconds.
    """

    quantities: dict[str, Quantity]
    customers: int
    reps: int
    wall_s: float

    def failures(self, widen: float = WIDEN) -> list[str]:
        """Names of the quantities whose closed form lies outside ``sim ± widen * ci95``."""
        return [name for name, q in self.quantities.items() if not q.covered(widen)]

    def passed(self, widen: float = WIDEN) -> bool:
        """True when every closed form lies within its confidence interval widened by ``widen``."""
        return not self.failures(widen)

    def to_dict(self) -> dict[str, Any]:
        """``{"quantities": {name: {"sim", "ci95", "theory"}}, "customers", "reps", "wall_s"}``."""
        return {
            "quantities": {
                name: {"sim": q.sim, "ci95": q.ci95, "theory": q.theory}
                for name, q in self.quantities.items()
            },
            "customers": self.customers,
            "reps": self.reps,
            "wall_s": self.wall_s,
        }

    def to_json(self, indent: int | None = None) -> str:
        """The report as JSON text (see :meth:`to_dict`); a NaN estimate is written as null."""

        def finite(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: finite(v) for k, v in x.items()}
            if isinstance(x, float) and not math.isfinite(x):
                return None
            return x

        return json.dumps(finite(self.to_dict()), indent=indent, allow_nan=False)


# --------------------------------------------------------------------------- input checks


def model_name(c: int, K: int | None = None, theta: float | None = None) -> str:
    """Kendall notation of the validated queue, e.g. ``M/M/4``, ``M/M/4/10+M``."""
    name = f"M/M/{c}" + ("" if K is None else f"/{K}")
    return name + ("+M" if theta else "")


def _closed_form(
    lam: float, mu: float, c: int, K: int | None, theta: float | None
) -> theory.QueueMetrics:
    if theta is not None:
        return theory.erlang_a(lam, mu, c, theta, K)
    if K is not None:
        return theory.mmck(lam, mu, c, K)
    return theory.mmc(lam, mu, c)


def _estimates(s: JoinQueueStats) -> list[float]:
    return [s.wq, s.p_wait, s.p_block, s.p_abandon]


def _binomial_bound(n: int) -> float:
    """Clopper-Pearson 95% bound ``1 - 0.025^(1/n)`` on a share seen in none of ``n`` trials."""
    return -math.expm1(math.log(0.025) / n)


def _degenerate_shares(
    runs: Sequence[JoinQueueStats], expected: theory.QueueMetrics, half: dict[str, float]
) -> None:
    """Replace the zero-width t intervals of shares seen in none or all trials (see above)."""
    admitted = sum(r.admitted for r in runs)
    arrivals = sum(r.arrivals for r in runs)
    pooled = {
        "p_wait": (sum(r.waited for r in runs), admitted),
        "p_block": (sum(r.blocked for r in runs), arrivals),
        "p_abandon": (sum(r.abandoned for r in runs), arrivals),
    }
    for name, (k, n) in pooled.items():
        if n > 0 and k in (0, n):
            half[name] = _binomial_bound(n)
    waited, _ = pooled["p_wait"]
    if waited == 0 and admitted > 0:
        conditional_wait = expected.wq / expected.p_wait if expected.p_wait > 0 else 0.0
        half["wq"] = half["p_wait"] * conditional_wait


# --------------------------------------------------------------------------- validate


def validate(
    lam: float,
    mu: float,
    c: int,
    K: int | None = None,
    theta: float | None = None,
    customers: int = 200_000,
    reps: int = 10,
    seed: int = 0,
    warmup: int | None = None,
) -> ValidationReport:
    """Simulate the join queue as M/M/c[/K][+M] and compare it with the closed forms.

    Args:
        lam: arrival rate (> 0).
        mu: service rate of one server (> 0).
        c: number of servers (>= 1).
        K: most customers in the system (>= c); None for an infinite waiting room.
        theta: abandonment rate of a waiting customer (>= 0); None (or 0) for patient customers.
        customers: counted customers per replication (>= 1000).
        reps: independent replications (>= 2).
        seed: root seed (>= 0); replication ``r`` uses ``SeedSequence(seed).spawn(reps)[r]``.
        warmup: customers simulated and discarded before counting, per replication; default
            ``max(1000, customers // 10)``.

    Raises:
        ValueError: naming the argument, its value and what is allowed; also when the queue has
            no stationary regime (``lam >= c mu`` with neither ``K`` nor ``theta > 0``).
    """
    lam = _rate("lam", lam)
    mu = _rate("mu", mu)
    c = _integer("c", c, 1, ">= 1")
    if K is not None:
        K = _integer("K", K, c, f">= c = {c} (or None for an infinite waiting room)")
    if theta is not None:
        theta = _rate("theta", theta, allow_zero=True)
    customers = _integer("customers", customers, 1000, ">= 1000")
    reps = _integer("reps", reps, 2, ">= 2 (a confidence interval needs two replications)")
    seed = _integer("seed", seed, 0, ">= 0")
    if warmup is None:
        warmup = max(1000, customers // 10)
    else:
        warmup = _integer("warmup", warmup, 0, ">= 0")
    if K is None and not theta and lam >= c * mu:
        raise ValueError(
            f"lam={lam!r} >= c * mu = {c * mu!r}: without a capacity K or an abandonment rate "
            "theta > 0 the queue grows without bound and has no stationary regime to compare "
            "with; pass lam < c * mu, a finite K (M/M/c/K) or theta > 0 (Erlang A)"
        )
    expected = _closed_form(lam, mu, c, K, theta)

    name = model_name(c, K, theta)
    log.info("validating %s: %d x %d customers (warm-up %d)", name, reps, customers, warmup)
    JoinQueueSim(lam, mu, c, K, theta, rng=np.random.default_rng(0)).run(0)  # compile/load first
    t0 = time.perf_counter()
    runs: list[JoinQueueStats] = []
    for child in np.random.SeedSequence(seed).spawn(reps):
        sim = JoinQueueSim(lam, mu, c, K, theta, rng=np.random.default_rng(child), warmup=warmup)
        runs.append(sim.run(warmup + customers))
    wall_s = time.perf_counter() - t0
    est = np.asarray([_estimates(r) for r in runs], dtype=np.float64)
    log.info(
        "%s: %d customers in %.3f s (%.3g customers/s)",
        name,
        reps * (warmup + customers),
        wall_s,
        reps * (warmup + customers) / max(wall_s, 1e-12),
    )

    t975 = float(stats.t.ppf(0.975, reps - 1))
    means = est.mean(axis=0)
    widths = t975 * est.std(axis=0, ddof=1) / math.sqrt(reps)
    half = dict(zip(QUANTITIES, widths.tolist(), strict=True))
    _degenerate_shares(runs, expected, half)
    quantities = {
        q: Quantity(sim=float(means[i]), ci95=half[q], theory=float(getattr(expected, q)))
        for i, q in enumerate(QUANTITIES)
    }
    return ValidationReport(quantities=quantities, customers=customers, reps=reps, wall_s=wall_s)


# --------------------------------------------------------------------------- command line


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> _Parser:
    p = _Parser(
        prog="spacesim validate",
        description=(
            "Simulate the join queue as M/M/c[/K][+M] and compare wq, p_wait, p_block and "
            "p_abandon with the closed forms of queueing theory. Exit status 0 when every "
            "closed form lies within its 95% confidence interval widened by 50%, 1 otherwise, "
            "2 on invalid arguments."
        ),
    )
    p.add_argument("--lam", type=float, required=True, help="arrival rate (> 0)")
    p.add_argument("--mu", type=float, required=True, help="service rate per server (> 0)")
    p.add_argument("-c", type=int, required=True, help="number of servers (>= 1)")
    p.add_argument("-K", type=int, default=None, help="capacity: most customers in the system")
    p.add_argument("--theta", type=float, default=None, help="abandonment rate of waiters")
    p.add_argument(
        "--customers", type=int, default=200_000, help="counted customers per replication"
    )
    p.add_argument("--reps", type=int, default=10, help="independent replications (>= 2)")
    p.add_argument("--seed", type=int, default=0, help="root seed (>= 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def format_report(report: ValidationReport, title: str = "", widen: float = WIDEN) -> str:
    """The report as an aligned table, one row per quantity."""
    lines = [title] if title else []
    total = report.reps * report.customers
    lines.append(
        f"{report.reps} replications x {report.customers} customers in {report.wall_s:.2f} s "
        f"({total / max(report.wall_s, 1e-12):.3g} counted customers/s)"
    )
    lines.append("")
    header = f"{'quantity':<10} {'sim':>12} {'±ci95':>12} {'theory':>12} {'|Δ|/ci95':>9}  ok"
    lines.append(header)
    lines.append("-" * len(header))
    for name, q in report.quantities.items():
        dev = abs(q.theory - q.sim)
        ratio = dev / q.ci95 if q.ci95 > 0 else (0.0 if dev == 0 else math.inf)
        ok = "yes" if q.covered(widen) else "NO"
        lines.append(
            f"{name:<10} {q.sim:>12.6g} {q.ci95:>12.3g} {q.theory:>12.6g} {ratio:>9.2f}  {ok}"
        )
    lines.append("")
    failed = report.failures(widen)
    if failed:
        lines.append(
            f"FAIL: {', '.join(failed)} outside the 95% confidence interval widened by "
            f"{round((widen - 1) * 100)}%"
        )
    else:
        lines.append(
            "PASS: every closed form lies within its 95% confidence interval widened by "
            f"{round((widen - 1) * 100)}%"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``spacesim validate``: 0 when the closed forms are matched, 1 when not, 2 on bad input."""
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    try:
        report = validate(
            args.lam,
            args.mu,
            args.c,
            K=args.K,
            theta=args.theta,
            customers=args.customers,
            reps=args.reps,
            seed=args.seed,
        )
    except ValueError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(report.to_json(indent=2))
    else:
        title = (
            f"{model_name(args.c, args.K, args.theta)}: lam={args.lam:g} mu={args.mu:g} "
            f"c={args.c}" + ("" if args.K is None else f" K={args.K}")
        )
        if args.theta is not None:
            title += f" theta={args.theta:g}"
        print(format_report(report, f"{title} seed={args.seed}"))
    return 0 if report.passed() else 1
