"""Intensity profiles λ(t) of the surge source, and their cumulative Λ(t) and its inverse.

A profile has knots ``t`` (strictly increasing, ``t[0] >= 0``), rates at the knots, and per segment
a shape: linear (λ interpolates the two knot rates) or exponential (λ decays or grows from the
left rate toward the right one with time constant ``tau``; the rate may jump at the right knot).
λ is 0 before the first knot and from the last one on. Λ has a closed form per segment; its
inverse is a quadratic on linear segments and a safeguarded Newton iteration on exponential ones.
These are the building blocks of the samplers in ``sim.kernels.arrivals``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

__all__ = ["EXP", "LINEAR", "SHAPE_NAMES", "Profile"]
F64 = NDArray[np.float64]
LINEAR, EXP = 0, 1
_SHAPES = {"linear": LINEAR, "exp": EXP}
SHAPE_NAMES = tuple(_SHAPES)  # the segment shapes a profile accepts, by name


# ---------------------------------------------------------------- per-segment closed forms
@njit(cache=True, error_model="numpy")
def _seg_cum(x: float, h: float, r0: float, r1: float, shp: int, tau: float) -> float:
    if shp == LINEAR:
        return x * (r0 + 0.5 * (r1 - r0) * (x / h))
    return r1 * x - (r0 - r1) * tau * math.expm1(-x / tau)


@njit(cache=True, error_model="numpy")
def _seg_invert(
    r: float, h: float, r0: float, r1: float, shp: int, tau: float, x0: float
) -> tuple[float, float]:
    """x in [0, h] with segment cumulative(x) = r, and the rate at the last Newton iterate."""
    if shp == LINEAR:
        disc = max(r0 * r0 + 2.0 * ((r1 - r0) / h) * r, 0.0)
        den = r0 + math.sqrt(disc)
        return min(max(2.0 * r / den if den > 0.0 else 0.0, 0.0), h), 0.0
    c = r0 - r1
    if c == 0.0:
        return min(r / r1 if r1 > 0.0 else 0.0, h), r1
    lo, hi, x, lam = 0.0, h, min(max(x0, 0.0), h), r0
    for _ in range(100):
        v = -x / tau  # exp - 1 is exact enough below -0.5 and much faster than expm1
        em1 = math.expm1(v) if v > -0.5 else math.exp(v) - 1.0
        lam = r1 + c * (1.0 + em1)
        g = r1 * x - c * tau * em1 - r
        if g == 0.0:
            break
        if g < 0.0:
            lo = x
        else:
            hi = x
        xn = x - g / lam if lam > 0.0 else lo - 1.0
        if not lo < xn < hi:
            xn = 0.5 * (lo + hi)  # Newton left the bracket: bisect
        dx, x = xn - x, xn
        if hi - lo <= 4e-16 * hi:
            break
        # Newton error after this step ~ curv dx^2 / 2 with curv = |G''| / G' (no divisions)
        k = abs(c) * (1.0 + em1) * abs(dx)
        if lam > 0.0 and k < 1e-3 * tau * lam and k * abs(dx) <= 1e-16 * x * tau * lam:
            break
    return x, lam


@njit(cache=True)
def _cum_at_knots(t: F64, rate: F64, shape: NDArray[np.int64], tau: F64) -> F64:
    cum = np.zeros(t.size)
    for i in range(t.size - 1):
        h = t[i + 1] - t[i]
        cum[i + 1] = cum[i] + _seg_cum(h, h, rate[i], rate[i + 1], shape[i], tau[i])
    return cum


@njit(cache=True)
def _cumulative(t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64, xs: F64) -> F64:
    n = t.size - 1
    out = np.zeros(xs.size)
    for k in range(xs.size):
        x = xs[k]
        if x >= t[n]:
            out[k] = cum[n]
        elif x >= t[0]:
            i = np.searchsorted(t, x, side="right") - 1
            h = t[i + 1] - t[i]
            out[k] = cum[i] + _seg_cum(x - t[i], h, rate[i], rate[i + 1], shape[i], tau[i])
    return out


@njit(cache=True)
def _rate1(x: float, t: F64, rate: F64, shape: NDArray[np.int64], tau: F64) -> float:
    if not t[0] <= x < t[t.size - 1]:
        return 0.0
    i = np.searchsorted(t, x, side="right") - 1
    d, r0, r1 = x - t[i], rate[i], rate[i + 1]
    if shape[i] == LINEAR:
        return r0 + (r1 - r0) * (d / (t[i + 1] - t[i]))
    return r1 + (r0 - r1) * math.exp(-d / tau[i])


@njit(cache=True)
def _rates(t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64, xs: F64) -> F64:
    out = np.empty(xs.size)
    for k in range(xs.size):
        out[k] = _rate1(xs[k], t, rate, shape, tau)
    return out


@njit(cache=True, error_model="numpy")
def _invert(t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64, ys: F64) -> F64:
    n, out = t.size - 1, np.empty(ys.size)
    for k in range(ys.size):
        y = ys[k]
        if not y >= 0.0:
            out[k] = np.nan
        elif y >= cum[n]:
            out[k] = np.inf
        else:  # cum[i] <= y < cum[i+1]: zero-mass segments are never picked
            i = np.searchsorted(cum, y, side="right") - 1
            r, h, m = y - cum[i], t[i + 1] - t[i], cum[i + 1] - cum[i]
            x = _seg_invert(r, h, rate[i], rate[i + 1], shape[i], tau[i], h * r / m)[0]
            out[k] = min(t[i] + x, np.nextafter(t[n], -np.inf))
    return out


def _arr(name: str, v: ArrayLike, size: int) -> F64:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Profile.{name}={v!r}: expected numbers ({e})") from None
    if a.ndim != 1 or a.size != size:
        raise ValueError(f"Profile.{name}={v!r}: expected a 1-D array of length {size}")
    if (i := _first(~np.isfinite(a))) is not None:
        raise ValueError(f"Profile.{name}[{i}]={a[i]}: must be finite")
    a.setflags(write=False)
    return a


def _first(mask: NDArray[np.bool_]) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


@dataclass(frozen=True, eq=False)
class Profile:
    """Piecewise intensity (arrivals/s) on knots t; see the module docstring."""

    t: F64
    rate: F64
    shape: NDArray[np.int64]
    tau: F64
    cum: F64 = field(init=False, repr=False)  # Lambda at the knots

    def __post_init__(self) -> None:
        n = np.size(self.t) - 1
        if n < 1:
            raise ValueError(f"Profile.t={self.t!r}: needs at least 2 knots")
        t, rate = _arr("t", self.t, n + 1), _arr("rate", self.rate, n + 1)
        shape_f, tau = _arr("shape", self.shape, n), _arr("tau", self.tau, n)
        if (i := _first((shape_f != LINEAR) & (shape_f != EXP))) is not None:
            raise ValueError(f"Profile.shape[{i}]={shape_f[i]}: allowed 0 (linear), 1 (exp)")
        shape = shape_f.astype(np.int64)
        shape.setflags(write=False)
        if t[0] < 0:
            raise ValueError(f"Profile.t[0]={t[0]}: must be >= 0")
        if (i := _first(np.diff(t) <= 0)) is not None:
            raise ValueError(f"Profile.t[{i + 1}]={t[i + 1]}: must be > t[{i}]={t[i]}")
        if (i := _first(rate < 0)) is not None:
            raise ValueError(f"Profile.rate[{i}]={rate[i]}: must be >= 0")
        if (i := _first((shape == EXP) & (tau <= 0))) is not None:
            raise ValueError(f"Profile.tau[{i}]={tau[i]}: must be > 0 on exp segments")
        for name, v in (("t", t), ("rate", rate), ("shape", shape), ("tau", tau)):
            object.__setattr__(self, name, v)
        cum = _cum_at_knots(t, rate, shape, tau)
        cum.setflags(write=False)
        object.__setattr__(self, "cum", cum)

    @classmethod
    def from_points(
        cls,
        points: Sequence[tuple[float, float]],
        shapes: Sequence[str] | None = None,
        taus: Sequence[float] | None = None,
    ) -> Profile:
        """Knots as (time_s, rate) pairs; shapes "linear" (default) or "exp" per segment."""
        n = len(points) - 1
        shp = [_SHAPES.get(s, -1) for s in (shapes or ["linear"] * n)]
        tt, rr = zip(*points, strict=True) if len(points) else ((), ())
        return cls(np.array(tt), np.array(rr), np.array(shp), np.array(taus or [0.0] * n))

    @property
    def start_s(self) -> float:
        return float(self.t[0])

    @property
    def end_s(self) -> float:
        return float(self.t[-1])

    def total(self) -> float:
        """Expected number of arrivals, Lambda(t[n])."""
        return float(self.cum[-1])

    def scaled(self, factor: float) -> Profile:
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError(f"factor={factor}: must be finite and >= 0")
        return Profile(self.t, self.rate * factor, self.shape, self.tau)

    def arrays(self) -> tuple[F64, F64, NDArray[np.int64], F64, F64]:
        """(t, rate, shape, tau, cum): the kernels' view of the profile."""
        return self.t, self.rate, self.shape, self.tau, self.cum

    def _apply(self, kernel: Callable[..., F64], x: float | ArrayLike) -> float | F64:
        xs = np.asarray(x, dtype=np.float64)
        if np.isnan(xs).any():
            raise ValueError(f"x={x!r}: NaN is not a time or a cumulative intensity")
        res = kernel(*self.arrays(), xs.reshape(-1))
        return float(res[0]) if xs.ndim == 0 else res.reshape(xs.shape)

    @overload
    def cumulative(self, x: float) -> float: ...
    @overload
    def cumulative(self, x: F64) -> F64: ...
    def cumulative(self, x: float | F64) -> float | F64:
        """Lambda(x): expected arrivals in [t[0], x)."""
        return self._apply(_cumulative, x)

    @overload
    def rate_at(self, x: float) -> float: ...
    @overload
    def rate_at(self, x: F64) -> F64: ...
    def rate_at(self, x: float | F64) -> float | F64:
        """lambda(x), arrivals per second (0 outside [t[0], t[n]))."""
        return self._apply(_rates, x)

    @overload
    def inverse(self, y: float) -> float: ...
    @overload
    def inverse(self, y: F64) -> F64: ...
    def inverse(self, y: float | F64) -> float | F64:
        """Lambda^{-1}(y) = inf{t: Lambda(t) > y} for 0 <= y < total() (never inside a stretch
        of zero rate); +inf from total() on, NaN below 0."""
        return self._apply(_invert, y)
