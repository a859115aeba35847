"""Placement: which edge node an admitted attempt goes to (``docs/policies.md``).

A placement policy looks at ``loads``, the connections each node holds at the attempt's time, and
returns a node index. Each is a small class with ``choose(loads, key)``; ``key`` is the person's
hash key, drawn once at their first attempt by ``new_key()`` (only consistent hashing draws one;
the others return 0 without drawing). Draws come from the ``placement`` stream.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from sim.config import PlatformConfig
from sim.reference.draws import Stream

RING_SEED = 20230524  # the ring's points are infrastructure: the same in every run and engine


class Placement(Protocol):
    def new_key(self) -> float: ...

    def choose(self, loads: Sequence[int], key: float) -> int: ...


def least_loaded(loads: Sequence[int]) -> int:
    """The node with the fewest connections, the lowest index on a tie."""
    return min(range(len(loads)), key=loads.__getitem__)


class Random:
    """``random``: a uniform node."""

    def __init__(self, rng: Stream) -> None:
        self.rng = rng

    def new_key(self) -> float:
        return 0.0

    def choose(self, loads: Sequence[int], key: float) -> int:
        return self.rng.integers(len(loads))


class LeastLoaded:
    """``least_loaded``: the node with the fewest connections (no draw)."""

    def new_key(self) -> float:
        return 0.0

    def choose(self, loads: Sequence[int], key: float) -> int:
        return least_loaded(loads)


class PowerOfD:
    """``power_of_d`` (``power_of_two``: d = 2): the least loaded of ``d`` distinct uniform nodes.

    Draw ``m`` (m = 0 .. d−1) is ``integers(n − m)``, the index among the nodes not chosen yet (in
    index order); the earliest drawn wins a tie. With ``d ≥ n`` it is ``least_loaded``.
    """

    def __init__(self, d: int, rng: Stream) -> None:
        self.d = d
        self.rng = rng

    def new_key(self) -> float:
        return 0.0

    def choose(self, loads: Sequence[int], key: float) -> int:
        n = len(loads)
        if self.d >= n:
            return least_loaded(loads)
        not_chosen = list(range(n))
        drawn = [not_chosen.pop(self.rng.integers(n - m)) for m in range(self.d)]
        return min(drawn, key=loads.__getitem__)  # min keeps the first of equals


def hash_ring(nodes: int, vnodes: int) -> tuple[list[float], list[int]]:
    """``vnodes`` fixed points per node on ``[0, 1)``, sorted: (positions, owning node).

    The points are infrastructure, not part of a run's randomness: a generator seeded by
    ``(RING_SEED, nodes, vnodes)`` draws them (the same ring as the batched engine's).
    """
    seq = np.random.SeedSequence([RING_SEED, nodes, vnodes])
    pos = np.random.Generator(np.random.PCG64(seq)).random(nodes * vnodes)
    owner = np.repeat(np.arange(nodes), vnodes)
    order = np.argsort(pos, kind="stable")
    return pos[order].tolist(), owner[order].tolist()


class BoundedConsistentHash:
    """``consistent_hash`` with bounded loads (Mirrokni et al.).

    The attempt goes to the first ring point at or after the person's key (wrapping) whose node
    holds fewer than ``ceil(load_bound · (H + 1) / n)`` connections, ``H`` the fleet's total.
    """

    def __init__(self, cfg: PlatformConfig, rng: Stream) -> None:
        self.positions, self.owners = hash_ring(cfg.nodes, cfg.placement_vnodes)
        self.load_bound = cfg.placement_load_bound
        self.rng = rng

    def new_key(self) -> float:
        return self.rng.uniform()

    def choose(self, loads: Sequence[int], key: float) -> int:
        n = len(loads)
        bound = math.ceil(self.load_bound * (sum(loads) + 1) / n)
        first = bisect.bisect_left(self.positions, key)
        m = len(self.owners)
        for step in range(m):
            node = self.owners[(first + step) % m]
            if loads[node] < bound:
                return node
        return least_loaded(loads)  # not reached: some node is always under the bound


def placement_for(cfg: PlatformConfig, rng: Stream) -> Placement:
    """The policy ``platform.placement`` names."""
    if cfg.placement == "random":
        return Random(rng)
    if cfg.placement == "least_loaded":
        return LeastLoaded()
    if cfg.placement == "power_of_two":
        return PowerOfD(2, rng)
    if cfg.placement == "power_of_d":
        return PowerOfD(cfg.placement_choices, rng)
    if cfg.placement == "consistent_hash":
        return BoundedConsistentHash(cfg, rng)
    raise ValueError(f"platform.placement = {cfg.placement!r}: no reference placement")
