"""Validation tier: the simulated join queue against the closed forms of queueing theory.

Each case runs ``validate`` (independent seeded replications of ``sim.kernels.queue.offer`` as an
M/M/c[/K][+M] queue) and requires every closed form to lie within the simulated mean's 95%
confidence interval widened by 50%. The tolerance comes from the replications alone; the seeds
were fixed before the runs. The remaining tests pin the report, the pass criterion's power (a
closed form for a 2% wrong service rate must fail) and the command line.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest

from sim import theory
from sim.validation import Quantity, ValidationReport, main, validate

# (id, lam, mu, c, K, theta, customers per replication); rho = lam / (c mu)
TIER = [
    ("erlang_b_rho0.8", 8.0, 1.0, 10, 10, None, 400_000),
    ("erlang_b_rho0.5", 5.0, 1.0, 10, 10, None, 400_000),
    ("erlang_c_rho0.5", 2.0, 1.0, 4, None, None, 400_000),
    ("erlang_c_mm1_rho0.9", 0.9, 1.0, 1, None, None, 1_000_000),
    ("mmck_rho0.98", 9.8, 1.0, 10, 15, None, 400_000),
    ("erlang_a_rho0.98", 9.8, 1.0, 10, None, 0.5, 400_000),
    ("erlang_a_K_rho0.7", 14.0, 1.0, 20, 30, 1.0, 400_000),
    ("erlang_a_K_rho0.98", 49.0, 1.0, 50, 60, 0.2, 400_000),
    ("erlang_a_overload_rho1.5", 15.0, 1.0, 10, None, 2.0, 400_000),
]


def _kind(c: int, K: int | None, theta: float | None) -> str:
    if K == c:
        return "erlang_b"
    if theta is not None:
        return "erlang_a" if K is None else "erlang_a_K"
    return "mmc" if K is None else "mmck"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lam", "mu", "c", "K", "theta", "customers", "seed"),
    [pytest.param(*case[1:], seed, id=case[0]) for seed, case in enumerate(TIER)],
)
def test_simulation_matches_closed_forms(
    lam: float, mu: float, c: int, K: int | None, theta: float | None, customers: int, seed: int
) -> None:
    report = validate(lam, mu, c, K=K, theta=theta, customers=customers, reps=10, seed=seed)
    assert report.passed(), report.to_json()
    for name, q in report.quantities.items():
        # the interval is meaningful: within 5% of the quantity (or 5e-5 for tiny shares)
        assert q.ci95 <= 0.05 * max(q.theory, 1e-3), (name, q)


def test_tier_covers_the_models_and_loads() -> None:
    kinds = {_kind(c, K, theta) for _, _, _, c, K, theta, _ in TIER}
    assert kinds == {"erlang_b", "mmc", "mmck", "erlang_a", "erlang_a_K"}
    rhos = {round(lam / (c * mu), 6): _kind(c, K, theta) for _, lam, mu, c, K, theta, _ in TIER}
    assert min(rhos) == 0.5
    assert rhos[0.98] != "mmc"


# --------------------------------------------------------------------------- the criterion


@pytest.fixture(scope="module")
def mmck_report() -> ValidationReport:
    return validate(9.8, 1.0, 10, K=15, customers=200_000, reps=10, seed=100)


def _against(report: ValidationReport, metrics: theory.QueueMetrics) -> ValidationReport:
    """The same simulation judged against other closed-form values."""
    quantities = {
        name: dataclasses.replace(q, theory=float(getattr(metrics, name)))
        for name, q in report.quantities.items()
    }
    return dataclasses.replace(report, quantities=quantities)


def test_a_wrong_closed_form_is_caught(mmck_report: ValidationReport) -> None:
    assert mmck_report.passed()
    # a closed form for a 2% faster server, or one server more, or no waiting room
    for wrong in (
        theory.mmck(9.8, 1.02, 10, 15),
        theory.mmck(9.8, 1.0, 11, 16),
        theory.mmck(9.8, 1.0, 10, 10),
    ):
        assert not _against(mmck_report, wrong).passed()


def test_passed_on_a_hand_built_report() -> None:
    def report(*qs: Quantity) -> ValidationReport:
        return ValidationReport(
            quantities=dict(zip(("wq", "p_wait", "p_block", "p_abandon"), qs, strict=True)),
            customers=1000,
            reps=2,
            wall_s=0.0,
        )

    ok = Quantity(sim=1.0, ci95=0.1, theory=1.14)  # 0.14 <= 1.5 * 0.1
    zero = Quantity(sim=0.0, ci95=0.0, theory=0.0)
    assert report(ok, zero, zero, zero).passed()
    assert not report(ok, zero, zero, zero).passed(widen=1.0)
    assert report(ok, zero, zero, zero).failures(widen=1.0) == ["wq"]
    assert not report(ok, Quantity(0.5, 0.01, 0.52), zero, zero).passed()
    assert not report(ok, zero, Quantity(0.0, 0.0, 1e-9), zero).passed()
    assert not report(ok, zero, zero, Quantity(math.nan, 0.1, 0.5)).passed()


def test_a_run_shorter_than_the_relaxation_time_fails() -> None:
    # with patience 1/theta = 1000 the queue takes ~1000 time units to fill; 2000 customers
    # (1000 time units) started empty underestimate the wait by far more than the interval
    report = validate(2.0, 1.0, 1, theta=0.001, customers=1000, reps=5, seed=0)
    assert set(report.failures()) == {"wq", "p_abandon"}


def test_shares_seen_never_or_always_use_the_binomial_bound() -> None:
    # overload with patient waiters: everyone waits (p_wait = 1 - 7e-16 in floating point)
    report = validate(2.0, 1.0, 1, theta=0.01, customers=1000, reps=5, seed=0)
    pw = report.quantities["p_wait"]
    assert pw.sim == 1.0 and pw.theory < 1.0
    assert pw.ci95 == pytest.approx(1.0 - 0.025 ** (1.0 / 5000))
    assert report.quantities["p_block"].ci95 == pw.ci95
    # light load: nobody waits, although the closed forms are (tiny but) positive
    light = validate(0.5, 1.0, 10, customers=10_000, reps=4, seed=0)
    assert light.quantities["p_wait"].sim == light.quantities["wq"].sim == 0.0
    assert light.passed()
    # ... but a visible share that never showed up is not excused
    wrong = _against(light, theory.mmc(0.5, 1.0, 1))
    assert set(wrong.failures()) == {"wq", "p_wait"}


def test_replications_are_reproducible() -> None:
    a = validate(3.0, 1.0, 4, K=6, theta=0.5, customers=5000, reps=3, seed=7)
    b = validate(3.0, 1.0, 4, K=6, theta=0.5, customers=5000, reps=3, seed=7)
    c = validate(3.0, 1.0, 4, K=6, theta=0.5, customers=5000, reps=3, seed=8)
    assert a.quantities == b.quantities
    assert a.quantities != c.quantities


def test_closed_form_selection() -> None:
    r = validate(3.0, 1.0, 4, K=4, customers=1000, reps=2)
    assert r.quantities["p_block"].theory == pytest.approx(theory.erlang_b(4, 3.0), rel=1e-12)
    r = validate(3.0, 1.0, 4, customers=1000, reps=2)
    assert r.quantities["p_wait"].theory == pytest.approx(theory.erlang_c(4, 3.0), rel=1e-12)
    r = validate(3.0, 1.0, 4, K=7, theta=0.5, customers=1000, reps=2)
    assert r.quantities["wq"].theory == theory.erlang_a(3.0, 1.0, 4, 0.5, 7).wq


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam": -1.0}, r"lam must be a finite number > 0, got -1\.0"),
        ({"mu": 0}, "mu must be a finite number > 0, got 0"),
        ({"mu": math.inf}, "mu must be a finite number > 0"),
        ({"c": 0}, "c must be an integer >= 1, got 0"),
        ({"c": 2.5}, "c must be an integer >= 1, got 2.5"),
        ({"K": 3}, "K must be an integer >= c = 4"),
        ({"theta": -0.1}, "theta must be a finite number >= 0"),
        ({"customers": 999}, "customers must be an integer >= 1000, got 999"),
        ({"reps": 1}, "reps must be an integer >= 2"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"warmup": -5}, "warmup must be an integer >= 0"),
        ({"lam": 4.0}, r"lam=4\.0 >= c \* mu = 4\.0: without a capacity K or .* theta > 0"),
        ({"lam": 5.0, "theta": 0.0}, "without a capacity K"),
    ],
)
def test_validate_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"lam": 3.0, "mu": 1.0, "c": 4, "customers": 1000, "reps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        validate(**args)


def test_unstable_rates_are_fine_with_k_or_theta() -> None:
    assert validate(5.0, 1.0, 4, K=6, customers=1000, reps=2).reps == 2
    assert validate(5.0, 1.0, 4, theta=1.0, customers=1000, reps=2).reps == 2


# --------------------------------------------------------------------------- command line

BASE = ["--lam", "9.8", "--mu", "1", "-c", "10", "-K", "15", "--customers", "50000"]


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--reps", "5", "--seed", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"quantities", "customers", "reps", "wall_s"}
    assert list(out["quantities"]) == ["wq", "p_wait", "p_block", "p_abandon"]
    for q in out["quantities"].values():
        assert set(q) == {"sim", "ci95", "theory"}
        assert all(isinstance(v, float) for v in q.values())
    assert (out["customers"], out["reps"]) == (50_000, 5)
    assert out["wall_s"] > 0
    expected = validate(9.8, 1.0, 10, K=15, customers=50_000, reps=5, seed=3)
    assert out["quantities"] == expected.to_dict()["quantities"]


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--theta", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("M/M/10/15+M: lam=9.8 mu=1 c=10 K=15 theta=0.5 seed=0")
    rows = [line for line in out.splitlines() if line.split()[:1] in (["wq"], ["p_block"])]
    assert len(rows) == 2 and len(rows[0]) == len(rows[1])  # aligned columns
    assert "PASS" in out


def test_cli_exit_1_when_a_closed_form_is_missed(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--lam", "2", "--mu", "1", "-c", "1", "--theta", "0.001", "--customers", "1000"]
    assert main([*argv, "--reps", "5"]) == 1
    assert "FAIL: wq, p_abandon" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lam", "1", "--mu", "1"], "the following arguments are required: -c"),
        (["--lam", "x", "--mu", "1", "-c", "2"], "argument --lam: invalid float value: 'x'"),
        (["--lam", "-1", "--mu", "1", "-c", "2"], "lam must be a finite number > 0, got -1.0"),
        (["--lam", "1", "--mu", "1", "-c", "2", "-K", "1"], "K must be an integer >= c = 2"),
        (["--lam", "3", "--mu", "1", "-c", "2"], "without a capacity K or an abandonment rate"),
        (["--lam", "1", "--mu", "1", "-c", "2", "--reps", "1"], "reps must be an integer >= 2"),
        (["--lam", "1", "--mu", "1", "-c", "2", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_cli_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert captured.err.rstrip().splitlines()[-1].startswith("spacesim validate: error:")


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: spacesim validate")
