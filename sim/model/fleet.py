"""The edge fleet: nodes that accept join attempts, each with workers, a waiting room and a cap.

Node state is a set of arrays, one row per node, that the pipeline kernel updates in place:
``free`` (the heap of worker-free times, ``join_workers`` per node), ``wroom``/``wn`` (the heap of
waiting-room exits and its size, at most ``join_queue_cap``) and ``conn``/``cn`` (the heap of the
times held connections are released and its size, at most ``connections_per_node``).
"""

from __future__ import annotations

import numpy as np

from sim.config import PlatformConfig
from sim.kernels import pipeline


class EdgeFleet:
    """The nodes of the platform and their join state."""

    def __init__(self, cfg: PlatformConfig) -> None:
        self.cfg = cfg
        n = cfg.nodes
        self.free = np.zeros((n, cfg.join_workers), dtype=np.float64)
        self.wroom = np.zeros((n, cfg.join_queue_cap), dtype=np.float64)
        self.wn = np.zeros(n, dtype=np.int64)
        self.conn = np.zeros((n, cfg.connections_per_node), dtype=np.float64)
        self.cn = np.zeros(n, dtype=np.int64)

    @property
    def nodes_up(self) -> int:
        return self.cfg.nodes

    def pending(self) -> tuple[np.ndarray, np.ndarray]:
        """``(waiting_exits, connection_releases)``: every pending exit and release time."""
        waiting = [self.wroom[i, : self.wn[i]] for i in range(self.cfg.nodes)]
        conns = [self.conn[i, : self.cn[i]] for i in range(self.cfg.nodes)]
        return np.concatenate([np.empty(0), *waiting]), np.concatenate([np.empty(0), *conns])

    def clear(self) -> None:
        """Forget every pending exit and release (after the engine accounted for them)."""
        self.wn[:] = 0
        self.cn[:] = 0

    def snapshot(self, t: float) -> tuple[int, int]:
        """``(waiting, connections)`` over the fleet at time ``t``."""
        waiting, held = pipeline.fleet_snapshot(t, self.wroom, self.wn, self.conn, self.cn)
        return int(waiting), int(held)
