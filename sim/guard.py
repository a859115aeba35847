"""The resource guard: a run's peak memory and rough time, estimated from its config alone.

``estimate(config)`` is closed-form: it reads the config and never simulates, so it answers in
microseconds whatever the size asked for (10^12 arrivals, 10^9 join workers). ``problems(config)``
refuses a run whose estimate exceeds the memory this machine has available (``available_bytes``:
the cgroup v2 limit when there is one, else ``MemAvailable``), naming the estimate, what is
available, the keys that drive it and the override, ``engine.guard=false``. ``spacesim run``
checks every run (every point of a sweep, the bracket of a threshold search) before any runs
(``sim.hydra_app.check_overrides``); ``spacesim run --dry-run`` prints the estimate.

The model (``docs/robustness.md``, "Resource guard", where the constants were measured):

* a fixed cost, the interpreter with numpy, numba, SimPy and Hydra loaded (``BASE_BYTES``);
* per listener (``PER_ARRIVAL_BYTES``): the batched engine's slot, join record, join latency and
  release record, grown by doubling; the reference engine's SimPy process and its events;
* per tick (``PER_TICK_BYTES``): the per-tick metrics row (Python objects) and the time series
  built from it at the end; ticks run until about the last departure
  (``session_mean_s × (ln arrivals + 1)`` after the surge ends), at most ``engine.max_sim_s``;
* the fleet, allocated up front for every node the fleet may come to hold: each node's
  heap of worker-free times and its waiting room (``join_workers + join_queue_cap`` floats, twice
  when the admission policy tracks the joins in flight). numpy allocates them lazily, so the
  resident memory of a quiet run stays below this share; the guard counts what the run may touch
  (and what the OS must be able to give: an allocation beyond RAM and swap fails at once).

The time is rough (within a few times): a start-up cost, then a cost per listener and per tick.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from sim.config import Config

log = logging.getLogger(__name__)

GUARD_KEY = "engine.guard"
# measured on this machine (docs/robustness.md): resident memory after start-up and a tiny run
BASE_BYTES = {"batched": 255e6, "reference": 245e6}
# per listener (its first attempt), including the growth by doubling of the batched arrays
PER_ARRIVAL_BYTES = {"batched": 72.0, "reference": 1150.0}
PER_BOT_BYTES = {"batched": 24.0, "reference": 600.0}  # a bot holds no connection
PER_TICK_BYTES = 1300.0  # the metrics row of a tick, its state tuple, the time series
PER_NODE_BYTES = {"batched": 400.0, "reference": 4000.0}  # the small per-node arrays or objects
FLOAT_BYTES = 8.0
RING_POINT_BYTES = 16.0  # consistent_hash: a position and a node per virtual node
# rough time: start-up (imports, numba's cache, Hydra), then per listener or bot and per tick
START_S = 3.0
PER_ARRIVAL_S = {"batched": 0.9e-6, "reference": 110e-6}
PER_TICK_S = {"batched": 8e-6, "reference": 30e-6}
IN_FLIGHT_POLICIES = ("concurrency_cap", "credit")  # admission that tracks the joins in flight
# what drives each part of the estimate, for the message that refuses a run
DRIVERS = {
    "listeners": ("scenario.expected_arrivals",),
    "bots": ("attack.join_flood", "attack.bot_max_attempts"),
    "ticks": ("engine.tick_s", "engine.max_sim_s", "scenario.session_mean_s"),
    "fleet": ("platform.nodes", "platform.join_workers", "platform.join_queue_cap"),
    "base": (),
}


@dataclass(frozen=True)
class Estimate:
    """A run's estimated peak memory (bytes) and time (seconds), with what makes them up."""

    peak_bytes: float
    seconds: float
    parts: dict[str, float] = field(default_factory=dict)  # bytes of each part (DRIVERS)
    arrivals: float = 0.0
    attempts: float = 0.0
    ticks: float = 0.0
    nodes: int = 0
    engine: str = "batched"
    scaled: bool = True  # scenario.expected_arrivals sets the arrivals (else the profile does)

    def describe(self) -> str:
        """One line: ``about 1.2 GB peak memory and ~40 s (batched engine: ...)``."""
        return (
            f"about {format_bytes(self.peak_bytes)} peak memory and ~{format_seconds(self.seconds)}"
            f" ({self.engine} engine: {self.arrivals:.3g} arrivals, up to {self.attempts:.3g}"
            f" attempts, {self.ticks:.3g} ticks, {self.nodes:.3g} nodes)"
        )

    def breakdown(self) -> str:
        """The parts of the peak, largest first: ``fleet 3.9 GB, listeners 700 MB, ...``."""
        parts = sorted(self.parts.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} {format_bytes(b)}" for name, b in parts if b > 0)

    def drivers(self) -> list[str]:
        """The keys behind the parts that make most of the peak (a quarter or more of it)."""
        keys: list[str] = []
        for name, b in sorted(self.parts.items(), key=lambda kv: -kv[1]):
            if b >= 0.25 * self.peak_bytes:
                keys += DRIVERS.get(name, ())
                if name == "listeners" and not self.scaled:
                    keys = [k for k in keys if k != "scenario.expected_arrivals"]
                    keys += ["scenario.profile", "scenario.pushes"]
                if name == "listeners" and self.engine == "reference":
                    keys.append("engine.kind")
        return list(dict.fromkeys(keys))


def format_bytes(n: float) -> str:
    """``1.2 GB``: decimal units, two or three significant digits."""
    if not math.isfinite(n):
        return f"{n} B"
    for unit, size in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}" if n < 1000 * size or unit == "EB" else f"{n:.3g} B"
    return f"{n / 1e3:.3g} kB"


def format_seconds(s: float) -> str:
    """``40 s``, ``12 min``, ``3.5 h``, ``2.1e+04 days``."""
    if not math.isfinite(s):
        return f"{s} s"
    if s < 120:
        return f"{s:.2g} s"
    if s < 7200:
        return f"{s / 60:.2g} min"
    if s < 2 * 86400:
        return f"{s / 3600:.2g} h"
    return f"{s / 86400:.3g} days"


def _profile_total(points: list[tuple[float, float]]) -> float:
    """Λ of a piecewise-linear profile ``[(t_s, rate_per_s), ...]`` (a join flood's)."""
    return sum(0.5 * (r0 + r1) * (t1 - t0) for (t0, r0), (t1, r1) in itertools.pairwise(points))


def _nodes(cfg: Config) -> int:
    """Every node the fleet may come to hold (``sim.model.operator.room_for``)."""
    added = sum(a.count for a in cfg.scenario.actions if a.do == "add_nodes")
    scaled = cfg.autoscaler.max_nodes if cfg.autoscaler.policy == "target" else 0
    return int(max(cfg.platform.nodes, scaled) + added)


def _sim_end_s(cfg: Config, arrivals: float) -> float:
    """When the run ends, about: the last arrival, then about the last departure."""
    scen = cfg.scenario
    try:
        end = float(scen.shape().end_s)
    except (ValueError, IndexError):  # an invalid profile: check() names it
        end = 0.0
    origin = scen.origin_s()
    later = [a.t_s - origin + a.for_s for a in scen.actions]
    later += [p.t_s - origin for p in cfg.attack.join_flood]
    end = max([end, *later])
    tail = scen.session_mean_s * (math.log(max(arrivals, 1.0)) + 1.0)
    return min(cfg.engine.max_sim_s, end + tail + cfg.platform.join_timeout_s)


def estimate(cfg: Config) -> Estimate:
    """The estimated peak memory and time of a run of ``cfg``, from the config alone."""
    kind = cfg.engine.kind if cfg.engine.kind in BASE_BYTES else "batched"
    scen, plat = cfg.scenario, cfg.platform
    if scen.expected_arrivals is not None:
        arrivals = float(scen.expected_arrivals)
    else:
        try:
            arrivals = float(scen.shape().total())
        except (ValueError, IndexError):  # an invalid profile: check() names it
            arrivals = 0.0
    flood = [(p.t_s, p.rate_per_s) for p in cfg.attack.join_flood]
    bots = max(0.0, _profile_total(flood))
    bot_attempts = bots * max(1, cfg.attack.bot_max_attempts)
    attempts = arrivals * max(1, cfg.client.max_attempts) + bot_attempts
    ticks = math.ceil(_sim_end_s(cfg, arrivals) / cfg.engine.tick_s)
    nodes = _nodes(cfg)
    if kind == "batched":
        in_flight = 2.0 if cfg.admission.policy in IN_FLIGHT_POLICIES else 1.0
        per_node = (plat.join_workers + plat.join_queue_cap) * FLOAT_BYTES * in_flight
        if plat.placement == "consistent_hash":
            per_node += plat.placement_vnodes * RING_POINT_BYTES
    else:  # a list of worker-free times per node; the waiting room grows with its use only
        per_node = plat.join_workers * FLOAT_BYTES
    auth = 0.0
    if plat.auth_workers is not None:
        auth = (plat.auth_workers + plat.auth_queue_cap) * FLOAT_BYTES
    parts = {
        "base": BASE_BYTES[kind],
        "listeners": arrivals * PER_ARRIVAL_BYTES[kind],
        "bots": bots * PER_BOT_BYTES[kind],
        "ticks": ticks * PER_TICK_BYTES,
        "fleet": nodes * (per_node + PER_NODE_BYTES[kind]) + auth,
    }
    # the measured cost per listener includes its retries in a surge like bench_surge's; a retry
    # storm (up to ``attempts``) takes longer
    seconds = START_S + (arrivals + bots) * PER_ARRIVAL_S[kind] + ticks * PER_TICK_S[kind]
    return Estimate(
        peak_bytes=float(sum(parts.values())),
        seconds=float(seconds),
        parts=parts,
        arrivals=arrivals,
        attempts=float(attempts),
        ticks=float(ticks),
        nodes=nodes,
        engine=kind,
        scaled=scen.expected_arrivals is not None,
    )


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_bytes() -> int:
    """The memory a run may use: the least of the cgroup v2 limit (less what the cgroup uses)
    and ``MemAvailable`` of ``/proc/meminfo`` (the physical memory when neither can be read)."""
    found: list[int] = []
    cgroup = Path("/sys/fs/cgroup")
    limit = _read_int(cgroup / "memory.max")
    if limit is not None:
        found.append(max(0, limit - (_read_int(cgroup / "memory.current") or 0)))
    meminfo = _mem_available()
    if meminfo is not None:
        found.append(meminfo)
    if not found:
        try:
            found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError):
            return 2**63 - 1  # nothing to go by: the guard lets every run through
    return min(found)


def _values(cfg: Config, keys: list[str]) -> str:
    """``platform.join_workers = 1e+10, ...`` for the keys that have a plain value."""
    out = []
    for key in keys:
        node: object = cfg
        for part in key.split("."):
            node = getattr(node, part, None)
        if isinstance(node, int | float | str) or node is None:
            shown = f"{node:.3g}" if isinstance(node, float) else repr(node)
            out.append(f"{key} = {shown}")
        else:
            out.append(key)
    return ", ".join(out)


def problems(cfg: Config, available: int | None = None) -> list[str]:
    """Why the guard refuses a run of ``cfg`` (empty when it fits, or ``engine.guard`` is
    false): one or two lines naming the estimate, the memory available, the keys that drive the
    estimate and the override. ``available``: bytes (default: ``available_bytes()``)."""
    if not cfg.engine.guard:
        return []
    est = estimate(cfg)
    room = available_bytes() if available is None else available
    log.debug("resource estimate: %s; %s available", est.describe(), format_bytes(room))
    if est.peak_bytes <= room:
        return []
    keys = est.drivers() or ["scenario.expected_arrivals"]
    return [
        f"run refused by the resource guard: it needs {est.describe()}, more than the"
        f" {format_bytes(room)} of memory available (estimate: {est.breakdown()})",
        f"driven by {_values(cfg, keys)}; make them smaller, or set {GUARD_KEY}=false"
        " to run it anyway",
    ]
