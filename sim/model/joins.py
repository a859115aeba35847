"""The join pipeline component: admission, placement, join queues, retries and the listener count.

It owns the state that outlives a tick (the admission policy's state and hold queue, the client's
windows, the retry calendar and the people's slots, the in-flight joins, the records of joins and
departures, their counts per tick) and hands each tick's attempts to the numba kernel
``sim.kernels.pipeline.step``; ``advance`` then counts the tick's joins and departures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.kernels import admission, calendar, crash, heap, pipeline, placement, retry, tally
from sim.model.fleet import EdgeFleet
from sim.policies import PLACEMENT, AdmissionConfig, ClientConfig

_INITIAL = 1024
_NONE = np.empty(0)
_ORGANIC = np.empty(0, dtype=np.int8)  # ``akind`` when every arrival is a person
RETRY_BUCKET_S = 0.25  # the retry calendar's bucket width
RETRY_SLOTS = 1024  # buckets in its ring (256 s); later retries wait in a heap


class JoinPipeline:
    """Per-tick join handling for one room."""

    def __init__(
        self,
        fleet: EdgeFleet,
        admission_cfg: AdmissionConfig,
        client: ClientConfig,
        session_mean_s: float,
        states: np.ndarray,
        tick_s: float = 1.0,
    ) -> None:
        self.fleet = fleet
        self.tick_s = tick_s
        pc = fleet.cfg
        self.adm_kind, self.adm_params = admission_cfg.kernel()
        self.adm_state, self.adm_room = admission.new_state(self.adm_kind, self.adm_params)
        self.cli_kind, self.cli_params = client.kernel()
        self.budget = retry.window(self.cli_params[retry.P_BUDGET_WINDOW])
        self.throttle = retry.window(self.cli_params[retry.P_THROTTLE_WINDOW])
        self.plc_kind = PLACEMENT[pc.placement]
        if self.plc_kind == placement.CONSISTENT_HASH:
            self.ring_pos, self.ring_node = placement.hash_ring(fleet.size, pc.placement_vnodes)
        else:
            self.ring_pos, self.ring_node = np.zeros(1), np.zeros(1, dtype=np.int64)
        track = admission.needs_in_flight(self.adm_kind)
        fp = np.zeros(pipeline.N_PLATFORM)
        fp[pipeline.F_SERVICE_MEAN] = pc.join_service_mean_s
        fp[pipeline.F_JOIN_TIMEOUT] = pc.join_timeout_s
        fp[pipeline.F_SESSION_MEAN] = session_mean_s
        fp[pipeline.F_CONNCAP] = pc.connections_per_node
        fp[pipeline.F_BIN] = tick_s
        fp[pipeline.F_LOAD_BOUND] = pc.placement_load_bound
        fp[pipeline.F_CHOICES] = pc.placement_choices
        fp[pipeline.F_TRACK_FLIGHT] = 1.0 if track else 0.0
        fp[pipeline.F_WASTED] = 1.0 if pc.timeout_wastes_work else 0.0
        fp[pipeline.F_LIVE_CAP] = np.inf
        if pc.auth_workers is not None:
            fp[pipeline.F_AUTH] = 1.0
            fp[pipeline.F_AUTH_SERVICE] = pc.auth_service_mean_s
            fp[pipeline.F_AUTH_TIMEOUT] = pc.auth_timeout_s
        self.auth_free = np.zeros(pc.auth_workers or 1)
        self.auth_room = np.zeros(pc.auth_queue_cap if pc.auth_workers is not None else 0)
        self.fp = fp
        self.flight = self._flight_heap() if track else np.zeros(1)
        self.states = states
        # retries and waiting-room releases: (time, slot, stage)
        self.ret: Any = calendar.new(3, RETRY_BUCKET_S, slots=RETRY_SLOTS)
        self.slots = np.zeros((_INITIAL, pipeline.N_SLOT))
        self.slot_free = np.zeros(_INITIAL, dtype=np.int64)
        self.jr = np.zeros((_INITIAL, 2))  # joins: (join time, departure time), appended
        self.bins = np.zeros((_INITIAL, 2), dtype=np.int64)  # joins, departures per tick
        self.latency = np.zeros(_INITIAL)
        self.istate = np.zeros(pipeline.N_ISTATE, dtype=np.int64)
        self.carry = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)  # counted in the next tick
        self.carried = False
        self._peak: tuple[int, tuple[int, float]] = (0, (0, float("nan")))

    def step(
        self,
        t_end: float,
        arrivals: np.ndarray,
        counts: np.ndarray,
        akind: np.ndarray | None = None,
    ) -> np.ndarray:
        """Handle every attempt before ``t_end``; return this tick's join latencies (a copy).

        ``arrivals`` are the tick's new listeners: sorted, and all before ``t_end``, which is a
        multiple of ``tick_s``. ``akind`` marks each one 0 (a person) or 1 (a bot of a join
        flood, ``sim.kernels.pipeline``); ``None``: all people.
        """
        kind = _ORGANIC if akind is None else np.ascontiguousarray(akind, dtype=np.int8)
        if kind.size and (kind.shape != arrivals.shape or ((kind != 0) & (kind != 1)).any()):
            raise ValueError(f"akind must be 0 or 1 for each of the {arrivals.size} arrivals")
        if arrivals.size and not arrivals[-1] < t_end:
            raise ValueError(f"arrivals must lie before t_end = {t_end}, got {arrivals[-1]}")
        k = round(t_end / self.tick_s)
        if abs(k * self.tick_s - t_end) > 1e-9 * max(1.0, abs(t_end)):
            raise ValueError(f"t_end = {t_end} is not a multiple of tick_s = {self.tick_s}")
        f = self.fleet
        self.fp[pipeline.F_NUP] = f.n_up
        if self.carried:
            counts += self.carry
            self.carry[:] = 0
            self.carried = False
        if arrivals.size == 0 and calendar.next_due(self.ret) >= t_end:
            # nothing to handle in this tick: the kernel would only find that out (exact)
            b = int(self.istate[pipeline.S_BIN])
            bins = self.bins
            if k == b + 1 and (b >= bins.shape[0] or not (bins[b, 0] or bins[b, 1])):
                self.istate[pipeline.S_BIN] = k  # an empty bin: nothing for ``advance`` either
            else:
                tally.advance(t_end, self.tick_s, self.bins, self.istate, counts)
            return _NONE
        (f.rel, self.ret, self.slots, self.slot_free, self.jr, self.bins, self.latency, n) = (
            pipeline.step(
                t_end, arrivals, kind,
                self.adm_kind, self.adm_params, self.adm_state, self.adm_room,
                self.plc_kind, self.ring_pos, self.ring_node, self.cli_kind, self.cli_params,
                self.budget, self.throttle, self.fp, f.free, f.wroom, f.wn, f.cn, f.cap, f.up,
                f.upidx, f.epoch, self.auth_free, self.auth_room, self.flight,
                f.rel, self.ret, self.slots, self.slot_free, self.jr, self.bins, self.istate,
                counts, self.latency, self.states,
            )
        )  # fmt: skip
        tally.advance(t_end, self.tick_s, self.bins, self.istate, counts)
        return self.latency[:n].copy()

    def crash(
        self,
        nodes: list[int],
        t: float,
        restart_t: float,
        share: float = 1.0,
        not_before: float = 0.0,
    ) -> list[int]:
        """Crash ``nodes`` at the tick end ``t``, in that order (``sim.kernels.crash``); return the
        listeners each dropped (counted in the next tick's ``dropped``); they are down until
        ``restart_t``. A share ``share`` of the dropped listeners reconnect, none before
        ``not_before``."""
        f = self.fleet
        which = np.asarray(nodes, dtype=np.int64)
        self.ret, self.slots, self.slot_free, dropped = crash.drop(
            which, t, restart_t, f.rel, self.ret, self.slots, self.slot_free, self.istate,
            self.jr, self.bins, self.tick_s, f.cn, f.wn, f.free, f.epoch, self.cli_params,
            self.states, share, not_before, self.flight,
        )  # fmt: skip
        self._peak = (-1, self._peak[1])  # a join in flight moved to t: the peak may be lower
        self.carry[pipeline.C_DROPPED] += int(dropped.sum())
        self.carried = True
        for node in nodes:
            f.set_up(node, False)
        return [int(x) for x in dropped]

    def drop_listeners(self, quota: np.ndarray, t: float, share: float = 1.0) -> int:
        """Drop ``quota[node]`` connected listeners of each node at the tick end ``t``, the nodes
        staying up (``sim.kernels.crash.drop_listeners``); a share ``share`` of them reconnect.
        Return how many were dropped (counted in the next tick's ``dropped``)."""
        f = self.fleet
        which = np.asarray(quota, dtype=np.int64)
        if which.shape != f.cn.shape or np.any(which < 0):
            raise ValueError(f"quota must be {f.size} counts >= 0 (one per node), got {quota}")
        if t < self.istate[pipeline.S_BIN] * self.tick_s:
            raise ValueError(f"t = {t} lies in a tick already counted: drop at the tick end")
        self.ret, self.slots, self.slot_free, dropped = crash.drop_listeners(
            which, t, f.rel, self.ret, self.slots, self.slot_free, self.istate, self.jr,
            self.bins, self.tick_s, f.cn, f.epoch, self.cli_params, self.states, share,
        )  # fmt: skip
        total = int(dropped.sum())
        self.carry[pipeline.C_DROPPED] += total
        self.carried = True
        self._peak = (-1, self._peak[1])  # a peak still to come (a join in flight) may be lower
        return total

    def _flight_heap(self) -> np.ndarray:
        """Room for every join in flight: each waits or is served on a node, so at most
        workers + queue places per node."""
        pc = self.fleet.cfg
        return np.zeros(self.fleet.size * (pc.join_workers + pc.join_queue_cap))

    def set_admission(self, cfg: AdmissionConfig) -> None:
        """Switch the admission policy (an operator action, at a tick end): a fresh state."""
        self.adm_kind, self.adm_params = cfg.kernel()
        self.adm_state, self.adm_room = admission.new_state(self.adm_kind, self.adm_params)
        if admission.needs_in_flight(self.adm_kind) and self.fp[pipeline.F_TRACK_FLIGHT] == 0:
            self.flight = self._flight_heap()
            self.fp[pipeline.F_TRACK_FLIGHT] = 1.0  # (joins already in flight are not counted)

    def cap_listeners(self, cap: float) -> None:
        """Refuse attempts (``cap``) while the fleet holds ``cap`` connections (inf: no cap)."""
        self.fp[pipeline.F_LIVE_CAP] = cap

    def drain_held(self, t: float) -> int:
        """People held in the waiting room at ``t`` (those who left by ``t`` forgotten)."""
        if self.adm_kind != admission.WAITING_ROOM:
            return 0
        self.adm_state[1] = heap.drain(self.adm_room, int(self.adm_state[1]), t)
        return int(self.adm_state[1])

    @property
    def pending_retries(self) -> int:
        return int(self.istate[pipeline.S_RETRY_N])

    @property
    def concurrent(self) -> int:
        return int(self.istate[pipeline.S_CONCURRENT])

    @property
    def peak(self) -> tuple[int, float]:
        """The most listeners connected at once so far, and when that was first reached."""
        n = int(self.istate[pipeline.S_RECORDED])
        if self._peak[0] != n:
            most, when = tally.peak(self.jr[:n], self.bins, self.tick_s)
            self._peak = (n, (int(most), float(when)))
        return self._peak[1]

    @property
    def only_departures_left(self) -> bool:
        """No retry and no join pending: what remains is connected listeners leaving."""
        s = self.istate
        return bool(s[pipeline.S_RETRY_N] == 0 and s[pipeline.S_JOIN_N] == 0)

    def pending_departures(self) -> np.ndarray:
        """The departure times of the connected listeners (unsorted)."""
        leaves = self.jr[: self.istate[pipeline.S_RECORDED], 1]
        return leaves[leaves >= self.istate[pipeline.S_BIN] * self.tick_s]

    def finish_departures(self, counts: np.ndarray) -> None:
        """Count every pending departure as done (the tail computed by the engine)."""
        counts[pipeline.C_LEFT] += int(self.istate[pipeline.S_CONCURRENT])
        self.istate[pipeline.S_CONCURRENT] = 0
        self.istate[pipeline.S_BIN] = self.bins.shape[0]

    @property
    def idle(self) -> bool:
        """No retry pending, no join pending, nobody connected and no connection held (an
        attempt that timed out holds its connection until the person gives up)."""
        s = self.istate
        f = self.fleet
        return bool(
            s[pipeline.S_RETRY_N] == 0
            and s[pipeline.S_JOIN_N] == 0
            and s[pipeline.S_CONCURRENT] == 0
            and f.rel.ist[calendar.I_SIZE] - f.epoch[-1] == 0
        )
