"""Random draws for the reference engine: the named streams of ``docs/policies.md``, from uniforms.

Each stream (``placement``, ``service``, ``session``, ``retry``, ``patience``, ``client``,
``reconnect``) is a ``numpy.random.Generator`` from ``sim.streams.stream(seed, name)``, drawn in
event order. Every draw is made from the stream's uniforms ``u ∈ [0, 1)``: a uniform integer of
``[0, n)`` is ``floor(n·u)`` and an exponential of mean ``m`` is ``−m·ln(1 − u)`` (inversion).
The uniforms are fetched from the generator a block at a time, which costs a tenth of one call
per draw and gives the same numbers in the same order as drawing them one by one.
"""

from __future__ import annotations

import math

import numpy as np

from sim import streams

BLOCK = 4096  # uniforms fetched at once


class Stream:
    """One named stream of uniforms and what is drawn from them."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._block: list[float] = []
        self._next = 0

    @classmethod
    def named(cls, seed: int, name: str) -> Stream:
        return cls(streams.stream(seed, name))

    def uniform(self) -> float:
        """The next ``u`` of ``[0, 1)``."""
        if self._next == len(self._block):
            self._block = self.rng.random(BLOCK).tolist()
            self._next = 0
        u = self._block[self._next]
        self._next += 1
        return u

    def integers(self, n: int) -> int:
        """A uniform integer of ``[0, n)``."""
        return min(int(n * self.uniform()), n - 1)

    def exponential(self, mean: float) -> float:
        """An exponential variate of mean ``mean``."""
        return -mean * math.log1p(-self.uniform())
