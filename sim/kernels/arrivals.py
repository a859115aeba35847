"""Arrivals of new listeners as a non-homogeneous Poisson process (NHPP).

An NHPP with intensity lambda(t) >= 0 has independent counts, and the count on [a, b) is
Poisson with mean Lambda(b) - Lambda(a), where Lambda(t) = integral of lambda from t[0] to t
is the *cumulative intensity*. The two classic ways of sampling one:

Inversion (time change). Lambda maps the NHPP onto a unit-rate Poisson process: if
S_1 < S_2 < ... are the points of a rate-1 process (S_k = S_{k-1} + Exp(1)), then
t_k = Lambda^{-1}(S_k) are the points of the NHPP. Each arrival costs one exponential draw
and one inversion. Our profiles are piecewise (linear or exponential segments), so
Lambda is known in closed form per segment; its inverse is a quadratic on linear segments
(solved in the cancellation-free form x = 2u / (r0 + sqrt(r0^2 + 2 a u))) and a
safeguarded Newton iteration on exponential segments (Lambda is monotone, so a bracket
plus bisection fallback always converges). Segments with zero mass are never selected,
because the segment is found with `searchsorted(cum, y, side="right")`.
Given a count N for a window, the N points are i.i.d. with density lambda / mass, so they
can also be made from N sorted uniforms (via exponential spacings S_j / S_{N+1}, which
come out sorted) mapped through the window's inverse cumulative: windows are then
independent, and this is how `sample_parallel` spreads the work over threads.

Thinning (Lewis-Shedler). For any intensity bounded by lam_max, draw a homogeneous
process of rate lam_max and keep a point t with probability lambda(t) / lam_max. It needs
no Lambda at all, at the price of lam_max / mean(lambda) candidate points per arrival.

Profile knots t (strictly increasing, t[0] >= 0), rates at the knots, and per segment
shape (0 = linear, 1 = exponential) and tau. Segment i covers [t[i], t[i+1]):
linear: lambda = r_i + (r_{i+1} - r_i) (t - t_i) / (t_{i+1} - t_i)
exp: lambda = r_{i+1} + (r_i - r_{i+1}) exp(-(t - t_i) / tau_i)  (asymptote r_{i+1})
and lambda = 0 outside [t[0], t[n]).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]
LINEAR, EXP = 0, 1
_SHAPES = {"linear": LINEAR, "exp": EXP}
_U11, _ONE = np.uint64(11), np.uint64(1)
_GOLDEN, _M1, _M2 = (np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


# ---------------------------------------------------------------- per-segment closed forms
@njit(cache=True)
def _seg_cum(x: float, h: float, r0: float, r1: float, shp: int, tau: float) -> float:
    if shp == LINEAR:
        return x * (r0 + 0.5 * (r1 - r0) * (x / h))
    return r1 * x - (r0 - r1) * tau * math.expm1(-x / tau)


@njit(cache=True)
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
        em1 = math.expm1(-x / tau)
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
        if lam > 0.0:  # Newton error after this step ~ curv * dx^2 / 2
            curv = abs(c) * (1.0 + em1) / (tau * lam)
            if curv * abs(dx) < 1e-3 and curv * dx * dx <= 1e-16 * x:
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
def _eval(
    t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64, xs: F64, want_rate: bool
) -> F64:
    """Lambda(xs) (want_rate False) or lambda(xs) (want_rate True)."""
    n = t.size - 1
    out = np.zeros(xs.size)
    for k in range(xs.size):
        x = xs[k]
        if x >= t[n]:
            out[k] = 0.0 if want_rate else cum[n]
        elif x >= t[0]:
            i = np.searchsorted(t, x, side="right") - 1
            h, d, r0, r1 = t[i + 1] - t[i], x - t[i], rate[i], rate[i + 1]
            if not want_rate:
                out[k] = cum[i] + _seg_cum(d, h, r0, r1, shape[i], tau[i])
            elif shape[i] == LINEAR:
                out[k] = r0 + (r1 - r0) * (d / h)
            else:
                out[k] = r1 + (r0 - r1) * math.exp(-d / tau[i])
    return out


@njit(cache=True)
def _rate1(x: float, t: F64, rate: F64, shape: NDArray[np.int64], tau: F64) -> float:
    return _eval(t, rate, shape, tau, t, np.full(1, x), True)[0]


@njit(cache=True)
def _map_next(
    t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64,
    y: float, i: int, x: float, r_prev: float, lam: float,
) -> tuple[float, int, float, float, float]:  # fmt: skip
    """Lambda^{-1}(y) for y not below the previous target, segment search starting at i,
    Newton warm-started from the previous point (x, r_prev, lam) when in the same segment."""
    n = t.size - 1
    if y >= cum[n]:
        return np.inf, i, x, r_prev, lam
    warm = x >= 0.0 and lam > 0.0
    while y >= cum[i + 1]:
        i += 1
        warm = False
    r, h = y - cum[i], t[i + 1] - t[i]
    x0 = x + (r - r_prev) / lam if warm else h * r / (cum[i + 1] - cum[i])
    x, lam = _seg_invert(r, h, rate[i], rate[i + 1], shape[i], tau[i], x0)
    return min(t[i] + x, np.nextafter(t[n], -np.inf)), i, x, r, lam


@njit(cache=True)
def _invert(t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64, ys: F64) -> F64:
    out = np.empty(ys.size)
    for k in range(ys.size):
        y = ys[k]
        if not y >= 0.0:
            out[k] = np.nan
        else:
            i = max(np.searchsorted(cum, y, side="right") - 1, 0)
            out[k] = _map_next(t, rate, shape, tau, cum, y, min(i, t.size - 2), -1.0, 0, 0)[0]
    return out


# ---------------------------------------------------------------- streaming sampler kernel
@njit(cache=True)
def _stream_fill(
    t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64,
    rng: np.random.Generator, st: F64, t_end: float, out: F64,
) -> int:  # fmt: skip
    """Emit pending points < t_end into out; st = [S, t_pending (nan: none drawn), segment,
    x, residual, rate] of the pending point, updated in place."""
    s, tp, i, x, r, lam = st[0], st[1], int(st[2]), st[3], st[4], st[5]
    if np.isnan(tp):
        s = rng.standard_exponential()
        tp, i, x, r, lam = _map_next(t, rate, shape, tau, cum, s, 0, -1.0, 0.0, 0.0)
    k = 0
    while k < out.size and tp < t_end:
        out[k] = tp
        k += 1
        s += rng.standard_exponential()
        tn, i, x, r, lam = _map_next(t, rate, shape, tau, cum, s, i, x, r, lam)
        tp = max(tn, tp)  # sorted even if an inversion is off by an ulp
    st[0], st[1], st[2], st[3], st[4], st[5] = s, tp, i, x, r, lam
    return k


# ---------------------------------------------------------------- parallel sampler kernels
@njit(cache=True)
def _mix64(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _rotl(x: np.uint64, k: int) -> np.uint64:
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def _window_exps(k0: np.uint64, k1: np.uint64, w: int, out: F64, o: int, m: int) -> float:
    """Cumulated Exp(1) draws of window w: out[o + j] = S_{j+1} for j < m; returns S_{m+1}.
    xoshiro256** seeded by splitmix64 from (key, w): a counter-based stream per window."""
    z = _mix64(k0 + np.uint64(w) * _GOLDEN) ^ k1
    z0 = _mix64(z + _GOLDEN)
    z1 = _mix64(z + np.uint64(2) * _GOLDEN)
    z2 = _mix64(z + np.uint64(3) * _GOLDEN)
    z3 = _mix64(z + np.uint64(4) * _GOLDEN)
    acc = 0.0
    for j in range(m + 1):
        u = _rotl(z1 * np.uint64(5), 7) * np.uint64(9)
        tt = z1 << np.uint64(17)
        z2 ^= z0
        z3 ^= z1
        z1 ^= z2
        z0 ^= z3
        z2 ^= tt
        z3 = _rotl(z3, 45)
        acc -= math.log(float((u >> _U11) + _ONE) * 1.1102230246251565e-16)
        if j < m:
            out[o + j] = acc
    return acc


@njit(cache=True, parallel=True)
def _fill_windows(
    t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64, edges: F64, base: F64,
    offs: NDArray[np.int64], w0: int, w1: int, key: NDArray[np.uint64], out: F64,
) -> None:  # fmt: skip
    """Windows w0..w1-1: N_w = offs[w+1] - offs[w] sorted points in [edges[w], edges[w+1])."""
    for q in prange(w1 - w0):
        w = w0 + q
        m, o = offs[w + 1] - offs[w], offs[w] - offs[w0]
        if m == 0:
            continue
        scale = (base[w + 1] - base[w]) / _window_exps(key[0], key[1], w, out, o, m)
        i = min(max(np.searchsorted(cum, base[w], side="right") - 1, 0), t.size - 2)
        x, r, lam, prev = -1.0, 0.0, 0.0, edges[w]
        hi = np.nextafter(edges[w + 1], -np.inf)
        for j in range(m):
            y = base[w] + out[o + j] * scale
            tv, i, x, r, lam = _map_next(t, rate, shape, tau, cum, y, i, x, r, lam)
            prev = min(max(tv, prev), hi)
            out[o + j] = prev


# ---------------------------------------------------------------- thinning kernel
@njit(cache=True)
def _thin(
    rate_fn: Callable[..., float], args: tuple, lam_max: float, t0: float, t1: float,  # type: ignore[type-arg]
    rng: np.random.Generator,
) -> tuple[F64, float, float]:  # fmt: skip
    """Lewis-Shedler; returns (arrivals, t, rate) with t = nan unless rate(t) broke the bound."""
    out = np.empty(64)
    n, tt = 0, t0
    while True:
        tt += rng.standard_exponential() / lam_max
        if tt >= t1:
            return out[:n], np.nan, np.nan
        lam = rate_fn(tt, *args)
        if not 0.0 <= lam <= lam_max:
            return out[:n], tt, lam
        if rng.random() * lam_max < lam:
            if n == out.size:
                out = np.concatenate((out, np.empty(n)))
            out[n] = tt
            n += 1


# ---------------------------------------------------------------- public API
def _arr(name: str, v: ArrayLike, dtype: type, size: int | None) -> NDArray[np.generic]:
    a = np.array(v, dtype=np.float64).reshape(-1) if np.ndim(v) <= 1 else None
    if a is None or (size is not None and a.size != size) or a.size == 0:
        raise ValueError(f"Profile.{name}={v!r}: expected a 1-D array of length {size or '>= 2'}")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise ValueError(f"Profile.{name}[{bad[0]}]={a[bad[0]]}: must be finite")
    out = a.astype(dtype)
    if not np.array_equal(out, a):
        raise ValueError(f"Profile.{name}={a!r}: must hold integers (0 linear, 1 exp)")
    out.setflags(write=False)
    return out


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
        t = _arr("t", self.t, np.float64, None)
        if t.size < 2:
            raise ValueError(f"Profile.t={t!r}: needs at least 2 knots")
        n = t.size - 1
        rate = _arr("rate", self.rate, np.float64, n + 1)
        shape = _arr("shape", self.shape, np.int64, n)
        tau = _arr("tau", self.tau, np.float64, n)
        if t[0] < 0:
            raise ValueError(f"Profile.t[0]={t[0]}: must be >= 0")
        if (i := _first(np.diff(t) <= 0)) is not None:
            raise ValueError(f"Profile.t[{i + 1}]={t[i + 1]}: must be > t[{i}]={t[i]}")
        if (i := _first(rate < 0)) is not None:
            raise ValueError(f"Profile.rate[{i}]={rate[i]}: must be >= 0")
        if (i := _first((shape != LINEAR) & (shape != EXP))) is not None:
            raise ValueError(f"Profile.shape[{i}]={shape[i]}: allowed 0 (linear), 1 (exp)")
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
        tt, rr = zip(*points, strict=True) if points else ((), ())
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

    def _apply(self, x: float | ArrayLike, kind: int) -> float | F64:
        xs = np.asarray(x, dtype=np.float64)
        if np.isnan(xs).any():
            raise ValueError(f"x={x!r}: NaN is not a time or a cumulative intensity")
        a = (self.t, self.rate, self.shape, self.tau, self.cum)
        flat = xs.reshape(-1)
        res = _invert(*a, flat) if kind == 2 else _eval(*a, flat, kind == 1)
        return float(res[0]) if xs.ndim == 0 else res.reshape(xs.shape)

    @overload
    def cumulative(self, x: float) -> float: ...
    @overload
    def cumulative(self, x: F64) -> F64: ...
    def cumulative(self, x: float | F64) -> float | F64:
        """Lambda(x): expected arrivals in [t[0], x)."""
        return self._apply(x, 0)

    @overload
    def rate_at(self, x: float) -> float: ...
    @overload
    def rate_at(self, x: F64) -> F64: ...
    def rate_at(self, x: float | F64) -> float | F64:
        """lambda(x), arrivals per second (0 outside [t[0], t[n]))."""
        return self._apply(x, 1)

    @overload
    def inverse(self, y: float) -> float: ...
    @overload
    def inverse(self, y: F64) -> F64: ...
    def inverse(self, y: float | F64) -> float | F64:
        """Lambda^{-1}(y) = min{t: Lambda(t) = y} for 0 <= y < total(); +inf from total() on."""
        return self._apply(y, 2)


class NHPPStream:
    """Arrivals by inversion of unit-rate points, delivered batch by batch.

    The stream owns `rng`: the points are the same, bit for bit, whatever the t_end
    sequence (ticks of 0.1 s, 7 s or a single call), because the one point drawn beyond a
    batch's t_end is carried over and every point is computed from carried state only.
    """

    def __init__(self, profile: Profile, rng: np.random.Generator) -> None:
        self.profile = profile
        self.rng = rng
        self._state = np.array([0.0, np.nan, 0.0, -1.0, 0.0, 0.0])
        self._t_now = -math.inf

    @property
    def t_now(self) -> float:
        """End of the last completed batch (-inf before the first)."""
        return self._t_now

    @property
    def exhausted(self) -> bool:
        return bool(self._state[1] == math.inf)

    def iter_chunks(self, t_end: float, max_chunk: int = 1 << 20) -> Iterator[F64]:
        """Sorted arrivals in [t_now, t_end) as arrays of at most max_chunk each."""
        if not t_end >= self._t_now:
            raise ValueError(f"t_end={t_end}: must be >= the previous t_end={self._t_now}")
        if max_chunk < 1:
            raise ValueError(f"max_chunk={max_chunk}: must be >= 1")
        p = self.profile
        while True:
            mean = max(p.cumulative(min(t_end, p.end_s)) - self._state[0], 0.0)
            buf = np.empty(int(min(max_chunk, mean + 6.0 * math.sqrt(mean) + 16.0)))
            k = _stream_fill(p.t, p.rate, p.shape, p.tau, p.cum, self.rng, self._state, t_end, buf)
            if k:
                yield buf[:k]
            if k < buf.size:
                break
        self._t_now = t_end

    def next_batch(self, t_end: float) -> F64:
        """All arrivals in [previous t_end, t_end), sorted."""
        chunks = list(self.iter_chunks(t_end))
        return chunks[0] if len(chunks) == 1 else np.concatenate([np.empty(0), *chunks])


def _plan(profile: Profile, seed: int, window_s: float) -> tuple[F64, F64, NDArray[np.int64], NDArray[np.uint64]]:  # fmt: skip
    if not (math.isfinite(window_s) and window_s > 0):
        raise ValueError(f"window_s={window_s}: must be finite and > 0")
    t0, tn = profile.start_s, profile.end_s
    if (tn - t0) / window_s > 1e8:
        raise ValueError(f"window_s={window_s}: more than 1e8 windows on [{t0}, {tn})")
    edges = t0 + window_s * np.arange(math.ceil((tn - t0) / window_s))
    edges = np.append(edges[edges < tn], tn)
    base = np.asarray(profile.cumulative(edges))
    count_ss, key_ss = np.random.SeedSequence(seed).spawn(2)
    counts = np.random.default_rng(count_ss).poisson(np.maximum(np.diff(base), 0.0))
    offs = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return edges, base, offs, key_ss.generate_state(2, np.uint64)


def iter_parallel(
    profile: Profile,
    seed: int,
    window_s: float = 0.1,
    max_chunk: int = 1 << 24,
    n_threads: int | None = None,
) -> Iterator[F64]:
    """`sample_parallel` in sorted chunks of whole windows, each of at most max_chunk
    arrivals (a single window above max_chunk is yielded alone)."""
    edges, base, offs, key = _plan(profile, seed, window_s)
    if n_threads is not None and not 1 <= n_threads <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"n_threads={n_threads}: allowed 1..{numba.config.NUMBA_NUM_THREADS}")
    p, nw, w0 = profile, edges.size - 1, 0
    while w0 < nw:
        w1 = max(int(np.searchsorted(offs, offs[w0] + max_chunk, side="right")) - 1, w0 + 1)
        w1 = min(w1, nw)
        out = np.empty(int(offs[w1] - offs[w0]))
        prev = numba.get_num_threads()
        numba.set_num_threads(n_threads or prev)
        try:
            with np.errstate(over="ignore"):  # uint64 wrap-around when run without JIT
                _fill_windows(p.t, p.rate, p.shape, p.tau, p.cum, edges, base, offs, w0, w1, key, out)  # fmt: skip
        finally:
            numba.set_num_threads(prev)
        yield out
        w0 = w1


def sample_parallel(
    profile: Profile, seed: int, window_s: float = 0.1, n_threads: int | None = None
) -> F64:
    """All arrivals on [t[0], t[n]), sorted, with windows of window_s sampled in parallel.

    Window w gets N_w ~ Poisson(window mass) (one numpy Generator from SeedSequence(seed))
    and its own counter-based stream keyed by (seed, w), so the result depends on
    (profile, seed, window_s) only, never on the number of threads.
    """
    return next(iter_parallel(profile, seed, window_s, 1 << 62, n_threads))


def sample_thinning(
    rate_fn: Callable[[float], float] | Profile,
    lam_max: float | None,
    t0: float | None,
    t1: float | None,
    rng: np.random.Generator,
) -> F64:
    """Lewis-Shedler thinning of a bounded intensity on [t0, t1).

    rate_fn: an `@numba.njit` function t -> rate, or a Profile (then None for lam_max, t0,
    t1 means max(rate), start_s, end_s). Raises ValueError at a point where the rate is
    outside [0, lam_max].
    """
    args: tuple[F64 | NDArray[np.int64], ...] = ()
    fn: Callable[..., float] = rate_fn
    if isinstance(rate_fn, Profile):
        fn, args = _rate1, (rate_fn.t, rate_fn.rate, rate_fn.shape, rate_fn.tau)
        lam_max = float(rate_fn.rate.max()) if lam_max is None else lam_max
        t0 = rate_fn.start_s if t0 is None else t0
        t1 = rate_fn.end_s if t1 is None else t1
    elif not (numba.config.DISABLE_JIT or hasattr(rate_fn, "py_func")):
        raise TypeError(f"rate_fn={rate_fn!r}: must be an @numba.njit function or a Profile")
    if lam_max is None or t0 is None or t1 is None:
        raise ValueError("lam_max, t0 and t1 are required unless rate_fn is a Profile")
    if not (math.isfinite(lam_max) and lam_max > 0):
        raise ValueError(f"lam_max={lam_max}: must be finite and > 0")
    if not (math.isfinite(t0) and math.isfinite(t1) and t0 <= t1):
        raise ValueError(f"[t0, t1)=[{t0}, {t1}): must be finite with t0 <= t1")
    out, t_bad, lam_bad = _thin(fn, args, float(lam_max), float(t0), float(t1), rng)
    if not math.isnan(t_bad):
        raise ValueError(f"rate_fn({t_bad})={lam_bad}: outside the allowed [0, {lam_max}]")
    return out
