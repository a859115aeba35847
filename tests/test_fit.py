"""``sim.fit`` on synthetic models whose true parameters are known.

The "simulator" is a smooth model of a launch surge: ``nodes`` servers (an integer), each holding
``cap`` listeners (searched on a log scale), filling at ``rate`` per second. Its data points are
the peak audience, the busiest node's peak, the audience after two minutes and the time to half
full. Bands are ±5 % around the true model's outputs; simulation noise is a multiplicative
error per replication with fixed seeds (common random numbers: the same draws at every point).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest

from sim.fit import FitResult, Parameter, band_part, centred_residual, fit

TRUTH = {"platform.nodes": 12, "platform.cap": 2500.0, "client.rate": 0.004}
PARAMS = [
    Parameter("platform.nodes", 2, 64, integer=True),
    Parameter("platform.cap", 100.0, 10000.0, log=True),
    Parameter("client.rate", 0.0005, 0.02),
]
IGNORED = Parameter("client.patience_s", 1.0, 100.0)
REPLICATIONS = 6


def model(p: dict[str, float]) -> np.ndarray:
    """The four simulated figures of parameter point ``p`` (noise-free)."""
    n, cap, rate = p["platform.nodes"], p["platform.cap"], p["client.rate"]
    fill = 1 - math.exp(-rate * 1800)
    return np.array(
        [
            n * cap * fill,
            1.1 * cap * fill,
            n * cap * (1 - math.exp(-rate * 120)),
            math.log(2) / rate,
        ]
    )


TRUE_FIGURES = model(TRUTH)
LOW, HIGH = 0.95 * TRUE_FIGURES, 1.05 * TRUE_FIGURES


def make_evaluate(noise_seed: int | None, sd: float = 0.03, per_replication: bool = True):
    """An ``evaluate`` returning centred residuals; with ``noise_seed``, ``REPLICATIONS`` noisy
    replications whose draws are the same at every point. Records the batch sizes."""
    eps = (
        np.zeros((1, TRUE_FIGURES.size))
        if noise_seed is None
        else np.random.default_rng(noise_seed).normal(0, sd, (REPLICATIONS, TRUE_FIGURES.size))
    )
    calls: list[int] = []

    def evaluate(points: Sequence[dict[str, float]]) -> np.ndarray:
        calls.append(len(points))
        sims = np.array([[model(p) * (1 + e) for e in eps] for p in points])  # (P, R, n)
        z = centred_residual(sims, LOW, HIGH)
        return z if per_replication else z.mean(axis=1)

    evaluate.calls = calls  # type: ignore[attr-defined]
    return evaluate


def test_helpers_match_the_band_residual_definition() -> None:
    z = centred_residual([100.0, 111.0, 80.0], [90.0] * 3, [110.0] * 3)
    np.testing.assert_allclose(z, [0.0, 1.1, -2.0])
    # 0 inside, else the signed distance to the nearest edge divided by the half-width (10)
    np.testing.assert_allclose(band_part(z), [0.0, 0.1, -1.0])


@pytest.mark.parametrize("noise_seed", [1, 2, 3])
def test_recovers_true_parameters_within_intervals(noise_seed: int) -> None:
    budget = 160
    res = fit(make_evaluate(noise_seed), PARAMS, budget=budget, batch=8, seed=noise_seed)
    assert res.evaluations <= budget
    assert len(res.history) == res.evaluations
    assert res.band_loss == 0.0, res.message  # inside every band
    assert res.noise_stderr is not None
    for p in PARAMS:
        lo, hi = res.ci[p.name]
        assert math.isfinite(lo) and math.isfinite(hi)
        assert lo <= TRUTH[p.name] <= hi, (p.name, res.best, res.ci)
        assert res.identified[p.name]
        # narrower than half the search range (on the search scale)
        assert p.to_theta(hi) - p.to_theta(lo) < 0.5 * p.span, (p.name, res.ci)
        assert 0 < res.noise_stderr[p.name] <= res.stderr[p.name]
    assert isinstance(res.best["platform.nodes"], int)
    # the tie-break pulls the fit toward the band centres, not just anywhere inside the bands
    assert np.max(np.abs(res.residuals)) < 0.6


def test_noise_free_fit_converges_near_the_truth() -> None:
    res = fit(make_evaluate(None), PARAMS, budget=200, seed=0)
    assert res.converged, res.message
    assert res.best["platform.nodes"] == TRUTH["platform.nodes"]
    assert res.best["platform.cap"] == pytest.approx(TRUTH["platform.cap"], rel=0.02)
    assert res.best["client.rate"] == pytest.approx(TRUTH["client.rate"], rel=0.02)
    assert res.loss < 1e-4


def test_ignored_parameter_is_not_identified(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="sim.fit"):
        res = fit(make_evaluate(4), [*PARAMS, IGNORED], budget=170, seed=4)
    assert res.evaluations <= 170
    assert res.identified[IGNORED.name] is False
    assert math.isinf(res.stderr[IGNORED.name])
    assert res.ci[IGNORED.name] == (-math.inf, math.inf)
    assert all(res.identified[p.name] for p in PARAMS)
    assert all(math.isfinite(res.stderr[p.name]) for p in PARAMS)
    assert "singular" in caplog.text
    json.dumps(res.to_dict(), allow_nan=False)  # JSON-able: inf became None
    assert res.to_dict()["stderr"][IGNORED.name] is None


def test_deterministic() -> None:
    a = fit(make_evaluate(5), PARAMS, budget=80, seed=7)
    b = fit(make_evaluate(5), PARAMS, budget=80, seed=7)
    assert a.to_dict() == b.to_dict()
    c = fit(make_evaluate(5), PARAMS, budget=80, seed=8)
    assert c.history != a.history  # the seed changes the design


@pytest.mark.parametrize("budget", [14, 15, 31, 57])
def test_budget_counts_every_evaluated_point(budget: int) -> None:
    evaluate = make_evaluate(6)
    res = fit(evaluate, PARAMS, budget=budget, batch=8, seed=0)
    assert res.evaluations <= budget
    assert sum(evaluate.calls) == res.evaluations == len(res.history)  # cache hits are free
    assert evaluate.calls[0] == 8  # the start design is one batch
    assert all(c <= 8 for c in evaluate.calls)
    assert all(math.isfinite(res.stderr[p.name]) for p in PARAMS)  # the reserve was kept


def test_budget_too_small_for_start_and_reserve() -> None:
    with pytest.raises(ValueError, match="budget"):
        fit(make_evaluate(None), PARAMS, budget=13, batch=8)


def test_x0_is_evaluated_first() -> None:
    evaluate = make_evaluate(None)
    res = fit(evaluate, PARAMS, budget=40, batch=4, x0=TRUTH)
    assert evaluate.calls[0] == 5
    assert res.history[0][0] == TRUTH
    assert res.history[0][1] == pytest.approx(0.0)


def test_both_evaluate_shapes_are_accepted() -> None:
    # noise-free: per-replication (P, 1, n) and mean (P, n) residuals give the same fit
    a = fit(make_evaluate(None, per_replication=True), PARAMS, budget=60, seed=1)
    b = fit(make_evaluate(None, per_replication=False), PARAMS, budget=60, seed=1)
    assert a.best == b.best and a.history == b.history
    assert b.noise_stderr is None
    # with noise: means computed by the caller or by fit give the same point, only the
    # per-replication form adds the noise uncertainty
    c = fit(make_evaluate(9, per_replication=True), PARAMS, budget=60, seed=1)
    d = fit(make_evaluate(9, per_replication=False), PARAMS, budget=60, seed=1)
    assert c.best == d.best
    assert c.noise_stderr is not None and d.noise_stderr is None
    assert all(c.stderr[k] > d.stderr[k] for k in c.stderr)


def test_bad_evaluate_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        fit(lambda pts: np.zeros(len(pts)), PARAMS, budget=30)


@pytest.mark.parametrize(
    ("param", "key"),
    [
        (Parameter("platform.nodes", 10, 10), "platform.nodes.hi"),
        (Parameter("platform.nodes", 10, 5), "platform.nodes.hi"),
        (Parameter("platform.cap", 0.0, 100.0, log=True), "platform.cap.lo"),
        (Parameter("platform.cap", -1.0, 100.0, log=True), "platform.cap.lo"),
        (Parameter("platform.nodes", 1.5, 8, integer=True), "platform.nodes.lo"),
    ],
)
def test_parameter_problems_name_the_key(param: Parameter, key: str) -> None:
    problems = list(param.problems())
    assert key in [k for k, _, _ in problems]
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        fit(make_evaluate(None), [param], budget=30)


def test_valid_parameters_have_no_problems() -> None:
    assert all(not list(p.problems()) for p in [*PARAMS, IGNORED])


def test_unit_mapping_round_trips() -> None:
    cap, nodes = PARAMS[1], PARAMS[0]
    assert cap.from_unit(0.5) == pytest.approx(1000.0)  # geometric midpoint of 100 and 10000
    assert cap.from_unit(cap.to_unit(2500.0)) == pytest.approx(2500.0)
    assert nodes.from_unit(nodes.to_unit(12)) == 12
    assert nodes.from_unit(0.0) == 2 and nodes.from_unit(1.0) == 64


def test_to_dict_is_plain_json() -> None:
    res = fit(make_evaluate(2), PARAMS, budget=40, seed=2)
    assert isinstance(res, FitResult)
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["evaluations"] == res.evaluations
    assert set(d["ci"]) == {p.name for p in PARAMS}
    assert len(d["history"]) == res.evaluations
