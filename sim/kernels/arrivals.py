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
Given a count N ~ Poisson(mass) for a window, the N points are i.i.d. with density
lambda / mass, so they can also be made from N sorted uniforms (exponential spacings
S_j / S_{N+1} come out sorted, no sort needed) mapped through the inverse cumulative:
windows are then independent, which is how `sample_parallel` spreads work over threads.
There, Newton on an exp segment starts from the window's linearisation and takes a fixed
3 steps, branch-free and vectorised, only where the quadratic-convergence bound
e_{k+1} <= K e_k^2 (K = max|Lambda''| / (2 min lambda) on the window) proves the result
exact to rounding; elsewhere it falls back to the safeguarded scalar Newton.

Thinning (Lewis-Shedler). For any intensity bounded by lam_max, draw a homogeneous
process of rate lam_max and keep a point t with probability lambda(t) / lam_max. It needs
no Lambda at all, at the price of lam_max / mean(lambda) candidate points per arrival.

Reproducibility. `NHPPStream` carries S and the one point drawn past each batch end, so
its points do not depend on how time is cut into batches. `sample_parallel` cuts [t0, tn)
into windows of window_s (a grid set by the profile and window_s only), draws all window
counts from one Generator seeded by SeedSequence(seed), and gives window w its own
xoshiro256** stream keyed by (seed, w): the same output for any number of threads.

Profile knots t (strictly increasing, t[0] >= 0), rates at the knots, and per segment
shape (0 = linear, 1 = exponential) and tau. Segment i covers [t[i], t[i+1]):
linear: lambda = r_i + (r_{i+1} - r_i) (t - t_i) / (t_{i+1} - t_i)
exp: lambda = r_{i+1} + (r_i - r_{i+1}) exp(-(t - t_i) / tau_i)  (asymptote r_{i+1})
and lambda = 0 outside [t[0], t[n]).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from sim.kernels.profile import F64, LINEAR, Profile, _rate1, _seg_cum, _seg_invert

__all__ = [
    "NHPPStream",
    "Profile",
    "iter_parallel",
    "iter_thinning",
    "sample_parallel",
    "sample_thinning",
]


_U11, _ONE = np.uint64(11), np.uint64(1)
_GOLDEN, _M1, _M2 = (
    np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
)


# ---------------------------------------------------------------- streaming sampler kernel
@njit(cache=True, error_model="numpy")
def _stream_fill(
    t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64,
    rng: np.random.Generator, st: F64, t_end: float, out: F64,
) -> int:  # fmt: skip
    """Emit the pending points < t_end into out, drawing S += Exp(1) and mapping each by
    Lambda^{-1}; st = [S, t (nan: nothing drawn yet, inf: exhausted), segment, x, residual,
    rate] of the pending point, updated in place. Scalars only in the loop (fast)."""
    n, t_last = t.size - 1, np.nextafter(t[-1], -np.inf)
    s, tp, i, x, r, lam = st[0], st[1], int(st[2]), st[3], st[4], st[5]
    fresh, k = np.isnan(tp), 0
    if fresh:
        tp = -np.inf
    while fresh or (k < out.size and tp < t_end):
        if fresh:
            fresh = False
        else:
            out[k] = tp
            k += 1
        s += rng.standard_exponential()
        if s >= cum[n]:
            tp = np.inf
            break
        warm = lam > 0.0  # Newton starts from the previous point of the same segment
        while s >= cum[i + 1]:
            i, warm = i + 1, False
        ri, h = s - cum[i], t[i + 1] - t[i]
        x0 = x + (ri - r) / lam if warm else h * ri / (cum[i + 1] - cum[i])
        x, lam = _seg_invert(ri, h, rate[i], rate[i + 1], shape[i], tau[i], x0)
        r, tp = ri, max(min(t[i] + x, t_last), tp)  # sorted even if off by an ulp
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
def _window_exps(k0: np.uint64, k1: np.uint64, w: int, out: F64) -> float:
    """Cumulated Exp(1) draws of window w: out[j] = S_{j+1} for j < out.size; returns S_{m+1}.
    xoshiro256** seeded by splitmix64 from (key, w): a counter-based stream per window."""
    z = _mix64(k0 + np.uint64(w) * _GOLDEN) ^ k1
    z0, z1 = _mix64(z + _GOLDEN), _mix64(z + np.uint64(2) * _GOLDEN)
    z2, z3 = _mix64(z + np.uint64(3) * _GOLDEN), _mix64(z + np.uint64(4) * _GOLDEN)
    acc, m = 0.0, out.size
    for j in range(m + 1):
        u = _rotl(z1 * np.uint64(5), 7) * np.uint64(9)
        tt = z1 << np.uint64(17)
        z2 ^= z0
        z3 ^= z1
        z1 ^= z2
        z0 ^= z3
        z2 ^= tt
        z3 = _rotl(z3, 45)
        # (top 53 bits + 1) / 2^53 is uniform on (0, 1]; int64 converts fast, uint64 does not
        acc -= math.log(float(np.int64(u >> _U11) + 1) * 1.1102230246251565e-16)
        if j < m:
            out[j] = acc
    return acc


@njit(cache=True, error_model="numpy")
def _one_minus_exp(d: float) -> float:
    """1 - exp(-d) for 0 <= d <= 1/32 to double precision (Taylor to d^8, error < 1e-20 d)."""
    p = 1.0 / 120 - d * (1.0 / 720 - d * (1.0 / 5040 - d * (1.0 / 40320)))
    return d * (1.0 - d * (0.5 - d * (1.0 / 6 - d * (1.0 / 24 - d * p))))


@njit(cache=True, error_model="numpy")
def _map_block(
    out: F64, scale: float, d_lo: float, t_i: float,
    h: float, r0: float, r1: float, shp: int, tau: float, xa: float, span: float,
) -> None:  # fmt: skip
    """out[j] = t_i + x with Lambda_i(x) = out[j] * scale - d_lo: the points of one window
    inside segment i, whose part of the window is [xa, xa + span]. Loops run over a view
    from 0 so that LLVM can vectorise them."""
    if shp == LINEAR or r0 == r1:  # closed form, vectorised
        a = (r1 - r0) / h
        for j in range(out.size):
            r = max(out[j] * scale - d_lo, 0.0)
            den = r0 + math.sqrt(max(r0 * r0 + 2.0 * a * r, 0.0))
            out[j] = t_i + min(2.0 * r / den if den > 0.0 else 0.0, h)
        return
    c = r0 - r1
    za = math.exp(-xa / tau)
    lam_lo = min(r1 + c * za, r1 + c * za * math.exp(-span / tau))
    # Newton from xa on [xa, xa + span]: error_k+1 <= K error_k^2 with K = max|G''|/(2 min G');
    # rho = K span <= 1/16 makes 4 steps (the predictor plus 3) exact to 2^-60 span.
    rho = abs(c) * za * span / (2.0 * tau * lam_lo) if lam_lo > 0.0 else np.inf
    if rho <= 1.0 / 16 and span <= tau / 32:
        ra, cza, inv_tau = _seg_cum(xa, h, r0, r1, shp, tau), c * za, 1.0 / tau
        inv_lam = 1.0 / (r1 + cza)
        for j in range(out.size):  # branch-free, vectorised; x is relative to xa
            dr = out[j] * scale - d_lo - ra
            x = min(max(dr * inv_lam, 0.0), span)
            for _ in range(3):
                q = _one_minus_exp(x * inv_tau)
                g = r1 * x + cza * tau * q - dr
                x = min(max(x - g / (r1 + cza * (1.0 - q)), 0.0), span)
            out[j] = t_i + (xa + x)
        return
    x, lam, r_prev, mass = -1.0, 0.0, 0.0, _seg_cum(h, h, r0, r1, shp, tau)
    for j in range(out.size):  # safeguarded Newton, warm-started from the previous point
        r = max(out[j] * scale - d_lo, 0.0)
        x0 = x + (r - r_prev) / lam if x >= 0.0 and lam > 0.0 else h * r / mass
        x, lam = _seg_invert(r, h, r0, r1, shp, tau, x0)
        r_prev = r
        out[j] = t_i + x


@njit(cache=True, error_model="numpy")
def _fill_window(
    t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64, lo_t: float, hi_t: float,
    b0: float, b1: float, key: NDArray[np.uint64], w: int, out: F64,
) -> None:  # fmt: skip
    """out = the sorted arrivals of window w = [lo_t, hi_t), with Lambda(lo_t), Lambda(hi_t)
    = b0, b1, given their count out.size: exponential spacings, then inversion by blocks."""
    n, m = t.size - 1, out.size
    scale = (b1 - b0) / _window_exps(key[0], key[1], w, out)
    i, ja = np.searchsorted(t, lo_t, side="right") - 1, 0
    while ja < m:  # one block of points per segment overlapping the window
        d_hi, jb = cum[i + 1] - b0, m
        if i < n - 1 and out[m - 1] * scale >= d_hi:
            lo, jb = ja, m - 1  # first j with out[j] * scale >= d_hi
            while lo < jb:
                mid = (lo + jb) // 2
                if out[mid] * scale >= d_hi:
                    jb = mid
                else:
                    lo = mid + 1
        xa = max(lo_t - t[i], 0.0)
        span = max(min(hi_t, t[i + 1]) - t[i] - xa, 0.0)
        args = (t[i + 1] - t[i], rate[i], rate[i + 1], shape[i], tau[i], xa, span)
        _map_block(out[ja:jb], scale, cum[i] - b0, t[i], *args)
        ja, i = jb, i + 1
    hi, prev = np.nextafter(hi_t, -np.inf), lo_t
    for j in range(m):  # sorted and inside the window even where rounding disagrees
        prev = min(max(out[j], prev), hi)
        out[j] = prev


@njit(cache=True, parallel=True)
def _fill_windows(
    t: F64, rate: F64, shape: NDArray[np.int64], tau: F64, cum: F64, edges: F64, base: F64,
    offs: NDArray[np.int64], w0: int, w1: int, key: NDArray[np.uint64], out: F64,
) -> None:  # fmt: skip
    """Windows w0..w1-1 into out; window w gets out[offs[w] - offs[w0]: offs[w+1] - offs[w0]].
    Tasks are runs of windows with about equal counts, so each thread of the static prange
    schedule gets a balanced, contiguous part of out (first-touch page faults in parallel)."""
    n_tasks = min(w1 - w0, 256)
    goal = offs[w0] + (offs[w1] - offs[w0]) * np.arange(n_tasks + 1) // n_tasks
    cuts = w0 + np.searchsorted(offs[w0 : w1 + 1], goal)
    cuts[-1] = w1
    for task in prange(n_tasks):
        for w in range(cuts[task], cuts[task + 1]):
            o, e = offs[w] - offs[w0], offs[w + 1] - offs[w0]
            if e > o:
                ends = (edges[w], edges[w + 1], base[w], base[w + 1])
                _fill_window(t, rate, shape, tau, cum, *ends, key, w, out[o:e])


# ---------------------------------------------------------------- thinning kernel
@njit(cache=True)
def _thin(
    rate_fn: Callable[..., float], args: tuple[object, ...], lam_max: float, t0: float,
    t1: float, rng: np.random.Generator, max_chunk: int,
) -> tuple[F64, float, float, float]:  # fmt: skip
    """Lewis-Shedler from t0; returns (arrivals, resume, t, rate).

    Stops after max_chunk arrivals (resume = the last one, where the next call goes on with the
    same rng: the points are the same as in one call) or at t1 (resume = t1). t = nan unless
    rate(t) broke the bound.
    """
    out = np.empty(min(64, max_chunk))
    n, tt = 0, t0
    while True:
        tt += rng.standard_exponential() / lam_max
        if tt >= t1:
            return out[:n], t1, np.nan, np.nan
        lam = rate_fn(tt, *args)
        if not 0.0 <= lam <= lam_max:
            return out[:n], tt, tt, lam
        if rng.random() * lam_max < lam:
            if n == out.size:
                out = np.concatenate((out, np.empty(min(n, max_chunk - n))))
            out[n] = tt
            n += 1
            if n == max_chunk:
                return out, tt, np.nan, np.nan


# ---------------------------------------------------------------- public API
_JIT = hasattr(_thin, "py_func")  # False under NUMBA_DISABLE_JIT=1


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

    @property
    def pending_s(self) -> float:
        """The next point's time, drawn already (``-inf`` before the first is drawn)."""
        tp = float(self._state[1])
        return -math.inf if math.isnan(tp) else tp

    def quiet_until(self, t_end: float) -> bool:
        """``skip_to(t_end)`` when no point is due before ``t_end`` (then ``True``): the
        engine's check of an empty tick, one read of the state."""
        tp = self._state[1]
        if tp >= t_end:  # inf once exhausted; NaN (nothing drawn yet) compares False
            if t_end > self._t_now:
                self._t_now = t_end
            return True
        return False

    def skip_to(self, t_end: float) -> None:
        """End a batch with no points: only when ``pending_s >= t_end`` (checked)."""
        if not self.pending_s >= t_end and not self.exhausted:
            raise ValueError(f"a point is due before t_end={t_end}: draw the batch instead")
        self._t_now = max(self._t_now, t_end)

    def iter_chunks(self, t_end: float, max_chunk: int = 1 << 20) -> Iterator[F64]:
        """Sorted arrivals in [t_now, t_end) as arrays of at most max_chunk each."""
        if not t_end >= self._t_now:
            raise ValueError(f"t_end={t_end}: must be >= the previous t_end={self._t_now}")
        if max_chunk < 1:
            raise ValueError(f"max_chunk={max_chunk}: must be >= 1")
        if self._state[1] >= t_end:  # the pending point lies beyond: nothing to draw (exact)
            self._t_now = t_end
            return
        p = self.profile
        while True:
            mean = max(p.cumulative(min(t_end, p.end_s)) - self._state[0], 0.0)
            buf = np.empty(int(min(max_chunk, mean + 6.0 * math.sqrt(mean) + 16.0)))
            k = _stream_fill(*p.arrays(), self.rng, self._state, t_end, buf)
            if k:
                yield buf[:k]
            if k < buf.size:
                break
        self._t_now = t_end

    def next_batch(self, t_end: float) -> F64:
        """All arrivals in [previous t_end, t_end), sorted."""
        chunks = list(self.iter_chunks(t_end))
        return chunks[0] if len(chunks) == 1 else np.concatenate([np.empty(0), *chunks])


def _plan(
    profile: Profile, seed: int, window_s: float
) -> tuple[F64, F64, NDArray[np.int64], NDArray[np.uint64]]:
    if not (math.isfinite(window_s) and window_s > 0):
        raise ValueError(f"window_s={window_s}: must be finite and > 0")
    t0, tn = profile.start_s, profile.end_s
    if (tn - t0) / window_s > 1e8:
        raise ValueError(f"window_s={window_s}: more than 1e8 windows on [{t0}, {tn})")
    edges = t0 + window_s * np.arange(math.ceil((tn - t0) / window_s), dtype=np.float64)
    edges = np.append(edges[edges < tn], tn)
    base = np.asarray(profile.cumulative(edges))
    count_ss, key_ss = np.random.SeedSequence(seed).spawn(2)
    counts = np.random.default_rng(count_ss).poisson(np.maximum(np.diff(base), 0.0))
    offs = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return edges, base, offs, key_ss.generate_state(2, np.uint64).astype(np.uint64)


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
    if n_threads is not None and n_threads < 1:
        raise ValueError(f"n_threads={n_threads}: must be >= 1 (numba checks the maximum)")
    if max_chunk < 1:
        raise ValueError(f"max_chunk={max_chunk}: must be >= 1")
    p, nw, w0 = profile, edges.size - 1, 0
    while w0 < nw:
        w1 = max(int(np.searchsorted(offs, offs[w0] + max_chunk, side="right")) - 1, w0 + 1)
        w1 = min(w1, nw)
        out = np.empty(int(offs[w1] - offs[w0]))
        prev = numba.get_num_threads()
        numba.set_num_threads(n_threads or prev)
        try:
            with np.errstate(over="ignore"):  # uint64 wrap-around when run without JIT
                _fill_windows(*p.arrays(), edges, base, offs, w0, w1, key, out)
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


def iter_thinning(
    rate_fn: Callable[[float], float] | Profile,
    lam_max: float | None,
    t0: float | None,
    t1: float | None,
    rng: np.random.Generator,
    max_chunk: int = 1 << 20,
) -> Iterator[F64]:
    """Lewis-Shedler thinning of a bounded intensity on [t0, t1), in sorted chunks.

    rate_fn: an `@numba.njit` function t -> rate, or a Profile (then None for lam_max, t0,
    t1 means max(rate), start_s, end_s). Chunks hold at most max_chunk arrivals; their
    concatenation does not depend on max_chunk. Raises ValueError at a point where the rate
    is outside [0, lam_max].
    """
    args: tuple[object, ...] = ()
    fn: Callable[..., float]
    if isinstance(rate_fn, Profile):
        fn, args = _rate1, (rate_fn.t, rate_fn.rate, rate_fn.shape, rate_fn.tau)
        lam_max = (float(rate_fn.rate.max()) or 1.0) if lam_max is None else lam_max
        t0 = rate_fn.start_s if t0 is None else t0
        t1 = rate_fn.end_s if t1 is None else t1
    elif _JIT and not hasattr(rate_fn, "py_func"):
        raise TypeError(f"rate_fn={rate_fn!r}: must be an @numba.njit function or a Profile")
    else:
        fn = rate_fn
    if lam_max is None or t0 is None or t1 is None:
        raise ValueError("lam_max, t0 and t1 are required unless rate_fn is a Profile")
    if not (math.isfinite(lam_max) and lam_max > 0):
        raise ValueError(f"lam_max={lam_max}: must be finite and > 0")
    if not (math.isfinite(t0) and math.isfinite(t1) and t0 <= t1):
        raise ValueError(f"[t0, t1)=[{t0}, {t1}): must be finite with t0 <= t1")
    if max_chunk < 1:
        raise ValueError(f"max_chunk={max_chunk}: must be >= 1")
    at = float(t0)
    while at < t1:
        out, at, t_bad, lam_bad = _thin(
            fn, args, float(lam_max), at, float(t1), rng, int(max_chunk)
        )
        if not math.isnan(t_bad):
            raise ValueError(f"rate_fn({t_bad})={lam_bad}: outside the allowed [0, {lam_max}]")
        if out.size:
            yield out


def sample_thinning(
    rate_fn: Callable[[float], float] | Profile,
    lam_max: float | None,
    t0: float | None,
    t1: float | None,
    rng: np.random.Generator,
) -> F64:
    """All arrivals of ``iter_thinning`` in one sorted array (see there)."""
    chunks = list(iter_thinning(rate_fn, lam_max, t0, t1, rng))
    return np.concatenate([np.empty(0), *chunks])
