"""Typed configuration: the dataclasses behind ``conf/``, their validation, and the Hydra store.

Every parameter has its unit in its name (``join_timeout_s``, ``rate_per_s``). The Hydra config tree
(``conf/``) composes these dataclasses; ``problems()`` lists every value that is wrong, naming the
key, the value and what is allowed, so that ``spacesim`` can refuse a config before anything runs.

Scaled workloads: when ``scenario.expected_arrivals`` is set, the surge profile is a shape that is
multiplied by ``s = expected_arrivals / Λ(end)``. The resolvers ``${scale:x}`` (x·s) and
``${scale_round:x}`` (round(x·s), an integer) let other values grow with it, as in
``experiment=bench_surge``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf, open_dict

from sim import observations
from sim.criteria import CriterionConfig
from sim.kernels.profile import SHAPE_NAMES, Profile
from sim.kernels.pushes import Push, with_pushes
from sim.policies import ADMISSION, PLACEMENT, RETRY, AdmissionConfig, ClientConfig, Problem

SHAPES = SHAPE_NAMES
ENGINES = ("batched", "reference")  # numba kernels in batches; one SimPy process per listener


@dataclass
class PointConfig:
    """A data point of λ(t); ``shape`` is the shape of the segment from this point to the next.

    ``linear`` interpolates to the next point's rate; ``exp`` decays (or grows) from this rate
    toward the next point's rate with time constant ``tau_s``.
    """

    t_s: float = MISSING
    rate_per_s: float = MISSING
    shape: str = "linear"
    tau_s: float | None = None


ACTIONS = (
    "cap_listeners",  # value: connections the room may hold (null: lift the cap)
    "waiting_room",  # value: release_per_s; max_wait_s: switch admission to a waiting room
    "add_nodes",  # count nodes, up after for_s (provisioning)
    "drain_nodes",  # count nodes out of placement for for_s (they keep their listeners)
    "crash_nodes",  # count nodes crash now (listeners dropped, they reconnect)
    "end_room",  # every node crashes; share of the listeners reconnect; back after for_s
)


@dataclass
class ActionConfig:
    """An operator action on the scenario timeline, taken at the first tick end >= ``t_s``."""

    t_s: float = MISSING
    do: str = MISSING
    value: float | None = None
    count: int = 0
    for_s: float = 0.0
    share: float = 1.0
    max_wait_s: float = 300.0

    def problems(self) -> Iterator[Problem]:
        if self.do not in ACTIONS:
            yield "do", self.do, f"one of {', '.join(ACTIONS)}"
        if not math.isfinite(self.t_s):
            yield "t_s", self.t_s, "a time (seconds on the scenario clock)"
        if self.do in ("add_nodes", "drain_nodes", "crash_nodes") and not self.count >= 1:
            yield "count", self.count, f"an integer >= 1 (nodes) for {self.do}"
        if self.do == "waiting_room" and not (self.value is not None and self.value > 0):
            yield "value", self.value, "the release rate, a number > 0 (per second)"
        if self.do == "cap_listeners" and self.value is not None and not self.value >= 0:
            yield "value", self.value, "connections >= 0, or null (no cap)"
        if not self.for_s >= 0:
            yield "for_s", self.for_s, "a number >= 0 (seconds)"
        if not 0 <= self.share <= 1:
            yield "share", self.share, "a number in [0, 1]"
        if not self.max_wait_s >= 0:
            yield "max_wait_s", self.max_wait_s, "a number >= 0 (seconds)"


@dataclass
class PushConfig:
    """A notification push (``sim.kernels.pushes``): ``followers × reach × tap_share`` people tap
    it, each after a log-normal reaction time of median ``reaction_median_s`` and shape
    ``reaction_sigma``."""

    t_s: float = MISSING
    followers: float = MISSING
    reach: float = 1.0
    tap_share: float = MISSING
    reaction_median_s: float = 60.0
    reaction_sigma: float = 1.0
    what: str = ""  # a label: "host's share", "start notification", "re-share"

    @property
    def people(self) -> float:
        return self.followers * self.reach * self.tap_share

    def problems(self) -> Iterator[Problem]:
        if not math.isfinite(self.t_s):
            yield "t_s", self.t_s, "a time (seconds on the scenario clock)"
        if not self.followers >= 0:
            yield "followers", self.followers, "a number >= 0 (accounts)"
        for key in ("reach", "tap_share"):
            if not 0 <= getattr(self, key) <= 1:
                yield key, getattr(self, key), "a share in [0, 1]"
        if not self.reaction_median_s > 0:
            yield "reaction_median_s", self.reaction_median_s, "a number > 0 (seconds)"
        if not self.reaction_sigma > 0:
            yield "reaction_sigma", self.reaction_sigma, "a number > 0 (log-normal shape)"


@dataclass
class ScenarioConfig:
    """The surge: new listeners arrive as a Poisson process with intensity λ(t) given by points,
    plus the notification pushes (``pushes``) on top of them.

    Times are on the scenario clock: t = 0 s is the scheduled start, earlier times are negative,
    and the simulation starts at the first profile point (``origin_s``). The engines run on a
    clock that starts at 0 there (``sim.clock``); everything a run reports is on this one.
    """

    name: str = MISSING
    profile: list[PointConfig] = field(default_factory=list)
    pushes: list[PushConfig] = field(default_factory=list)
    expected_arrivals: float | None = None
    session_mean_s: float = 300.0
    actions: list[ActionConfig] = field(default_factory=list)
    event: str | None = None  # the public data points it replays (sim.observations), or null

    def origin_s(self) -> float:
        """When the simulation starts on the scenario clock: the first profile point, or 0."""
        return min(0.0, self.profile[0].t_s) if self.profile else 0.0

    def problems(self) -> Iterator[Problem]:
        start = self.profile[0].t_s if self.profile else 0.0
        for i, a in enumerate(self.actions):
            for k, v, allowed in a.problems():
                yield f"actions[{i}].{k}", v, allowed
            if not a.t_s >= min(0.0, start):
                allowed = f"a time >= the scenario's start ({min(0.0, start):g} s, scenario clock)"
                yield f"actions[{i}].t_s", a.t_s, allowed
        for i, push in enumerate(self.pushes):
            for k, v, allowed in push.problems():
                yield f"pushes[{i}].{k}", v, allowed
        if len(self.profile) < 2:
            yield "profile", len(self.profile), "at least 2 points"
        last = -math.inf
        for i, p in enumerate(self.profile):
            if not math.isfinite(p.t_s) or not p.t_s > last:
                yield f"profile[{i}].t_s", p.t_s, f"a time > the previous point ({last})"
            last = p.t_s
            if not p.rate_per_s >= 0:
                yield f"profile[{i}].rate_per_s", p.rate_per_s, "a rate >= 0"
            if p.shape not in SHAPES:
                yield f"profile[{i}].shape", p.shape, f"one of {', '.join(SHAPES)}"
            elif p.shape == "exp" and not (p.tau_s is not None and p.tau_s > 0):
                yield f"profile[{i}].tau_s", p.tau_s, "a time constant > 0 for an exp segment"
            elif p.shape != "linear" and self.pushes and i < len(self.profile) - 1:
                yield f"profile[{i}].shape", p.shape, "linear when the scenario has pushes"
        if self.event is not None and not observations.is_event(str(self.event)):
            known = ", ".join(observations.events())
            yield "event", self.event, f"one of {known} (sim/data/events/), a .csv file, or null"
        if self.expected_arrivals is not None and not self.expected_arrivals > 0:
            yield "expected_arrivals", self.expected_arrivals, "a number > 0, or null"
        elif self.expected_arrivals is not None and not self._bad_points():
            if not self.shape().total() > 0:  # nothing to scale: refuse before anything runs
                allowed = "null when the profile and pushes have no arrivals (all rates 0)"
                yield "expected_arrivals", self.expected_arrivals, allowed
        if not self.session_mean_s > 0:
            yield "session_mean_s", self.session_mean_s, "a number > 0 (seconds)"

    def _bad_points(self) -> bool:
        """The profile or the pushes have a problem (then ``shape`` cannot be built)."""
        if len(self.profile) < 2 or any(True for i in self.pushes for _ in i.problems()):
            return True
        last = -math.inf
        for p in self.profile:
            if not (math.isfinite(p.t_s) and p.t_s > last and p.rate_per_s >= 0):
                return True
            if p.shape not in SHAPES or (p.shape == "exp" and not (p.tau_s or 0) > 0):
                return True
            last = p.t_s
        return False

    def shape(self) -> Profile:
        """λ(t) before scaling: the profile plus the pushes (its points must be valid), on the
        engines' clock (``t - origin_s()``, from 0 at the first point)."""
        o = self.origin_s()
        base = Profile.from_points(
            [(p.t_s - o, p.rate_per_s) for p in self.profile],
            [p.shape for p in self.profile[:-1]],
            [p.tau_s or 0.0 for p in self.profile[:-1]],
        )
        pushes = [
            Push(p.t_s - o, p.people, p.reaction_median_s, p.reaction_sigma) for p in self.pushes
        ]
        return with_pushes(base, pushes)

    def scale(self) -> float:
        """The factor ``s`` applied to the rates (1 when ``expected_arrivals`` is unset)."""
        if self.expected_arrivals is None or any(True for _ in self.problems()):
            return 1.0  # a profile with problems is refused by ``check``, which names them
        total = self.shape().total()
        if not total > 0:
            raise ValueError("scenario.profile has no arrivals to scale to expected_arrivals")
        return self.expected_arrivals / total


@dataclass
class TierConfig:
    """One tier of the audio fan-out tree (``docs/fanout.md``); capacities are per node.

    ``coalesce``: a node fetches each segment (and playlist) once per rendition from the tier
    above, whatever its listeners ask; otherwise a share ``hit_ratio`` of the requests is served
    from its cache and every other request goes upstream on its own.
    """

    nodes: int = 1  # nodes of the tier (the edge tier's nodes are the edge fleet's)
    requests_per_s: float = 20000.0  # playlist and segment requests it can serve per second
    egress_gbps: float = 10.0
    ingress_gbps: float = 10.0  # what a volumetric flood aimed at ingress must fill
    hit_ratio: float = 0.9
    coalesce: bool = True

    def problems(self) -> Iterator[Problem]:
        if not self.nodes >= 1:
            yield "nodes", self.nodes, "an integer >= 1"
        for key in ("requests_per_s", "egress_gbps", "ingress_gbps"):
            if not getattr(self, key) > 0:
                yield key, getattr(self, key), "a number > 0"
        if not 0 <= self.hit_ratio <= 1:
            yield "hit_ratio", self.hit_ratio, "a number in [0, 1]"


def _origin() -> TierConfig:
    return TierConfig(nodes=2, requests_per_s=5000.0, egress_gbps=10.0, hit_ratio=1.0)


def _relay() -> TierConfig:
    return TierConfig(nodes=8, requests_per_s=50000.0, egress_gbps=10.0, hit_ratio=0.95)


def _edge() -> TierConfig:
    return TierConfig(nodes=1, requests_per_s=20000.0, egress_gbps=1.0, ingress_gbps=1.0)


FANOUT_TIERS = ("origin", "relay", "edge")


@dataclass
class FanoutConfig:
    """The audio path: speakers -> origin SFU -> segmenter -> origin, relay and edge tiers.

    Off by default (``enabled: false``): the join-path studies keep their meaning. The model,
    every default and where it comes from: ``docs/fanout.md``.
    """

    enabled: bool = False
    speakers: int = 3  # on stage (host, co-hosts, speakers): at most 13
    speaker_kbps: float = 32.0  # Opus, fullband speech (RFC 7587: 28-40 kb/s)
    sfu_streams: int = 20  # streams the origin SFU takes in
    sfu_mbps: float = 100.0  # and its ingest bandwidth
    segment_s: float = 3.0  # HLS segment length (#EXTINF:3.008)
    bitrate_kbps: float = 96.0  # the listeners' AAC rendition
    ladder_kbps: list[float] = field(default_factory=list)  # lower renditions, descending
    degrade: bool = False  # an edge short of egress moves listeners down the ladder first
    playlist_polls_per_segment: float = 1.0  # HLS players reload the playlist once per segment
    playlist_bytes: float = 1500.0  # a live playlist of a few segment lines
    origin: TierConfig = field(default_factory=_origin)
    relay: TierConfig = field(default_factory=_relay)
    edge: TierConfig = field(default_factory=_edge)
    stall_reconnect_s: float = 9.0  # stalled this long in a row: the player reconnects
    stall_reconnect_share: float = 1.0  # of those, the share who reconnect (the rest leave)

    def problems(self) -> Iterator[Problem]:
        if not 1 <= self.speakers <= 13:
            yield "speakers", self.speakers, "an integer in [1, 13] (host, 2 co-hosts, 10 speakers)"
        if not self.sfu_streams >= 1:
            yield "sfu_streams", self.sfu_streams, "an integer >= 1"
        for key in ("speaker_kbps", "sfu_mbps", "segment_s", "bitrate_kbps", "playlist_bytes"):
            if not getattr(self, key) > 0:
                yield key, getattr(self, key), "a number > 0"
        last = self.bitrate_kbps
        for i, b in enumerate(self.ladder_kbps):
            if not 0 < b < last:
                yield f"ladder_kbps[{i}]", b, f"a bitrate > 0 and < the one before ({last})"
            last = b
        if self.degrade and not self.ladder_kbps:
            yield "degrade", self.degrade, "false, or a ladder_kbps to degrade along"
        if not self.playlist_polls_per_segment >= 0:
            yield "playlist_polls_per_segment", self.playlist_polls_per_segment, "a number >= 0"
        if not self.stall_reconnect_s > 0:
            yield "stall_reconnect_s", self.stall_reconnect_s, "a number > 0 (seconds)"
        if not 0 <= self.stall_reconnect_share <= 1:
            yield "stall_reconnect_share", self.stall_reconnect_share, "a number in [0, 1]"
        for tier in FANOUT_TIERS:
            for k, v, allowed in getattr(self, tier).problems():
                yield f"{tier}.{k}", v, allowed


PRESENCE_MODES = ("aggregate", "broadcast")
PRESENCE_SATURATION = ("none", "delay_joins", "drop_connections")


@dataclass
class PresenceConfig:
    """The presence channel (WebSocket): occupancy counts and join events pushed to listeners.

    ``broadcast`` sends every join to every listener (messages grow with audience x join rate);
    ``aggregate`` sends each listener one occupancy count every ``interval_s``. Messages beyond
    ``capacity_msgs_per_s`` wait in a backlog; its lag is ``presence_lag_s``. Past ``max_lag_s``
    the channel ``delay_joins`` (new joins wait: rejected ``presence``, they retry) or
    ``drop_connections`` (``drop_share_per_s`` of the listeners per second are dropped and
    reconnect), or does nothing (``none``). ``docs/fanout.md``.
    """

    enabled: bool = False
    mode: str = "aggregate"
    interval_s: float = 2.0
    capacity_msgs_per_s: float = 2.0e6
    max_lag_s: float = 5.0
    on_saturation: str = "none"
    drop_share_per_s: float = 0.01

    def problems(self) -> Iterator[Problem]:
        if self.mode not in PRESENCE_MODES:
            yield "mode", self.mode, f"one of {', '.join(PRESENCE_MODES)}"
        if self.on_saturation not in PRESENCE_SATURATION:
            yield "on_saturation", self.on_saturation, f"one of {', '.join(PRESENCE_SATURATION)}"
        for key in ("interval_s", "capacity_msgs_per_s"):
            if not getattr(self, key) > 0:
                yield key, getattr(self, key), "a number > 0"
        if not self.max_lag_s >= 0:
            yield "max_lag_s", self.max_lag_s, "a number >= 0 (seconds)"
        if not 0 <= self.drop_share_per_s <= 1:
            yield "drop_share_per_s", self.drop_share_per_s, "a number in [0, 1] (per second)"


@dataclass
class PlatformConfig:
    """The edge fleet: nodes with join workers, a bounded join queue and a connection cap."""

    nodes: int = MISSING
    join_workers: int = 2
    join_service_mean_s: float = 1 / 6
    join_queue_cap: int = 50
    join_timeout_s: float = 2.0
    connections_per_node: int = 1000
    placement: str = "power_of_two"
    placement_choices: int = 2  # d of power_of_d
    placement_load_bound: float = 1.25  # c of consistent_hash: no node above ceil(c · mean load)
    placement_vnodes: int = 64  # consistent_hash: points per node on the ring
    timeout_wastes_work: bool = False  # a timed-out join is still served (nobody cancels it)
    # the control-plane/auth service every admitted join passes first (null workers: none)
    auth_workers: int | None = None
    auth_service_mean_s: float = 0.01
    auth_queue_cap: int = 1000
    auth_timeout_s: float = 5.0
    # node health (docs/model.md): utilisation of CPU cores and memory; null crash_after_s: none
    cpu_cores: float = 8.0
    cpu_per_join_worker: float = 1.0  # cores a busy join worker uses
    cpu_per_listener: float = 0.0  # cores per connected listener (fan-out, keep-alives)
    memory_mb: float = 16384.0
    memory_per_connection_mb: float = 0.0
    overload_share: float = 0.95  # a node at or above this share of CPU or memory is overloaded
    crash_after_s: float | None = None  # overloaded this long in a row: it crashes
    restart_s: float = 60.0  # down this long after a crash
    warmup_s: float = 0.0  # then its connection cap ramps up linearly over this long
    fanout: FanoutConfig = field(default_factory=FanoutConfig)  # the audio path
    presence: PresenceConfig = field(default_factory=PresenceConfig)

    def problems(self) -> Iterator[Problem]:
        for key in ("nodes", "join_workers", "connections_per_node", "placement_vnodes"):
            if not getattr(self, key) >= 1:
                yield key, getattr(self, key), "an integer >= 1"
        if not 2 <= self.placement_choices <= 64:
            yield "placement_choices", self.placement_choices, "an integer in [2, 64]"
        if not self.placement_load_bound >= 1:
            yield "placement_load_bound", self.placement_load_bound, "a number >= 1"
        if self.auth_workers is not None and not self.auth_workers >= 1:
            yield "auth_workers", self.auth_workers, "an integer >= 1, or null (no auth service)"
        if not self.auth_queue_cap >= 0:
            yield "auth_queue_cap", self.auth_queue_cap, "an integer >= 0"
        for key in ("auth_service_mean_s", "auth_timeout_s", "cpu_cores", "memory_mb"):
            if not getattr(self, key) > 0:
                yield key, getattr(self, key), "a number > 0"
        for key in ("cpu_per_join_worker", "cpu_per_listener", "memory_per_connection_mb"):
            if not getattr(self, key) >= 0:
                yield key, getattr(self, key), "a number >= 0"
        if not 0 < self.overload_share <= 10:
            yield "overload_share", self.overload_share, "a number in (0, 10] (1 = fully used)"
        if self.crash_after_s is not None and not self.crash_after_s > 0:
            yield "crash_after_s", self.crash_after_s, "a number > 0 (seconds), or null (no crash)"
        for key in ("restart_s", "warmup_s"):
            if not getattr(self, key) >= 0:
                yield key, getattr(self, key), "a number >= 0 (seconds)"
        if not self.join_queue_cap >= 0:
            yield "join_queue_cap", self.join_queue_cap, "an integer >= 0"
        for key in ("join_service_mean_s", "join_timeout_s"):
            if not getattr(self, key) > 0:
                yield key, getattr(self, key), "a number > 0 (seconds)"
        if self.placement not in PLACEMENT:
            yield "placement", self.placement, f"one of {', '.join(sorted(PLACEMENT))}"
        for group in ("fanout", "presence"):
            for k, v, allowed in getattr(self, group).problems():
                yield f"{group}.{k}", v, allowed


@dataclass
class AutoscalerConfig:
    """Adds edge nodes when the fleet runs hot: ``policy: none`` or ``target``.

    Every ``interval_s`` the utilisation of the nodes up (the larger of connections held / caps
    and busy join workers / workers) is compared with ``target_utilisation``; above it, enough
    nodes to bring it back to the target (at most ``max_step``, at most ``max_nodes`` in all) are
    ordered and come up ``provisioning_delay_s`` later; then nothing is ordered for
    ``cooldown_s``.
    """

    policy: str = "none"
    target_utilisation: float = 0.7
    interval_s: float = 10.0
    provisioning_delay_s: float = 120.0
    max_step: int = 8
    cooldown_s: float = 60.0
    max_nodes: int = 64

    def problems(self) -> Iterator[Problem]:
        if self.policy not in ("none", "target"):
            yield "policy", self.policy, "one of none, target"
        if not 0 < self.target_utilisation <= 1:
            yield "target_utilisation", self.target_utilisation, "a number in (0, 1]"
        for key in ("interval_s", "provisioning_delay_s", "cooldown_s"):
            if not getattr(self, key) >= 0:
                yield key, getattr(self, key), "a number >= 0 (seconds)"
        if not self.interval_s > 0:
            yield "interval_s", self.interval_s, "a number > 0 (seconds)"
        for key in ("max_step", "max_nodes"):
            if not 1 <= getattr(self, key) <= 1_000_000:
                yield key, getattr(self, key), "an integer in [1, 1000000]"


@dataclass
class VolumePoint:
    """A point of a volumetric flood's profile (Gb/s, linear to the next point)."""

    t_s: float = MISSING
    gbps: float = MISSING


ATTACK_TARGETS = ("ingress", "egress")


@dataclass
class AttackConfig:
    """Attack traffic (``conf/attack/``), reported apart from the organic listeners.

    A *join flood*: bot first attempts arrive as a Poisson process of intensity ``join_flood``
    (points as in ``scenario.profile``, attempts per second); each goes through admission and
    the join queues like a person's, holds no connection once served, and a rejected one tries
    again ``bot_retry_s`` later, at most ``bot_max_attempts`` attempts. A *volumetric* flood:
    ``volumetric`` Gb/s spread over the edge nodes up, filling their ``ingress`` (requests and
    join attempts are lost in the proportion it overfills it) or their ``egress`` (less is left
    for audio). *Mitigation* starts ``detect_delay_s`` after the attack does (null: never): it
    filters a share ``efficacy`` of the bot attempts and of the flood's bytes, and by mistake a
    share ``false_positive`` of the organic attempts (rejected ``filtered``).
    """

    name: str = "none"
    join_flood: list[PointConfig] = field(default_factory=list)
    bot_retry_s: float = 1.0
    bot_max_attempts: int = 1
    volumetric: list[VolumePoint] = field(default_factory=list)
    target: str = "ingress"
    detect_delay_s: float | None = None
    efficacy: float = 0.9
    false_positive: float = 0.01

    def _profiles(self) -> tuple[tuple[str, Sequence[PointConfig | VolumePoint], str], ...]:
        """Both profiles: ``(key, points, the field of their rate)``."""
        return (
            ("join_flood", self.join_flood, "rate_per_s"),
            ("volumetric", self.volumetric, "gbps"),
        )

    def problems(self) -> Iterator[Problem]:
        for name, points, unit in self._profiles():
            if len(points) == 1:
                yield name, len(points), "no points, or at least 2"
            last = -math.inf
            for i, p in enumerate(points):
                if not math.isfinite(p.t_s) or not p.t_s > last:
                    yield f"{name}[{i}].t_s", p.t_s, f"a time > the previous ({last})"
                last = p.t_s
                if not getattr(p, unit) >= 0:
                    yield f"{name}[{i}].{unit}", getattr(p, unit), "a number >= 0"
        for i, p in enumerate(self.join_flood):
            if p.shape != "linear":
                yield f"join_flood[{i}].shape", p.shape, "linear"
        if self.target not in ATTACK_TARGETS:
            yield "target", self.target, f"one of {', '.join(ATTACK_TARGETS)}"
        if not self.bot_retry_s > 0:
            yield "bot_retry_s", self.bot_retry_s, "a number > 0 (seconds)"
        if not self.bot_max_attempts >= 1:
            yield "bot_max_attempts", self.bot_max_attempts, "an integer >= 1"
        if self.detect_delay_s is not None and not self.detect_delay_s >= 0:
            yield "detect_delay_s", self.detect_delay_s, "a number >= 0 (seconds), or null"
        for key in ("efficacy", "false_positive"):
            if not 0 <= getattr(self, key) <= 1:
                yield key, getattr(self, key), "a number in [0, 1]"

    @property
    def active(self) -> bool:
        return bool(self.join_flood or self.volumetric)

    def start_s(self) -> float:
        """When the attack starts: its first point with a rate above zero (inf: none)."""
        times = [p.t_s for p in self.join_flood if p.rate_per_s > 0]
        times += [p.t_s for p in self.volumetric if p.gbps > 0]
        # a ramp from 0 starts at the point before its first positive one
        for _, pts, key in self._profiles():
            for a, b in itertools.pairwise(pts):
                if getattr(b, key) > 0:
                    times.append(a.t_s)
                    break
        return min(times, default=math.inf)

    def mitigation_s(self) -> float:
        """When mitigation starts (inf: never)."""
        if self.detect_delay_s is None:
            return math.inf
        return self.start_s() + self.detect_delay_s


@dataclass
class EngineConfig:
    """How the simulation advances: which engine, tick length, safety limit, progress bar.

    ``guard``: refuse, before anything runs, a run whose estimated peak memory exceeds the memory
    available (``sim.guard``); false runs it anyway.
    """

    kind: str = "batched"
    tick_s: float = 1.0
    max_sim_s: float = 1e6
    progress: bool | None = None
    guard: bool = True

    def problems(self) -> Iterator[Problem]:
        if self.kind not in ENGINES:
            yield "kind", self.kind, f"one of {', '.join(ENGINES)}"
        if not self.tick_s > 0:
            yield "tick_s", self.tick_s, "a number > 0 (seconds)"
        if not self.max_sim_s > 0:
            yield "max_sim_s", self.max_sim_s, "a number > 0 (seconds)"
        if not isinstance(self.guard, bool):
            yield "guard", self.guard, "a bool: true or false"


@dataclass
class OutputConfig:
    """What a run writes into its run directory."""

    archive: bool = True
    timeseries: bool = True


@dataclass
class Config:
    """The whole tree: what ``spacesim run`` composes from ``conf/``."""

    scenario: ScenarioConfig = MISSING
    platform: PlatformConfig = MISSING
    admission: AdmissionConfig = MISSING
    client: ClientConfig = MISSING
    engine: EngineConfig = field(default_factory=EngineConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    criterion: CriterionConfig = field(default_factory=CriterionConfig)
    autoscaler: AutoscalerConfig = field(default_factory=AutoscalerConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    seed: int = 0


class ConfigError(ValueError):
    """A config that must not run; ``problems`` holds every (key, value, allowed)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(format_problem(*p) for p in problems))


def format_problem(key: str, value: Any, allowed: str) -> str:
    return f"invalid config: {key} = {value!r}; allowed: {allowed}"


def _policy_problems(cfg: Config) -> Iterator[Problem]:
    groups: tuple[tuple[str, str, Any, dict[str, Any]], ...] = (
        ("admission", "policy", cfg.admission, ADMISSION),
        ("client", "retry", cfg.client, RETRY),
    )
    for group, key, node, registry in groups:
        name = getattr(node, key)
        if name not in registry or not isinstance(node, registry[name]):
            yield f"{group}.{key}", name, f"one of {', '.join(sorted(registry))}"
        else:
            for k, v, allowed in node.problems():
                yield f"{group}.{k}", v, allowed


def missing_keys(cfg: DictConfig) -> list[str]:
    """Keys whose value is missing (``???``), as dotted paths."""
    out: list[str] = []

    def walk(node: Any, path: str) -> None:
        if OmegaConf.is_dict(node):
            for key in node:
                sub = f"{path}.{key}" if path else str(key)
                if OmegaConf.is_missing(node, key):
                    out.append(sub)
                else:
                    walk(node[key], sub)
        elif OmegaConf.is_list(node):
            for i in range(len(node)):
                if OmegaConf.is_missing(node, i):
                    out.append(f"{path}[{i}]")
                else:
                    walk(node[i], f"{path}[{i}]")

    walk(cfg, "")
    return out


def variables(cfg: DictConfig) -> dict[str, Any]:
    """The experiment variables of a composed config: its top-level keys beyond ``Config``'s.

    An experiment may declare scalars at the top of the tree (``workers: 20``) that its values
    refer to (``platform.join_workers: ${workers}``), so that a study reads ``workers=40`` on the
    command line and a sweep or a threshold search can name them (``docs/sweeps.md``).
    """
    known = {f.name for f in dataclasses.fields(Config)} | {"hydra"}
    return {str(k): cfg[k] for k in cfg if k not in known}


def _interpolations(node: Any, skip: str = "") -> Iterator[str]:
    """The text of every interpolation (``${...}``) in ``node``, without copying it."""
    keys = [k for k in node if k != skip] if OmegaConf.is_dict(node) else range(len(node))
    for key in keys:
        child = node._get_node(key)
        if child is None:
            continue
        if child._is_interpolation():
            yield str(child._value())
        elif OmegaConf.is_config(child):
            yield from _interpolations(child)


def variable_problems(cfg: DictConfig) -> list[Problem]:
    """Top-level keys that are neither ``Config`` fields nor used experiment variables."""
    found = variables(cfg)
    if not found:
        return []
    known = sorted(f.name for f in dataclasses.fields(Config))
    text = "\n".join(_interpolations(cfg, skip="hydra"))
    out: list[Problem] = []
    for name, value in found.items():
        allowed = (
            f"a key of the config ({', '.join(known)}), or an experiment variable: a number, "
            f"string or boolean that a value of the config refers to as ${{{name}}}"
        )
        scalar = value is None or isinstance(value, bool | int | float | str)
        used = re.search(r"\$\{\s*" + re.escape(name) + r"\s*\}", text) is not None
        if not (scalar and used):
            out.append((name, value if scalar else type(value).__name__, allowed))
    return out


def to_config(cfg: DictConfig) -> Config:
    """Turn a composed config into typed objects, or raise ``ConfigError`` naming every problem."""
    missing = [k for k in missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        raise ConfigError([(k, "???", "a value is required") for k in missing])
    known = {f.name for f in dataclasses.fields(Config)}
    keys = [str(k) for k in cfg if k in known]
    bad = variable_problems(cfg)
    if bad:
        raise ConfigError(bad)
    node = cfg
    if len(keys) < len(cfg):  # drop the hydra node and the variables, once what refers to them
        node = cfg.copy()  # is resolved (a copy keeps the Config type, a masked copy does not)
        for k in keys:
            if OmegaConf.is_config(node[k]):
                OmegaConf.resolve(node[k])
        with open_dict(node):
            for k in [str(k) for k in node if k not in known]:
                del node[k]
    typed = OmegaConf.to_object(node)
    if not isinstance(typed, Config):
        raise ConfigError([("<root>", type(typed).__name__, "the spacesim Config tree")])
    problems = list(check(typed))
    if problems:
        raise ConfigError(problems)
    return typed


def _clock_problems(cfg: Config) -> Iterator[Problem]:
    """Times of other groups on the scenario clock must not come before the scenario starts."""
    start = cfg.scenario.origin_s()
    allowed = f"a time >= the scenario's start ({start:g} s, scenario clock)"
    for name, points, _ in cfg.attack._profiles():
        if points and not points[0].t_s >= start:
            yield f"attack.{name}[0].t_s", points[0].t_s, allowed
    c = cfg.criterion
    if c.trigger_end_s is not None and not c.trigger_end_s >= start:
        yield "criterion.trigger_end_s", c.trigger_end_s, allowed + ", or null"
    if not c.reject_share_from_s >= start:
        yield "criterion.reject_share_from_s", c.reject_share_from_s, allowed


def check(cfg: Config) -> Iterator[Problem]:
    """Every problem of a typed config, with keys relative to the root."""
    named: set[str] = set()
    for problem in _problems(cfg):
        named.add(problem[0])
        yield problem
    for key, value in _numbers(cfg, ""):  # inf passes "> 0": no quantity here may be infinite
        if not math.isfinite(value) and key not in named:
            yield key, value, "a finite number (null where the key allows 'none')"


def _problems(cfg: Config) -> Iterator[Problem]:
    for group in ("scenario", "platform", "engine", "criterion", "autoscaler", "attack"):
        for k, v, allowed in getattr(cfg, group).problems():
            yield f"{group}.{k}", v, allowed
    yield from _policy_problems(cfg)
    yield from _clock_problems(cfg)
    if isinstance(cfg.seed, bool) or not 0 <= cfg.seed < 2**63:
        yield "seed", cfg.seed, "an integer in [0, 2**63)"


def _numbers(node: Any, key: str) -> Iterator[tuple[str, float]]:
    """Every float of a typed config tree with its key (``a.b[2].c``)."""
    if isinstance(node, float):
        yield key, node
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            yield from _numbers(getattr(node, f.name), f"{key}.{f.name}" if key else f.name)
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            yield from _numbers(item, f"{key}[{i}]")
    elif isinstance(node, dict):
        for k, item in node.items():
            yield from _numbers(item, f"{key}.{k}")


def _scale_of(root: Any) -> float:
    scen = root.scenario
    expected = scen.get("expected_arrivals")
    if expected is None:
        return 1.0
    typed = OmegaConf.to_object(scen)
    assert isinstance(typed, ScenarioConfig)
    return typed.scale()


def _resolve_scale(x: float, *, _root_: Any) -> float:
    return float(x) * _scale_of(_root_)


def _resolve_scale_round(x: float, *, _root_: Any) -> int:
    return round(float(x) * _scale_of(_root_))


def register() -> None:
    """Register the schema in Hydra's ConfigStore and the ``scale`` resolvers (idempotent)."""
    from hydra.core.config_store import ConfigStore

    if not OmegaConf.has_resolver("scale"):
        OmegaConf.register_new_resolver("scale", _resolve_scale)
        OmegaConf.register_new_resolver("scale_round", _resolve_scale_round)
    if not OmegaConf.has_resolver("mul"):  # arithmetic on experiment variables
        OmegaConf.register_new_resolver("mul", lambda a, b: float(a) * float(b))
        OmegaConf.register_new_resolver("div", lambda a, b: float(a) / float(b))
        OmegaConf.register_new_resolver("add", lambda a, b: float(a) + float(b))
    cs = ConfigStore.instance()
    # schemas live in their own groups (schema/GROUP/NAME), so they are not options of GROUP;
    # each YAML option extends its schema with `- /schema/GROUP/NAME@_here_`
    # open to new top-level keys: experiment variables (``variables``), checked by ``to_config``;
    # Hydra still puts the composed tree in struct mode, so a mistyped override is refused
    root = OmegaConf.structured(Config)
    OmegaConf.set_struct(root, False)
    cs.store(name="base_config", node=root)
    cs.store(group="schema/scenario", name="scenario", node=ScenarioConfig)
    cs.store(group="schema/platform", name="platform", node=PlatformConfig)
    cs.store(group="schema/engine", name="engine", node=EngineConfig)
    cs.store(group="schema/output", name="output", node=OutputConfig)
    cs.store(group="schema/criterion", name="criterion", node=CriterionConfig)
    cs.store(group="schema/autoscaler", name="autoscaler", node=AutoscalerConfig)
    cs.store(group="schema/attack", name="attack", node=AttackConfig)
    for name, adm in ADMISSION.items():
        cs.store(group="schema/admission", name=name, node=adm)
    for name, cli in RETRY.items():
        cs.store(group="schema/client", name=name, node=cli)
