"""Fitting unknown parameters to banded data points: the numerical core of ``spacesim calibrate``.

Calibration asks which platform parameters (fleet size, join capacity, crash thresholds, client
behaviour) make simulated runs reproduce public figures of real events. Each figure is a *band*
``[low, high]`` rather than a number (press figures disagree), so a parameter point is good when
every simulated figure lands inside its band. This module knows nothing of the simulator: the
caller supplies ``evaluate`` (a batch of parameter points in, residuals out) and this module
decides which points to try. It uses numpy and scipy only.

**The residual interface.** For each parameter point, ``evaluate`` returns one *centred,
standardised residual* per data point,

    z = (simulated - centre) / half_width,  centre = (low + high) / 2,
                                            half_width = (high - low) / 2

(``centred_residual`` computes it). One number carries both things the fit needs:

- the **band residual** (0 inside the band, else the signed distance to the nearest edge in
  half-widths) is ``band_part(z) = sign(z) * max(|z| - 1, 0)``, exactly what
  ``sim.observations.band_residual`` computes, because the band is ``centre ± half_width``;
- the **value residual** ``z - offset`` used for the uncertainty, where ``offset`` (argument
  ``value_offset``, default 0) is the position of the quoted value inside its band,
  ``(value - centre) / half_width``; with the default the value is the band's centre.

``evaluate`` may return the mean over ``R`` seeded replications, shape ``(points, n)``, or every
replication, shape ``(points, R, n)``; ``fit`` then averages them itself and also uses their
spread (see *Uncertainty*). The caller runs replication ``r`` with the same seed at every point
(common random numbers), so the objective is a deterministic function of the point.

**The objective.** ``loss = Σ band_part(z)² + tie_weight · Σ (z - offset)²``. The first term is 0
anywhere inside all bands, so on its own the best point would not be unique (a whole region of
the parameter space costs 0). The small second term (``tie_weight = 1e-3``) breaks the tie: among
the points inside all bands, the one whose simulated figures sit closest to the quoted values
wins; outside the bands it is negligible next to the band term. ``FitResult.band_loss`` reports
the first term alone (0: the fit reproduces every band).

**The search: a batched trust region on a linear model of the residuals.** All parameters are
searched in the unit cube (``Parameter.from_unit``: linear or log scale, rounded to integers at
evaluation when ``integer``).

1. *Start*: a scrambled Sobol design (``scipy.stats.qmc.Sobol``, seeded) of ``batch`` points plus
   ``x0`` if given, evaluated as one batch; the best is the incumbent.
2. *Refinement*: each iteration evaluates one batch around the incumbent: a fresh scrambled Sobol
   cloud in the box ``incumbent ± r`` (at least ± one step for an integer parameter, so that its
   neighbours stay in reach), plus one *model point*. The model point comes from a
   linear model of the residual *vector*, ``z(x) ≈ z_inc + (x - x_inc) A``, fitted by least
   squares to the points already evaluated within ``2r``; its loss (convex in ``x``) is minimised
   over the box, without running anything (``scipy.optimize.minimize``, L-BFGS-B). When the best
   of the batch improves on the incumbent it becomes the incumbent and ``r`` doubles if the step
   used at least half of it (up to 0.5), or shrinks to twice a shorter step (at most by half);
   otherwise ``r`` halves. The search stops when
   ``r < tol`` (converged) or when the budget, less the reserve for the uncertainty, is spent.

   Why not Nelder–Mead or Powell? They evaluate one point at a time (no parallel launcher),
   and the loss here is hostile to them: flat inside the bands, stepped by integer parameters
   and by the discreteness of simulated counts, rough at the scale of the simulation noise that
   common random numbers freeze in. A simplex collapses on such plateaus and steps, and Powell's
   line searches assume a smooth one-dimensional valley. The cloud is a pattern search that
   needs no smoothness: a point is accepted only when it is better, and a failed batch only
   shrinks the region. The regression model smooths roughness smaller than the cloud, and because
   it models the residuals rather than the loss (as derivative-free least-squares solvers such as
   POUNDERS and DFO-LS do) it sees the direction to each band even where the loss is flat, so it
   converges quickly on smooth parts. Points that round to the same parameter values are cached
   and cost nothing.

**Uncertainty (Laplace/Fisher approximation).** Treat each data point as an independent Gaussian
measurement of its quoted value with ``sigma = half_width``: ``chi² = Σ (z - offset)²``. Near
the optimum, the covariance of the parameters on their search scale ``θ`` (the value, or its
natural log for log parameters) is ``(JᵀJ)⁻¹`` with ``J = ∂z/∂θ``, estimated by central
differences of ``fd_step`` (5 %) of each range, large enough to see through simulation noise,
at least one unit for integer parameters. This costs ``2 × len(parameters)`` evaluations, which
``fit`` reserves out of ``budget`` from the start. When ``JᵀJ`` is singular (some parameter, or
combination, does not change any figure) the pseudo-inverse is used, a warning is logged, and
each parameter in the null space gets ``identified = False`` with an infinite standard error. A
parameter whose 95 % interval is wider than its search range is also reported not identified:
the data do not narrow it down.

With per-replication residuals, the replication mean at the optimum has a sampling covariance
``Σ = cov(z_r) / R``. The fitted point moves with it as ``δθ = -(JᵀJ)⁻¹Jᵀ δz`` (to first order),
so the noise adds ``G Σ Gᵀ`` with ``G = (JᵀJ)⁻¹Jᵀ``; ``noise_stderr`` reports it alone and
``stderr`` the total (data and noise in quadrature). The 95 % interval is ``θ ± 1.96 · stderr``
mapped back to parameter values (asymmetric for log parameters). ``stderr`` is on the search
scale: for a log parameter it is the standard error of ``ln(value)``, about the relative error.

The fit is deterministic: the same ``evaluate``, parameters, budget, batch and seed give the same
result.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.stats import qmc

log = logging.getLogger(__name__)

Problem = tuple[str, Any, str]
Point = dict[str, float]
Evaluate = Callable[[list[Point]], ArrayLike]
FloatArray = NDArray[np.float64]

Z95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal


def centred_residual(simulated: ArrayLike, low: ArrayLike, high: ArrayLike) -> FloatArray:
    """``(simulated - centre) / half_width`` of bands ``[low, high]``: what ``evaluate`` returns.

    >>> centred_residual([110.0], [90.0], [110.0])
    array([1.])
    """
    lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    return (np.asarray(simulated, dtype=float) - (lo + hi) / 2) / ((hi - lo) / 2)


def band_part(z: ArrayLike) -> FloatArray:
    """The band residual of centred residuals ``z``: 0 inside the band (``|z| <= 1``), else the
    signed distance to the nearest edge in half-widths.

    >>> band_part([0.5, 1.5, -3.0])
    array([ 0. ,  0.5, -2. ])
    """
    a = np.asarray(z, dtype=float)
    return np.sign(a) * np.maximum(np.abs(a) - 1.0, 0.0)


@dataclass(frozen=True)
class Parameter:
    """One unknown: the dotted config key ``name`` it sets and the interval ``[lo, hi]`` searched.

    ``log``: search on a log scale (for sizes spanning decades); ``integer``: round to the nearest
    integer when evaluating (``lo`` and ``hi`` must then be integers).
    """

    name: str
    lo: float
    hi: float
    log: bool = False
    integer: bool = False

    def problems(self) -> Iterator[Problem]:
        """Every wrong value as ``(key, value, allowed)``, the key prefixed with ``name``."""
        if not self.name:
            yield "name", self.name, "a dotted config key such as platform.nodes"
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            yield f"{self.name}.hi", self.hi, f"a finite number > lo ({self.lo})"
        if self.log and not self.lo > 0:
            yield f"{self.name}.lo", self.lo, "a number > 0 (log: true)"
        if self.integer and not (float(self.lo).is_integer() and float(self.hi).is_integer()):
            yield f"{self.name}.lo", self.lo, "integers lo and hi (integer: true)"

    def _theta_bounds(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.lo), math.log(self.hi)
        return float(self.lo), float(self.hi)

    @property
    def span(self) -> float:
        """Width of the search interval on the search scale (``ln`` for log parameters)."""
        a, b = self._theta_bounds()
        return b - a

    def to_theta(self, value: float) -> float:
        """The search-scale coordinate of ``value``: the value, or its natural log."""
        return math.log(value) if self.log else float(value)

    def from_theta(self, theta: float) -> float:
        """Inverse of ``to_theta``."""
        return math.exp(theta) if self.log else float(theta)

    def from_unit(self, u: float) -> float:
        """The value at unit coordinate ``u`` (clipped to [0, 1]); an ``int`` when ``integer``."""
        a, b = self._theta_bounds()
        v = self.from_theta(a + min(max(float(u), 0.0), 1.0) * (b - a))
        if self.integer:
            return int(min(max(round(v), int(self.lo)), int(self.hi)))
        return min(max(v, float(self.lo)), float(self.hi))

    def to_unit(self, value: float) -> float:
        """The unit coordinate of ``value``, clipped to [0, 1]."""
        a, b = self._theta_bounds()
        v = min(max(float(value), float(self.lo)), float(self.hi))
        return (self.to_theta(v) - a) / (b - a)


@dataclass
class FitResult:
    """What ``fit`` found.

    ``best``: the incumbent when the search stopped (the finite-difference points of the
    uncertainty are not candidates). ``loss``: the minimised objective at ``best`` (band term plus
    tie-break); ``band_loss``: the band term alone (0: inside every band). ``residuals``: the
    centred residuals ``z`` at ``best`` (``band_part`` gives the band residuals). ``stderr``,
    ``noise_stderr``: on the search scale (``ln`` for log parameters); ``noise_stderr`` is None
    without per-replication residuals. ``ci``: 95 % intervals in parameter units.
    ``covariance``: the total covariance on the search scale, in the order of the parameters
    (NaN in the rows and columns of parameters not identified structurally). ``history``:
    every evaluated point and its loss, in order (start design, refinement, finite differences).
    """

    best: dict[str, float]
    loss: float
    band_loss: float
    residuals: FloatArray
    stderr: dict[str, float]
    ci: dict[str, tuple[float, float]]
    identified: dict[str, bool]
    evaluations: int
    history: list[tuple[dict[str, float], float]]
    converged: bool
    message: str
    noise_stderr: dict[str, float] | None = None
    covariance: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types; infinite or NaN numbers become None."""

        def num(x: float) -> float | int | None:
            if isinstance(x, int | np.integer):
                return int(x)
            return float(x) if math.isfinite(x) else None

        return {
            "best": {k: num(v) for k, v in self.best.items()},
            "loss": num(self.loss),
            "band_loss": num(self.band_loss),
            "residuals": [num(float(r)) for r in self.residuals],
            "stderr": {k: num(v) for k, v in self.stderr.items()},
            "noise_stderr": None
            if self.noise_stderr is None
            else {k: num(v) for k, v in self.noise_stderr.items()},
            "ci": {k: [num(a), num(b)] for k, (a, b) in self.ci.items()},
            "identified": {k: bool(v) for k, v in self.identified.items()},
            "covariance": [[num(float(c)) for c in row] for row in self.covariance],
            "evaluations": int(self.evaluations),
            "history": [
                {"point": {k: num(v) for k, v in p.items()}, "loss": num(f)}
                for p, f in self.history
            ],
            "converged": bool(self.converged),
            "message": self.message,
        }


@dataclass
class _Eval:
    """A cached evaluation: its parameter values, the unit point that first produced them, the
    (mean) residuals, the per-replication residuals if given, and the loss."""

    key: tuple[float, ...]
    x: FloatArray
    z: FloatArray
    reps: FloatArray | None
    loss: float


class _Objective:
    """Wraps the caller's ``evaluate``: rounding, caching, shape checks, budget and history."""

    def __init__(
        self,
        evaluate: Evaluate,
        parameters: Sequence[Parameter],
        offset: FloatArray | None,
        tie_weight: float,
    ) -> None:
        self.evaluate = evaluate
        self.parameters = list(parameters)
        self.offset = offset
        self.tie_weight = tie_weight
        self.cache: dict[tuple[float, ...], _Eval] = {}
        self.history: list[tuple[dict[str, float], float]] = []
        self.n_residuals: int | None = None
        self.pinned: dict[bytes, tuple[float, ...]] = {}

    def key(self, x: FloatArray) -> tuple[float, ...]:
        pinned = self.pinned.get(np.asarray(x, dtype=float).tobytes())
        if pinned is not None:
            return pinned
        return tuple(p.from_unit(float(u)) for p, u in zip(self.parameters, x, strict=True))

    def snap(self, x: FloatArray) -> FloatArray:
        """``x`` with each integer coordinate moved to the unit coordinate of its rounded value,
        so that the residual model sees the integers actually evaluated."""
        out = np.asarray(x, dtype=float).copy()
        for i, (p, v) in enumerate(zip(self.parameters, self.key(x), strict=True)):
            if p.integer:
                out[i] = p.to_unit(v)
        return out

    def radii(self, x: FloatArray, r: float) -> FloatArray:
        """The trust region's half-widths at ``x``: ``r``, but at least one integer step for an
        integer parameter, so that the cloud keeps trying the neighbouring integers."""
        return np.array(
            [max(r, _int_step(p, float(u))) for p, u in zip(self.parameters, x, strict=True)]
        )

    def pin(self, x: FloatArray, values: Mapping[str, float]) -> None:
        """Evaluate unit point ``x`` at exactly ``values`` (``x0``: no round trip through the
        unit cube), integers rounded and everything clipped to the bounds."""
        key = []
        for p in self.parameters:
            v = min(max(float(values[p.name]), float(p.lo)), float(p.hi))
            key.append(round(v) if p.integer else v)
        self.pinned[np.asarray(x, dtype=float).tobytes()] = tuple(key)

    def point(self, key: tuple[float, ...]) -> dict[str, float]:
        return {p.name: v for p, v in zip(self.parameters, key, strict=True)}

    def loss(self, z: FloatArray) -> float:
        if not np.all(np.isfinite(z)):
            return math.inf
        off = z - self.offset if self.offset is not None else z
        b = band_part(z)
        return float(b @ b + self.tie_weight * (off @ off))

    def new(self, xs: Sequence[FloatArray]) -> list[tuple[float, ...]]:
        """Keys of ``xs`` not yet evaluated, without repeats, in order."""
        seen: set[tuple[float, ...]] = set()
        out = []
        for x in xs:
            k = self.key(x)
            if k not in self.cache and k not in seen:
                seen.add(k)
                out.append(k)
        return out

    def run(self, xs: Sequence[FloatArray], room: int) -> list[_Eval]:
        """Evaluate the uncached among ``xs`` (at most ``room`` of them, in order) in one batch;
        the evaluations of the ``xs`` that are cached afterwards."""
        todo = self.new(xs)[: max(room, 0)]
        first: dict[tuple[float, ...], FloatArray] = {}
        for x in xs:
            first.setdefault(self.key(x), self.snap(x))
        if todo:
            points = [self.point(k) for k in todo]
            raw = np.asarray(self.evaluate(points), dtype=float)
            if raw.ndim not in (2, 3) or raw.shape[0] != len(points):
                raise ValueError(
                    f"evaluate returned shape {raw.shape} for {len(points)} points: expected "
                    f"({len(points)}, n_residuals) or ({len(points)}, replications, n_residuals)"
                )
            n = raw.shape[-1]
            if self.n_residuals is None:
                self.n_residuals = n
                if self.offset is not None and self.offset.shape != (n,):
                    raise ValueError(f"value_offset has shape {self.offset.shape}, want ({n},)")
            elif n != self.n_residuals:
                raise ValueError(f"evaluate returned {n} residuals, earlier {self.n_residuals}")
            means = raw.mean(axis=1) if raw.ndim == 3 else raw
            for i, k in enumerate(todo):
                reps = raw[i] if raw.ndim == 3 else None
                f = self.loss(means[i])
                if not math.isfinite(f):
                    log.warning("non-finite residuals at %s: loss = inf", self.point(k))
                self.cache[k] = _Eval(k, first[k], means[i].copy(), reps, f)
                self.history.append((self.point(k), f))
        return [self.cache[k] for k in (self.key(x) for x in xs) if k in self.cache]

    @property
    def evaluations(self) -> int:
        return len(self.cache)


def _sobol(d: int, n: int, seed: np.random.Generator) -> FloatArray:
    """``n`` points of a scrambled Sobol sequence in ``[0, 1)^d`` (drawn as a power of 2, so
    scipy's balance warning does not apply, then cut to ``n``)."""
    m = max(0, math.ceil(math.log2(max(n, 1))))
    return np.asarray(qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)[:n], dtype=float)


def _model_point(
    obj: _Objective, x_inc: FloatArray, z_inc: FloatArray, rad: FloatArray
) -> FloatArray | None:
    """The minimiser of the loss of a linear residual model fitted within ``2r`` of the
    incumbent, in the box ``x_inc ± r`` ∩ [0, 1]^d; None when there are too few points."""
    d = x_inc.size
    near = [
        e
        for e in obj.cache.values()
        if np.isfinite(e.loss) and np.any(e.x != x_inc) and np.all(np.abs(e.x - x_inc) <= 2 * rad)
    ]
    if len(near) < d:
        return None
    dx = np.array([e.x - x_inc for e in near])
    dz = np.array([e.z - z_inc for e in near])
    a, *_ = np.linalg.lstsq(dx, dz, rcond=None)  # (d, n): z ≈ z_inc + dx @ a
    tie = obj.tie_weight
    off = obj.offset if obj.offset is not None else np.zeros_like(z_inc)

    def f(step: FloatArray) -> tuple[float, FloatArray]:
        z = z_inc + step @ a
        b = band_part(z)
        val = float(b @ b + tie * ((z - off) @ (z - off)))
        return val, a @ (2 * b + 2 * tie * (z - off))

    lo = np.maximum(-rad, -x_inc)
    hi = np.minimum(rad, 1.0 - x_inc)
    res = minimize(
        f, np.zeros(d), jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi, strict=True))
    )
    step = np.clip(np.asarray(res.x, dtype=float), lo, hi)
    if not np.any(step):
        return None
    return np.clip(x_inc + step, 0.0, 1.0)


def _exp(t: float) -> float:
    """``exp`` that returns 0 and inf instead of overflowing."""
    return math.exp(t) if not t >= 700 else math.inf


def _int_step(p: Parameter, u: float) -> float:
    """A little more than one integer step of ``p`` at unit coordinate ``u`` (0 if continuous)."""
    if not p.integer:
        return 0.0
    v = max(float(p.from_unit(u)), 1.0)
    one = math.log((v + 1) / v) if p.log else 1.0
    return min(1.05 * one / p.span, 0.5)


def _fd_pair(p: Parameter, u: float, h: float) -> tuple[float, float]:
    """Unit coordinates ``(u-, u+)`` ``2h`` apart around ``u``, shifted inside [0, 1]; for an
    integer parameter the step is at least one integer."""
    h = min(max(h, _int_step(p, u)), 0.5)
    lo, hi = u - h, u + h
    if lo < 0:
        lo, hi = 0.0, 2 * h
    elif hi > 1:
        lo, hi = 1.0 - 2 * h, 1.0
    return lo, hi


def fit(
    evaluate: Evaluate,
    parameters: Sequence[Parameter],
    *,
    budget: int,
    batch: int = 8,
    seed: int = 0,
    x0: Mapping[str, float] | None = None,
    tol: float = 1e-3,
    value_offset: ArrayLike | None = None,
    tie_weight: float = 1e-3,
    fd_step: float = 0.05,
    radius: float = 0.25,
) -> FitResult:
    """Fit ``parameters`` so that ``evaluate``'s centred residuals fall inside their bands.

    ``evaluate(points)`` takes a list of ``{name: value}`` dicts and returns centred residuals
    ``(simulated - centre) / half_width`` of shape ``(len(points), n)`` (replication means) or
    ``(len(points), R, n)`` (per replication). ``budget``: the most points evaluated, counting the
    start design (``batch`` points, plus ``x0``), the refinement and the ``2 × len(parameters)``
    finite-difference points reserved for the uncertainty. ``tol``: the trust-region radius in
    the unit cube below which the search has converged. ``value_offset``: the quoted values'
    positions in their bands, ``(value - centre) / half_width`` (default 0, the centres).
    ``tie_weight``, ``fd_step`` (fraction of each range), ``radius`` (initial trust-region radius
    in the unit cube): see the module docstring.
    """
    params = list(parameters)
    probs = [pr for p in params for pr in p.problems()]
    names = [p.name for p in params]
    if not params:
        probs.append(("parameters", [], "at least one parameter"))
    if len(set(names)) != len(names):
        probs.append(("parameters", names, "distinct names"))
    if x0 is not None and set(x0) - set(names):
        probs.append(("x0", sorted(set(x0) - set(names)), f"names among {names}"))
    if batch < 1:
        probs.append(("batch", batch, "an integer >= 1"))
    if not (tol > 0 and fd_step > 0 and radius > 0 and tie_weight >= 0):
        probs.append(("tol/fd_step/radius/tie_weight", (tol, fd_step, radius, tie_weight), "> 0"))
    d = len(params)
    reserve = 2 * d
    start_n = batch + (x0 is not None)
    if budget < start_n + reserve:
        probs.append(("budget", budget, f"at least {start_n + reserve} (start + 2 per parameter)"))
    if probs:
        raise ValueError("; ".join(f"{k} = {v!r}: want {a}" for k, v, a in probs))

    offset = None if value_offset is None else np.asarray(value_offset, dtype=float).ravel()
    obj = _Objective(evaluate, params, offset, tie_weight)
    rng = np.random.default_rng(seed)

    # 1. space-filling start
    starts = list(_sobol(d, batch, rng))
    if x0 is not None:
        values = {p.name: x0.get(p.name, p.from_unit(0.5)) for p in params}
        starts.insert(0, np.array([p.to_unit(values[p.name]) for p in params]))
        obj.pin(starts[0], values)
    evs = obj.run(starts, budget - reserve)
    inc = min(evs, key=lambda e: e.loss)
    log.info("start design: %d points, best loss %.4g", obj.evaluations, inc.loss)

    # 2. trust-region refinement
    r = radius
    converged = False
    message = "budget exhausted"
    iteration = 0
    while True:
        room = budget - reserve - obj.evaluations
        if r < tol:
            converged, message = True, f"converged: trust-region radius {r:.3g} < tol {tol:g}"
            break
        if room <= 0:
            break
        iteration += 1
        cands: list[FloatArray] = []
        rad = obj.radii(inc.x, r)
        mp = _model_point(obj, inc.x, inc.z, rad) if math.isfinite(inc.loss) else None
        if mp is not None:
            cands.append(mp)
        cloud = inc.x + rad * (2 * _sobol(d, max(batch - len(cands), 1), rng) - 1)
        cands.extend(np.clip(cloud, 0.0, 1.0))
        evs = [e for e in obj.run(cands, room) if e is not inc]
        best = min(evs, key=lambda e: e.loss) if evs else None
        if best is not None and best.loss < inc.loss:
            step = float(np.max(np.abs(best.x - inc.x)))
            inc = best
            # a long step: the model is trusted further; a short one: the optimum is near
            r = min(2 * r, 0.5) if step >= 0.5 * r else max(0.5 * r, 2 * step)
        else:
            r *= 0.5
        log.debug("iteration %d: loss %.4g, radius %.3g", iteration, inc.loss, r)

    if not math.isfinite(inc.loss):
        converged, message = False, "no point evaluated had finite residuals"
        log.warning(message)

    # 3. uncertainty: central differences of z on the search scale
    stderr, noise_se, ci, identified, cov = _uncertainty(obj, inc, fd_step)
    if not all(identified.values()):
        log.info("not identified: %s", [k for k, v in identified.items() if not v])
    best_point = obj.point(inc.key)
    band = band_part(inc.z)
    return FitResult(
        best=best_point,
        loss=inc.loss,
        band_loss=float(band @ band) if math.isfinite(inc.loss) else math.inf,
        residuals=inc.z.copy(),
        stderr=stderr,
        ci=ci,
        identified=identified,
        evaluations=obj.evaluations,
        history=list(obj.history),
        converged=converged,
        message=message,
        noise_stderr=noise_se,
        covariance=cov,
    )


def _uncertainty(
    obj: _Objective, inc: _Eval, fd_step: float
) -> tuple[
    dict[str, float],
    dict[str, float] | None,
    dict[str, tuple[float, float]],
    dict[str, bool],
    FloatArray,
]:
    """Standard errors (total, noise), 95 % intervals, identifiability and the covariance on the
    search scale, from a central-difference Jacobian at ``inc`` (see the module docstring)."""
    params = obj.parameters
    d = len(params)
    names = [p.name for p in params]
    key = inc.key
    theta = np.array([p.to_theta(v) for p, v in zip(params, key, strict=True)])
    pairs: list[tuple[FloatArray, FloatArray]] = []
    for i, p in enumerate(params):
        lo, hi = _fd_pair(p, float(inc.x[i]), fd_step)
        xm, xp = inc.x.copy(), inc.x.copy()
        xm[i], xp[i] = lo, hi
        pairs.append((xm, xp))
    flat = [x for pair in pairs for x in pair]
    obj.run(flat, len(flat))  # reserved in the budget
    n = inc.z.size
    jac = np.zeros((n, d))  # ∂z/∂θ
    for i, (xm, xp) in enumerate(pairs):
        em, ep = obj.cache[obj.key(xm)], obj.cache[obj.key(xp)]
        dtheta = params[i].to_theta(obj.key(xp)[i]) - params[i].to_theta(obj.key(xm)[i])
        if dtheta != 0:
            jac[:, i] = (ep.z - em.z) / dtheta
    span = np.array([p.span for p in params])
    nan = {k: math.nan for k in names}
    if not (np.all(np.isfinite(jac)) and np.all(np.isfinite(inc.z))):
        log.warning("non-finite residuals near the optimum: no uncertainty")
        ci_nan = {k: (math.nan, math.nan) for k in names}
        return nan, None, ci_nan, dict.fromkeys(names, False), np.full((d, d), np.nan)

    ju = jac * span  # ∂z/∂u: unit-free, comparable across parameters
    _, s, vt = np.linalg.svd(ju, full_matrices=True)
    sv = np.zeros(d)
    sv[: s.size] = s
    null = sv <= 1e-8 * max(float(sv.max()), 1e-300)
    inv = np.where(null, 0.0, 1.0 / np.where(null, 1.0, sv) ** 2)
    cov_u = (vt.T * inv) @ vt  # pinv(JuᵀJu)
    structural = np.ones(d, dtype=bool)
    if np.any(null):
        structural = ~np.any(np.abs(vt[null]) > 1e-3, axis=0)
        log.warning(
            "JᵀJ is singular (rank %d of %d): pseudo-inverse; not identified: %s",
            int(np.sum(~null)),
            d,
            [nm for nm, ok in zip(names, structural, strict=True) if not ok],
        )

    noise_cov_u = np.zeros((d, d))
    noise_se: dict[str, float] | None = None
    if inc.reps is not None and inc.reps.shape[0] >= 2:
        sigma_z = np.atleast_2d(np.cov(inc.reps, rowvar=False, ddof=1)) / inc.reps.shape[0]
        g = cov_u @ ju.T
        noise_cov_u = g @ sigma_z @ g.T
    cov_u_total = cov_u + noise_cov_u
    se_u = np.sqrt(np.maximum(np.diag(cov_u_total), 0.0))
    se_u[~structural] = math.inf
    identified = structural & (Z95 * se_u < 1.0)
    se = se_u * span
    if inc.reps is not None and inc.reps.shape[0] >= 2:
        nse = np.sqrt(np.maximum(np.diag(noise_cov_u), 0.0)) * span
        nse[~structural] = math.inf
        noise_se = {k: float(v) for k, v in zip(names, nse, strict=True)}
    cov = cov_u_total * np.outer(span, span)
    cov[~structural, :] = math.nan
    cov[:, ~structural] = math.nan
    ci: dict[str, tuple[float, float]] = {}
    for i, p in enumerate(params):
        half = Z95 * se[i]
        lo_t, hi_t = theta[i] - half, theta[i] + half
        if p.log:
            ci[p.name] = (_exp(lo_t), _exp(hi_t))
        else:
            ci[p.name] = (float(lo_t), float(hi_t))
    stderr = {k: float(v) for k, v in zip(names, se, strict=True)}
    return stderr, noise_se, ci, {k: bool(v) for k, v in zip(names, identified, strict=True)}, cov
