"""Placement: which edge node an admitted attempt goes to (``docs/policies.md``).

A placement policy looks at ``loads``, the connections every node of the fleet holds at the
attempt's time, and picks one of ``up``, the nodes up (in index order, at least one; the room
rejects ``down`` when none is, ``docs/model.md``, *Placement*). Each is a small class with
``choose(loads, up, key)``; ``key`` is the person's hash key, drawn at their first attempt (and at a
reconnect) by ``new_key()`` (only consistent hashing draws one; the others return 0 without
drawing). Draws come from the ``placement`` stream; a random choice is a position in ``up``, and
with one node up nothing is drawn.
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

    def choose(self, loads: Sequence[int], up: Sequence[int], key: float) -> int: ...


def least_loaded(loads: Sequence[int], up: Sequence[int]) -> int:
    """The node up with the fewest connections, the lowest index on a tie."""
    return min(up, key=loads.__getitem__)  # min keeps the first of equals


class Random:
    """``random``: a uniform node."""

    def __init__(self, rng: Stream) -> None:
        self.rng = rng

    def new_key(self) -> float:
        return 0.0

    def choose(self, loads: Sequence[int], up: Sequence[int], key: float) -> int:
        return up[0] if len(up) == 1 else up[self.rng.integers(len(up))]


class LeastLoaded:
    """``least_loaded``: the node with the fewest connections (no draw)."""

    def new_key(self) -> float:
        return 0.0

    def choose(self, loads: Sequence[int], up: Sequence[int], key: float) -> int:
        return least_loaded(loads, up)


class PowerOfD:
    """``power_of_d`` (``power_of_two``: d = 2): the least loaded of ``d`` distinct uniform nodes.

    Draw ``m`` (m = 0 .. d−1) is ``integers(n − m)``, the position among the ``n`` nodes up not
    chosen yet (in index order); the earliest drawn wins a tie. With ``d ≥ n`` it is
    ``least_loaded``.
    """

    def __init__(self, d: int, rng: Stream) -> None:
        self.d = d
        self.rng = rng

    def new_key(self) -> float:
        return 0.0

    def choose(self, loads: Sequence[int], up: Sequence[int], key: float) -> int:
        n = len(up)
        if self.d >= n:
            return least_loaded(loads, up)
        not_chosen = list(up)
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
    is up and holds fewer than ``ceil(load_bound · (H + 1) / n)`` connections, ``H`` the fleet's
    total (drained nodes' connections included), ``n`` the nodes up. The ring has the points of
    every node the fleet may come to hold (``room``), as the batched engine's has.
    """

    def __init__(self, cfg: PlatformConfig, rng: Stream, room: int = 0) -> None:
        self.positions, self.owners = hash_ring(max(cfg.nodes, room), cfg.placement_vnodes)
        self.load_bound = cfg.placement_load_bound
        self.rng = rng

    def new_key(self) -> float:
        return self.rng.uniform()

    def choose(self, loads: Sequence[int], up: Sequence[int], key: float) -> int:
        if len(up) == 1:
            return up[0]
        bound = math.ceil(self.load_bound * (sum(loads) + 1) / len(up))
        first = bisect.bisect_left(self.positions, key)
        m = len(self.owners)
        candidates = set(up)
        for step in range(m):
            node = self.owners[(first + step) % m]
            if node in candidates and loads[node] < bound:
                return node
        return least_loaded(loads, up)  # not reached: some node up is always under the bound


def placement_for(cfg: PlatformConfig, rng: Stream, room: int = 0) -> Placement:
    """The policy ``platform.placement`` names (``room``: the nodes the fleet may hold)."""
    if cfg.placement == "random":
        return Random(rng)
    if cfg.placement == "least_loaded":
        return LeastLoaded()
    if cfg.placement == "power_of_two":
        return PowerOfD(2, rng)
    if cfg.placement == "power_of_d":
        return PowerOfD(cfg.placement_choices, rng)
    if cfg.placement == "consistent_hash":
        return BoundedConsistentHash(cfg, rng, room)
    raise ValueError(f"platform.placement = {cfg.placement!r}: no reference placement")
