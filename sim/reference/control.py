"""The control plane (auth): one shared FIFO queue every admitted attempt passes before placement.

``docs/model.md``, *Control plane / auth*: with ``platform.auth_workers`` set, an admitted attempt
(also one released from a waiting room) at time ``t`` is offered to a FIFO queue of
``auth_workers`` workers, ``auth_queue_cap`` waiting places and service ``Exp(auth_service_mean_s)``
(stream ``service``). It is rejected ``auth`` at ``t`` when it would have to wait while every place
is taken, and at ``t + w`` when it would wait longer than ``w = min(auth_timeout_s, deadline − t)``
(it gives up without taking a worker: the control plane never wastes work). Otherwise it goes on to
placement at the end of its service. It holds no connection meanwhile, so no crash touches it.
"""

from __future__ import annotations

from sim.config import PlatformConfig
from sim.reference.draws import Stream
from sim.reference.queue import FifoQueue, Offer


class ControlPlane:
    """The auth service: a ``FifoQueue`` that never wastes work."""

    def __init__(self, cfg: PlatformConfig, service: Stream) -> None:
        assert cfg.auth_workers is not None
        self.queue = FifoQueue(cfg.auth_workers, cfg.auth_queue_cap)
        self.service_mean_s = cfg.auth_service_mean_s
        self.timeout_s = cfg.auth_timeout_s
        self.service = service

    def offer(self, t: float, deadline_s: float) -> Offer:
        """The attempt admitted at ``t`` by a person whose patience ends at ``deadline_s``."""
        service = self.service.exponential(self.service_mean_s)
        return self.queue.offer(t, min(self.timeout_s, deadline_s - t), service)


def control_plane_for(cfg: PlatformConfig, service: Stream) -> ControlPlane | None:
    """The control plane ``cfg`` configures, or ``None`` (no ``auth_workers``)."""
    return None if cfg.auth_workers is None else ControlPlane(cfg, service)
