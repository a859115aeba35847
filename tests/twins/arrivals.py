"""Plain-Python twin of `sim.kernels.arrivals`: slow, obvious, for tests only.

A profile is anything with sequences `t`, `rate`, `shape` (0 linear, 1 exp) and `tau`.
Every function draws from the Generator exactly what the kernel draws, in the same order,
so seeded results can be compared point by point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import brentq

Prof = Any  # duck-typed: .t .rate .shape .tau


def rate_at(p: Prof, x: float) -> float:
    t = list(p.t)
    for i in range(len(t) - 1):
        if t[i] <= x < t[i + 1]:
            r0, r1 = p.rate[i], p.rate[i + 1]
            if p.shape[i] == 0:
                return r0 + (r1 - r0) * (x - t[i]) / (t[i + 1] - t[i])
            return r1 + (r0 - r1) * math.exp(-(x - t[i]) / p.tau[i])
    return 0.0


def seg_integral(p: Prof, i: int, d: float) -> float:
    """Integral of the rate over [t_i, t_i + d] inside segment i."""
    r0, r1 = p.rate[i], p.rate[i + 1]
    if p.shape[i] == 0:  # trapezoid, exact for a straight line
        r_end = r0 + (r1 - r0) * d / (p.t[i + 1] - p.t[i])
        return 0.5 * d * (r0 + r_end)
    return r1 * d + (r0 - r1) * p.tau[i] * (1.0 - math.exp(-d / p.tau[i]))


def cumulative(p: Prof, x: float) -> float:
    total = 0.0
    for i in range(len(p.t) - 1):
        if x <= p.t[i]:
            break
        total += seg_integral(p, i, min(x, p.t[i + 1]) - p.t[i])
    return total


def inverse(p: Prof, y: float) -> float:
    """inf{t: Lambda(t) > y}; +inf once y reaches the total."""
    if y < 0:
        return math.nan
    acc = 0.0
    for i in range(len(p.t) - 1):
        a, b = p.t[i], p.t[i + 1]
        m = seg_integral(p, i, b - a)
        if acc <= y < acc + m:

            def f(x: float, i: int = i, acc: float = acc) -> float:
                return acc + seg_integral(p, i, x - p.t[i]) - y

            return a if f(a) >= 0 else float(brentq(f, a, b, xtol=1e-13, rtol=1e-15))
        acc += m
    return math.inf


class Stream:
    """S_k = S_{k-1} + Exp(1), t_k = Lambda^{-1}(S_k), one rng draw per point."""

    def __init__(self, p: Prof, rng: np.random.Generator) -> None:
        self.p, self.rng = p, rng
        self.s, self.pending = 0.0, math.nan

    def _draw(self) -> None:
        if self.pending == math.inf:
            return
        self.s += self.rng.standard_exponential()
        x = inverse(self.p, self.s)
        if x < math.inf:
            x = min(x, math.nextafter(self.p.t[-1], -math.inf))
            x = max(x, self.pending) if not math.isnan(self.pending) else x
        self.pending = x

    def next_batch(self, t_end: float) -> np.ndarray:
        if math.isnan(self.pending):
            self._draw()
        out = []
        while self.pending < t_end:
            out.append(self.pending)
            self._draw()
        return np.array(out, dtype=np.float64)


def thinning(
    rate_fn: Callable[[float], float],
    lam_max: float,
    t0: float,
    t1: float,
    rng: np.random.Generator,
) -> np.ndarray:
    out: list[float] = []
    t = t0
    while True:
        t += rng.standard_exponential() / lam_max
        if t >= t1:
            return np.array(out, dtype=np.float64)
        lam = rate_fn(t)
        if not 0.0 <= lam <= lam_max:
            raise ValueError(f"rate {lam} at {t} outside [0, {lam_max}]")
        if rng.random() * lam_max < lam:
            out.append(t)


# ---- the parallel sampler: window grid, Poisson counts, xoshiro256** streams, spacings
M64 = (1 << 64) - 1
GOLDEN, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * MIX1) & M64
    z = ((z ^ (z >> 27)) * MIX2) & M64
    return z ^ (z >> 31)


def rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & M64


def window_spacings(k0: int, k1: int, w: int, m: int) -> list[float]:
    """S_1..S_{m+1}: partial sums of m + 1 Exp(1) draws of window w."""
    z = mix64((k0 + w * GOLDEN) & M64) ^ k1
    s = [mix64((z + j * GOLDEN) & M64) for j in (1, 2, 3, 4)]
    acc, sums = 0.0, []
    for _ in range(m + 1):
        u = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        tt = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= tt
        s[3] = rotl(s[3], 45)
        acc -= math.log(((u >> 11) + 1) / 2.0**53)
        sums.append(acc)
    return sums


def sample_parallel(p: Prof, seed: int, window_s: float) -> np.ndarray:
    t0, tn = float(p.t[0]), float(p.t[-1])
    edges = t0 + window_s * np.arange(math.ceil((tn - t0) / window_s), dtype=np.float64)
    edges = np.append(edges[edges < tn], tn)
    base = [cumulative(p, float(e)) for e in edges]
    count_ss, key_ss = np.random.SeedSequence(seed).spawn(2)
    masses = np.maximum(np.diff(base), 0.0)
    counts = np.random.default_rng(count_ss).poisson(masses)
    k0, k1 = (int(k) for k in key_ss.generate_state(2, np.uint64))
    out: list[float] = []
    for w in range(len(edges) - 1):
        sums = window_spacings(k0, k1, w, int(counts[w]))
        prev, hi = float(edges[w]), math.nextafter(float(edges[w + 1]), -math.inf)
        for sj in sums[:-1]:
            x = inverse(p, base[w] + sj / sums[-1] * masses[w])
            prev = min(max(x, prev), hi)
            out.append(prev)
    return np.array(out, dtype=np.float64)
