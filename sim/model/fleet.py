"""The edge fleet: nodes that accept join attempts, each with workers, a waiting room and a cap.

Node state is a set of arrays, one row per node, that the pipeline kernel updates in place:
``free`` (the heap of worker-free times, ``join_workers`` per node), ``wroom``/``wn`` (the heap of
waiting-room exits and its size, at most ``join_queue_cap``) and ``cn`` (the connections each node
holds, at most ``connections_per_node``). The release of every held connection, ``(time, node)``,
waits in one calendar queue for the whole fleet (``rel``, ``sim.kernels.calendar``): the kernel
hands back the connections released by an attempt's time before it places the attempt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.config import PlatformConfig
from sim.kernels import calendar, pipeline

RELEASE_BUCKET_S = 1.0  # the release calendar's bucket width
RELEASE_SLOTS = 8192  # buckets in its ring: releases within ~2 h go to a bucket, later to a heap


class EdgeFleet:
    """The nodes of the platform and their join state."""

    def __init__(self, cfg: PlatformConfig) -> None:
        self.cfg = cfg
        n = cfg.nodes
        self.free = np.zeros((n, cfg.join_workers), dtype=np.float64)
        self.wroom = np.zeros((n, cfg.join_queue_cap), dtype=np.float64)
        self.wn = np.zeros(n, dtype=np.int64)
        self.cn = np.zeros(n, dtype=np.int64)
        self.rel: Any = calendar.new(2, RELEASE_BUCKET_S, slots=RELEASE_SLOTS)

    @property
    def nodes_up(self) -> int:
        return self.cfg.nodes

    def pending(self) -> tuple[np.ndarray, np.ndarray]:
        """``(waiting_exits, connection_releases)``: every pending exit and release time."""
        waiting = [self.wroom[i, : self.wn[i]] for i in np.flatnonzero(self.wn)]
        return np.concatenate([np.empty(0), *waiting]), calendar.times(self.rel)

    def clear(self) -> None:
        """Forget every pending exit and release (after the engine accounted for them)."""
        self.wn[:] = 0
        self.cn[:] = 0
        self.rel = calendar.new(2, RELEASE_BUCKET_S, slots=RELEASE_SLOTS)

    def snapshot(self, t: float) -> tuple[int, int]:
        """``(waiting, connections)`` over the fleet at time ``t``."""
        self.rel, waiting, held = pipeline.fleet_snapshot(t, self.wroom, self.wn, self.cn, self.rel)
        return int(waiting), int(held)
