"""Placement: which edge node an admitted attempt is sent to (``docs/policies.md``).

``choose`` looks at the connections each node holds at the attempt's time (``cn``: the pipeline
has handed back every connection released by then) and returns the index of a node that is up
(crashed, restarting and not yet provisioned nodes are not candidates: ``upidx[:n_up]``, in index
order). Draws come from stream ``i`` of the ``sim.kernels.rng`` state ``st``; the random choices
are positions in ``upidx``.

- ``RANDOM``: a uniformly random node. With one node up no policy draws anything.
- ``POWER_OF_TWO``: ``POWER_OF_D`` with d = 2 (so with two nodes up: ``LEAST_LOADED``).
- ``POWER_OF_D``: ``d`` distinct uniform nodes (the m-th draw ``integers(n − m)`` picks among the
  nodes not drawn yet, in index order), the one holding fewest connections (the earliest drawn on
  a tie); with d >= n, ``LEAST_LOADED``.
- ``LEAST_LOADED``: the node holding the fewest connections (the lowest index on a tie); it looks
  at every node, so it costs O(nodes) per attempt.
- ``CONSISTENT_HASH``: consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
  2018). Each node has points on the ring [0, 1) (``ring``, sorted, from ``hash_ring``); a person's
  key, drawn once, finds the first point at or after it, and the walk goes on clockwise past
  nodes that hold ``ceil(load_bound · (H + 1) / n)`` connections or more (``H`` the fleet's total).

Adding a policy: a new kind constant, a branch here and a name in ``PLACEMENT`` of
``sim/policies/__init__.py``.
"""

from __future__ import annotations

import math

import numpy as np

from sim.kernels import hot
from sim.kernels import rng as rn

RANDOM = 0
POWER_OF_TWO = 1
LEAST_LOADED = 2
POWER_OF_D = 3
CONSISTENT_HASH = 4

RING_SEED = 20230524  # the ring's points are infrastructure: the same for every run


def hash_ring(nodes: int, vnodes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, node)`` of ``vnodes`` points per node on [0, 1), sorted by position."""
    gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence([RING_SEED, nodes, vnodes])))
    pos = gen.random(nodes * vnodes)
    owner = np.repeat(np.arange(nodes, dtype=np.int64), vnodes)
    order = np.argsort(pos, kind="stable")
    return pos[order], owner[order]


@hot
def least_loaded(cn: np.ndarray, upidx: np.ndarray, n_up: int) -> int:
    """The up node holding the fewest connections (the lowest index on a tie)."""
    best = upidx[0]
    for j in range(1, n_up):
        x = upidx[j]
        if cn[x] < cn[best]:  # upidx is in index order: the first of the least loaded stays
            best = x
    return int(best)


@hot
def power_of_d(
    cn: np.ndarray, upidx: np.ndarray, n_up: int, d: int, st: np.ndarray, i: int, chosen: np.ndarray
) -> int:
    """``d`` distinct uniform up nodes, the least loaded (``chosen``: scratch of ``d`` ints)."""
    best = -1
    for m in range(d):
        x = rn.integers(st, i, n_up - m)
        # the x-th position not chosen yet: chosen[:m] is kept sorted
        j = 0
        while j < m and chosen[j] <= x:
            x += 1
            j += 1
        for q in range(m, j, -1):
            chosen[q] = chosen[q - 1]
        chosen[j] = x
        node = upidx[x]
        if best < 0 or cn[node] < cn[best]:
            best = node
    return int(best)


@hot
def bounded_hash(
    cn: np.ndarray,
    up: np.ndarray,
    n_up: int,
    held: int,
    key: float,
    ring_pos: np.ndarray,
    ring_node: np.ndarray,
    load_bound: float,
) -> int:
    """The first up node clockwise from ``key`` under the load bound (-1: none is)."""
    bound = math.ceil(load_bound * (held + 1) / n_up)
    m = ring_pos.shape[0]
    lo, hi = 0, m
    while lo < hi:  # the first point at or after the key
        mid = (lo + hi) >> 1
        if ring_pos[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    for s in range(m):
        node = ring_node[(lo + s) % m]
        if up[node] and cn[node] < bound:
            return int(node)
    return -1


@hot
def choose(
    kind: int,
    cn: np.ndarray,
    up: np.ndarray,
    upidx: np.ndarray,
    n_up: int,
    st: np.ndarray,
    i: int,
    d: int,
    chosen: np.ndarray,
    held: int,
    key: float,
    ring_pos: np.ndarray,
    ring_node: np.ndarray,
    load_bound: float,
) -> int:
    """Pick an up node; ``cn`` holds the connections each node holds now (``held`` in all).

    ``upidx[:n_up]`` are the nodes that are up, in index order (``n_up >= 1``), ``up`` their mask.
    """
    if n_up == 1:
        return int(upidx[0])
    if kind == RANDOM:
        return int(upidx[rn.integers(st, i, n_up)])
    if kind == POWER_OF_TWO:
        d = 2
    if (kind == POWER_OF_TWO or kind == POWER_OF_D) and d < n_up:
        return power_of_d(cn, upidx, n_up, d, st, i, chosen)
    if kind == CONSISTENT_HASH:
        node = bounded_hash(cn, up, n_up, held, key, ring_pos, ring_node, load_bound)
        if node >= 0:
            return node
    return least_loaded(cn, upidx, n_up)
