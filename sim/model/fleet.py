"""The edge fleet: nodes that accept join attempts, each with workers, a waiting room and a cap.

Node state is a set of arrays, one row per node, that the pipeline kernel updates in place:
``free`` (the heap of worker-free times, ``join_workers`` per node), ``wroom``/``wn`` (the heap of
waiting-room exits and its size, at most ``join_queue_cap``), ``cn`` (the connections each node
holds) and ``cap`` (the connections it may hold: ``connections_per_node``, less while it warms
up after a restart). The release of every held connection, ``(time, node and epoch, join
record)``, waits in one calendar queue for the whole fleet (``rel``, ``sim.kernels.calendar``):
the kernel hands back the connections released by an attempt's time before it places the attempt.

The arrays have room for every node the fleet may come to hold (the autoscaler's ceiling plus
the operator's additions); only the nodes in ``upidx``
(the ``n_up`` nodes up, in index order; ``up`` is their mask) take attempts. A node that crashes
(``sim.kernels.crash``) starts a new epoch: its queued release records become stale and are
dropped when they come due (``epoch[-1]`` counts them); a listener dropped alone
(``crash.drop_listeners``) leaves a stale record the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.config import PlatformConfig
from sim.kernels import calendar, crash, pipeline

RELEASE_BUCKET_S = 1.0  # the release calendar's bucket width
RELEASE_SLOTS = 8192  # buckets in its ring: releases within ~2 h go to a bucket, later to a heap


class EdgeFleet:
    """The nodes of the platform and their join state."""

    def __init__(self, cfg: PlatformConfig, room_for: int = 0) -> None:
        self.cfg = cfg
        n = max(cfg.nodes, room_for)
        self.size = n
        self.free = np.zeros((n, cfg.join_workers), dtype=np.float64)
        self.wroom = np.zeros((n, cfg.join_queue_cap), dtype=np.float64)
        self.wn = np.zeros(n, dtype=np.int64)
        self.cn = np.zeros(n, dtype=np.int64)
        self.cap = np.full(n, float(cfg.connections_per_node))
        self.up = np.zeros(n, dtype=np.int64)
        self.up[: cfg.nodes] = 1
        self.upidx = np.zeros(n, dtype=np.int64)
        self.n_up = 0
        self.epoch = np.zeros(n + 1, dtype=np.int64)
        self.rel: Any = calendar.new(3, RELEASE_BUCKET_S, slots=RELEASE_SLOTS)
        self._provisioned = cfg.nodes
        self._index()

    def _index(self) -> None:
        ups = np.flatnonzero(self.up)
        self.upidx[: ups.size] = ups
        self.n_up = int(ups.size)

    @property
    def nodes_up(self) -> int:
        return self.n_up

    @property
    def provisioned(self) -> int:
        """Nodes in the fleet, up or down (the next one added gets this index)."""
        return self._provisioned

    def add(self) -> int:
        """Bring a new node into the fleet (up, empty); return its index."""
        if self._provisioned >= self.size:
            raise ValueError(f"the fleet has room for {self.size} nodes only")
        node = self._provisioned
        self._provisioned += 1
        self.set_up(node, True)
        return node

    def set_up(self, node: int, up: bool) -> None:
        """Take a node into the fleet or out of it (from the next attempt on)."""
        self.up[node] = 1 if up else 0
        self._index()

    def pending(self) -> tuple[np.ndarray, np.ndarray]:
        """``(waiting_exits, connection_releases)``: every pending exit and release time (the
        release records a crash or a drop made stale left out)."""
        waiting = [self.wroom[i, : self.wn[i]] for i in np.flatnonzero(self.wn)]
        return np.concatenate([np.empty(0), *waiting]), crash.held_release_times(
            self.rel, self.epoch
        )

    def clear(self) -> None:
        """Forget every pending exit and release (after the engine accounted for them)."""
        self.wn[:] = 0
        self.cn[:] = 0
        self.epoch[-1] = 0
        self.rel = calendar.new(3, RELEASE_BUCKET_S, slots=RELEASE_SLOTS)

    def snapshot(self, t: float) -> tuple[int, int]:
        """``(waiting, connections)`` over the fleet at time ``t``."""
        if calendar.next_due(self.rel) > t and not np.count_nonzero(self.wn):  # nothing due
            return 0, int(self.rel.ist[calendar.I_SIZE] - self.epoch[-1])
        self.rel, waiting, held = pipeline.fleet_snapshot(
            t, self.wroom, self.wn, self.cn, self.epoch, self.rel
        )
        return int(waiting), int(held)
