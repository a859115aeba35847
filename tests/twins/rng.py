"""Plain-Python twin of ``sim.kernels.rng``: xoshiro128** 1.1 on Python ints, from the C source.

The reference (Blackman & Vigna, ``xoshiro128starstar.c``, version 1.1; 1.0 scrambled ``s[0]``
instead of ``s[1]``) on ``uint32_t s[4]``::

    static inline uint32_t rotl(const uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

    uint32_t next(void) {
        const uint32_t result = rotl(s[1] * 5, 7) * 9;
        const uint32_t t = s[1] << 9;
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 11);
        return result;
    }

Python ints do not wrap, so every ``uint32_t`` result is reduced mod 2^32 explicitly (``& M``)
where C wraps implicitly. Lemire's bounded integers (``uint64_t m = (uint64_t)x * n``, reject
while ``(uint32_t)m < -n % n``) and the floats are written from their definitions, not from the
kernel's int64 layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

M = 0xFFFFFFFF  # uint32_t arithmetic is mod 2^32


def rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & M


def rotr(x: int, k: int) -> int:
    return ((x >> k) | (x << (32 - k))) & M


@dataclass
class Xoshiro128ss:
    s: list[int]
    calls: int = 0  # outputs drawn so far

    def next32(self) -> int:
        s = self.s
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 9) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 11)
        self.calls += 1
        return result

    def uniform(self) -> float:
        a = self.next32()
        b = self.next32()
        k = (a >> 5) * 2**26 + (b >> 6)  # 53 bits: an exact float
        return k / 2.0**53

    def standard_exponential(self) -> float:
        return -math.log1p(-self.uniform())

    def exponential(self, mean: float) -> float:
        return -mean * math.log1p(-self.uniform())

    def integers(self, n: int) -> int:
        assert 1 <= n <= 2**31
        m = self.next32() * n  # (uint64_t)x * n
        if m & M < n:
            t = ((-n) & M) % n  # -n % n in uint32_t: 2^32 mod n
            while m & M < t:
                m = self.next32() * n
        return m >> 32


def preimage(r: int) -> int:
    """The ``s[1]`` whose output is ``r``: the scrambler ``rotl(x * 5, 7) * 9`` inverted."""
    x = (r * pow(9, -1, 2**32)) & M
    return (rotr(x, 7) * pow(5, -1, 2**32)) & M
