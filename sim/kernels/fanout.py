"""Audio fan-out of one segment interval: what every tier is asked, what it serves, who is on time.

The audio of a room flows down a tree, and every segment interval (``segment_s`` seconds) the
whole tree is evaluated once, as arithmetic on arrays of edge nodes (never a loop over listeners;
the only Python loops run over the ≤ ~10 rungs of the ladder)::

    speakers ──► origin SFU ──► segmenter ──► origin tier ──► relay tier ──► edge tier ──► listeners

Units: kb = 1000 bits, kb/s inside, Gb/s = 10⁶ kb/s in the results. A segment at ``b`` kb/s
carries ``b · S`` kb; a playlist ``pk = playlist_bytes · 8 / 1000`` kb. Per segment interval a
listener makes one segment request and ``P = playlist_polls_per_segment`` playlist requests. Let
``S = segment_s``, ``b = bitrate_kbps`` and ``L_i`` the listeners on edge node ``i`` (a float:
a node's share of the room). A *share* is ``min(1, capacity / need)``, and 1 when nothing is
needed.

1. **SFU.** ``speakers`` Opus streams of ``speaker_kbps`` reach the origin SFU, which takes in
   ``sfu_streams`` streams and ``sfu_mbps``: ``s_sfu = min(1, sfu_streams / speakers,
   sfu_mbps · 1000 / (speakers · speaker_kbps))``. A segment is produced on time with probability
   ``s_sfu``. Demand ``speakers · speaker_kbps`` kb/s, served ``demand · s_sfu``.
2. **Edge node i.** Requests ``R_i = L_i (1 + P) / S`` per s, egress ``E_i = L_i (b S + P pk) / S``
   kb/s. A volumetric flood of ``f_i`` Gb/s aimed at *ingress* lets through the share
   ``q_i = min(1, ingress_gbps / f_i)`` of every request (``q_i = 1`` without a flood); aimed at
   *egress* it takes egress: ``A_i = max(0, egress_gbps − f_i)`` Gb/s is left for audio and
   ``q_i = 1`` (otherwise ``A_i = egress_gbps``). Of the ``q_i R_i`` requests that arrive the node
   handles the share ``r_i = min(1, requests_per_s / (q_i R_i))``, and its egress covers the share
   ``e_i = min(1, A_i / (q_i r_i E_i))`` of what those need. The edge serves ``s_i = q_i r_i e_i``.
   For a node without listeners the shares are those of a first listener: ``e_i = 1`` unless
   ``A_i = 0``.
3. **Degradation** (``degrade`` and a ``ladder_kbps``). A node with ``e_i < 1`` moves listeners down
   the rungs ``[b, ladder…]`` (descending) instead of stalling them. The playlist bytes are kept in
   the balance, so the egress fits exactly: each served listener may have ``a_i = A_i / (q_i r_i
   L_i)`` kb/s, of which ``P pk / S`` go to playlists, so the mean segment bitrate that fits is
   ``m_i = a_i − P pk / S``. If ``m_i ≥`` the lowest rung, the listeners split between the two
   adjacent rungs ``hi > m_i ≥ lo``, a share ``(hi − m_i) / (hi − lo)`` on ``lo``: ``e_i = 1``.
   Otherwise every listener is on the lowest rung ``ℓ`` and ``e_i = A_i / (q_i r_i L_i (ℓ S + P pk)
   / S) < 1``. ``degraded_i`` is the share of the node's listeners below ``b``; ``E_i`` (and
   everything after it) is taken at the rungs chosen. A node *uses* ``b`` and every lower rung that
   carries listeners: ``n_i`` renditions (``b`` counts even when everyone moved down: new listeners
   start there, and the players probe back up).
4. **Edge fetches** (to the relay tier, nodes with ``L_i > 0``). Coalescing (``edge.coalesce``):
   one fetch per segment and per playlist reload of each rendition in use, ``F_i = n_i (1 + P) / S``
   per s and ``Σ_used (r S + P pk) / S`` kb/s; else the misses of the requests it handles,
   ``F_i = (1 − hit) q_i r_i R_i`` per s and ``(1 − hit) q_i r_i E_i`` kb/s.
5. **Relay tier** (``relay.nodes`` nodes, the load spread evenly). ``F = Σ F_i`` requests per s and
   ``D`` kb/s of those fetches: ``r_rel = min(1, nodes · requests_per_s / F)``, ``e_rel = min(1,
   nodes · egress_gbps / (r_rel D))``, ``s_rel = r_rel e_rel``. Its fetches to the origin:
   coalescing, every relay node fetches each rendition in use anywhere, ``relay.nodes · n_max (1 +
   P) / S`` per s; else ``(1 − hit)`` of the requests it handles, ``r_rel F``, and their bytes.
6. **Origin tier**: the same with ``origin.nodes``, share ``s_org``; it holds every segment
   (``origin.hit_ratio`` and ``origin.coalesce`` are not used).
7. **On time.** The fill of an edge node is on time with probability ``u_i = s_rel u_rel`` when it
   coalesces (each listener's segment comes through its fill fetch), else ``u_i = hit + (1 − hit)
   s_rel u_rel``; likewise ``u_rel = s_org`` for coalescing relays, else ``hit_rel + (1 − hit_rel)
   s_org``. A listener on node ``i`` gets its segment on time with probability
   ``on_time_i = s_sfu · s_i · u_i``; ``delivered = Σ L_i on_time_i`` of ``due = Σ L_i``.

Results per tier (``sfu``, ``origin``, ``relay``, ``edge``): egress asked (edge: ``Σ E_i``, what the
listeners ask for at the rungs chosen), served (edge: ``Σ s_i E_i``), capacity (edge: ``Σ A_i``),
requests per s offered (edge: ``Σ R_i``, before a flood's losses; sfu: 0) and the share served
(edge: ``served / asked``).

**Stalls** (``stall_step``). A late segment is a stall of ``S`` seconds. Per edge node, ``h[i, c]``
counts the listeners whose last ``c`` segments were all late, ``c = 0 … C − 1`` with ``C =
stall_segments(cfg) = ⌈stall_reconnect_s / S⌉``. Each interval every listener's segment is on
time with probability ``on_time_i`` (independently of the past): the on-time mass returns to
``c = 0``, the rest moves up one count, and the mass reaching ``C`` reconnects, rounded
stochastically to whole listeners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.config import FanoutConfig, TierConfig

TARGETS = ("ingress", "egress")  # what a volumetric flood fills
KBPS_PER_GBPS = 1e6


@dataclass(frozen=True)
class Interval:
    """One segment interval of the fan-out tree; per-node arrays follow the ``listeners`` given."""

    on_time: np.ndarray  # per edge node: P(a listener's segment is on time), in [0, 1]
    degraded: np.ndarray  # per edge node: share of its listeners on a lower rendition
    due: float  # segments due: Σ listeners
    delivered: float  # expected segments on time: Σ listeners · on_time
    demand_gbps: dict[str, float]  # egress asked per tier (sfu: ingest)
    served_gbps: dict[str, float]  # egress served per tier
    capacity_gbps: dict[str, float]  # egress capacity per tier (edge: Σ A_i, after an egress flood)
    requests_per_s: dict[str, float]  # requests offered per tier (sfu: 0)
    served_share: dict[str, float]  # share of its demand each tier serves (edge: weighted mean)


def _share(capacity: np.ndarray | float, need: np.ndarray) -> np.ndarray:
    """``min(1, capacity / need)`` per element, 1 where nothing is needed (``need <= 0``)."""
    pos = need > 0
    return np.where(pos, np.minimum(1.0, capacity / np.where(pos, need, 1.0)), 1.0)


def _ratio(capacity: float, need: float) -> float:
    """``min(1, capacity / need)``, 1 when nothing is needed."""
    return min(1.0, capacity / need) if need > 0 else 1.0


def _tier(tier: TierConfig, requests_per_s: float, kbps: float) -> tuple[float, float]:
    """``(share served, request share)`` of a tier of ``tier.nodes`` nodes, load spread evenly."""
    r = _ratio(tier.nodes * tier.requests_per_s, requests_per_s)
    e = _ratio(tier.nodes * tier.egress_gbps * KBPS_PER_GBPS, r * kbps)
    return r * e, r


def _as_nodes(name: str, x: np.ndarray | float, n: int) -> np.ndarray:
    """``x`` as a float64 array of ``n`` finite values >= 0 (a scalar is broadcast)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"{name}: shape {a.shape}; allowed: a scalar or one value per node ({n})")
    if not np.all(np.isfinite(a) & (a >= 0)):
        raise ValueError(f"{name}: {a[~(np.isfinite(a) & (a >= 0))][:3]}; allowed: finite, >= 0")
    return a


def _degrade(
    rungs: np.ndarray,
    per_listener: np.ndarray,
    served: np.ndarray,
    avail_kbps: np.ndarray,
    playlist_kbps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Rung shares (rows × rungs) and egress share of nodes short of egress, moved down the ladder.

    ``served``: listeners whose requests the node handles (``q r L``, > 0); ``avail_kbps``: its
    egress; ``per_listener``: kb/s one listener takes at each rung (segments and playlists).
    """
    n, k = served.size, rungs.size
    w = np.zeros((n, k))
    m = avail_kbps / served - playlist_kbps  # mean segment kb/s that fits
    fits = m >= rungs[-1]
    above = np.zeros(n, dtype=np.int64)  # rungs strictly above m: >= 1, as m < b
    for rung in rungs:
        above += rung > m
    lo_i = np.minimum(above, k - 1)
    hi_i = lo_i - 1
    hi, lo = rungs[hi_i], rungs[lo_i]
    w_lo = np.where(fits, (hi - m) / (hi - lo), 1.0)
    rows = np.arange(n)
    w[rows, hi_i] = np.where(fits, 1.0 - w_lo, 0.0)
    w[rows, lo_i] = w_lo
    low_need = served * per_listener[-1]
    e = np.where(fits, 1.0, np.minimum(1.0, avail_kbps / low_need))
    return w, e


def interval(
    cfg: FanoutConfig,
    listeners: np.ndarray,
    flood_gbps: np.ndarray | float = 0.0,
    target: str = "ingress",
) -> Interval:
    """The fan-out of one segment interval for ``listeners`` per edge node (module docstring).

    ``flood_gbps``: volumetric attack arriving at each edge node (a scalar: at every node);
    ``target``: what it fills, ``"ingress"`` or ``"egress"``.
    """
    lst = np.asarray(listeners, dtype=np.float64)
    if lst.ndim != 1:
        raise ValueError(f"listeners: shape {lst.shape}; allowed: one value per edge node (1-D)")
    n = lst.shape[0]
    L = _as_nodes("listeners", lst, n)
    f = _as_nodes("flood_gbps", flood_gbps, n)
    if target not in TARGETS:
        raise ValueError(f"target: {target!r}; allowed: one of {', '.join(TARGETS)}")
    S, P = cfg.segment_s, cfg.playlist_polls_per_segment
    pk = cfg.playlist_bytes * 8 / 1000  # kb
    rungs = np.array([cfg.bitrate_kbps, *cfg.ladder_kbps], dtype=np.float64)
    per_listener = (rungs * S + P * pk) / S  # kb/s of one listener (or one fill) per rendition

    # 1. SFU
    sfu_kbps = cfg.speakers * cfg.speaker_kbps
    s_sfu = min(1.0, cfg.sfu_streams / cfg.speakers, cfg.sfu_mbps * 1000 / sfu_kbps)

    # 2. edge nodes
    edge = cfg.edge
    R = L * (1 + P) / S
    if target == "ingress":
        q = _share(edge.ingress_gbps, f)
        avail = np.full(n, edge.egress_gbps * KBPS_PER_GBPS)
    else:
        q = np.ones(n)
        avail = np.maximum(0.0, edge.egress_gbps - f) * KBPS_PER_GBPS
    r = _share(edge.requests_per_s, q * R)
    E = L * (cfg.bitrate_kbps * S + P * pk) / S
    e = _share(avail, q * r * E)
    e = np.where((L == 0) & (avail <= 0), 0.0, e)  # a first listener would find no egress
    w = np.zeros((n, rungs.size))
    w[:, 0] = 1.0
    short = np.flatnonzero((e < 1.0) & (L > 0))
    if cfg.degrade and cfg.ladder_kbps and short.size:
        ws, es = _degrade(rungs, per_listener, (q * r * L)[short], avail[short], P * pk / S)
        w[short] = ws
        e[short] = es
        E[short] = L[short] * (ws @ per_listener)  # asked at the rungs chosen
    s = q * r * e
    active = L > 0
    degraded = np.where(active, 1.0 - w[:, 0], 0.0)

    # 3. edge fetches to the relay tier
    used = w > 0
    used[:, 0] = True  # the top rendition is always fetched
    if edge.coalesce:
        F_edge = np.where(active, used.sum(axis=1) * (1 + P) / S, 0.0)
        B_edge = np.where(active, used @ per_listener, 0.0)
    else:
        F_edge = (1 - edge.hit_ratio) * q * r * R
        B_edge = (1 - edge.hit_ratio) * q * r * E

    # 4. relay tier, 5. origin tier
    relay, origin = cfg.relay, cfg.origin
    F_rel, D_rel = float(F_edge.sum()), float(B_edge.sum())
    s_rel, r_rel = _tier(relay, F_rel, D_rel)
    if relay.coalesce:
        used_any = used[active].any(axis=0)  # all False without listeners
        F_org = relay.nodes * int(used_any.sum()) * (1 + P) / S
        D_org = relay.nodes * float(per_listener[used_any].sum())
    else:
        F_org = (1 - relay.hit_ratio) * r_rel * F_rel
        D_org = (1 - relay.hit_ratio) * r_rel * D_rel
    s_org, _ = _tier(origin, F_org, D_org)

    # 6. on time
    u_rel = s_org if relay.coalesce else relay.hit_ratio + (1 - relay.hit_ratio) * s_org
    if edge.coalesce:
        u_edge = s_rel * u_rel
    else:
        u_edge = edge.hit_ratio + (1 - edge.hit_ratio) * s_rel * u_rel
    on_time = s_sfu * s * u_edge

    # 7. per tier
    edge_demand = float(E.sum())
    edge_served = float((s * E).sum())
    demand = {"sfu": sfu_kbps, "origin": D_org, "relay": D_rel, "edge": edge_demand}
    served = {
        "sfu": sfu_kbps * s_sfu,
        "origin": D_org * s_org,
        "relay": D_rel * s_rel,
        "edge": edge_served,
    }
    return Interval(
        on_time=on_time,
        degraded=degraded,
        due=float(L.sum()),
        delivered=float((L * on_time).sum()),
        demand_gbps={k: v / KBPS_PER_GBPS for k, v in demand.items()},
        served_gbps={k: v / KBPS_PER_GBPS for k, v in served.items()},
        capacity_gbps={
            "sfu": cfg.sfu_mbps / 1000,
            "origin": origin.nodes * origin.egress_gbps,
            "relay": relay.nodes * relay.egress_gbps,
            "edge": float(avail.sum()) / KBPS_PER_GBPS,
        },
        requests_per_s={"sfu": 0.0, "origin": F_org, "relay": F_rel, "edge": float(R.sum())},
        served_share={
            "sfu": s_sfu,
            "origin": s_org,
            "relay": s_rel,
            "edge": edge_served / edge_demand if edge_demand > 0 else 1.0,
        },
    )


def stall_segments(cfg: FanoutConfig) -> int:
    """``C``: consecutive late segments after which a listener reconnects (at least 1)."""
    return max(1, math.ceil(cfg.stall_reconnect_s / cfg.segment_s - 1e-9))


def stall_step(
    h: np.ndarray, listeners: np.ndarray, on_time: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Advance the late-segment counts ``h`` (nodes × C, in place) by one interval.

    ``h[i, c]``: listeners of node ``i`` whose last ``c`` segments were all late. Returns, per node,
    the listeners who reached ``C`` late segments in a row (int64): they are dropped.

    (a) The row sum is brought to ``listeners``: newcomers enter at ``c = 0`` (nothing late yet),
    departures leave every count in proportion. (b) A share ``on_time`` of the row returns to
    ``c = 0``, ``h[i, c] · (1 − on_time)`` moves to ``c + 1``. (c) The mass ``x`` reaching ``C`` is
    rounded stochastically, ``k = ⌊x⌋ + [u < x − ⌊x⌋]`` with ``u`` one uniform per node, clipped to
    ``[0, ⌊listeners⌋]``; the row then holds ``listeners − k``: the rounding difference ``x − k``
    is settled at ``c = 0`` (and, if ``c = 0`` holds too little, by scaling the other counts).
    """
    if not (isinstance(h, np.ndarray) and h.dtype == np.float64 and h.ndim == 2 and h.shape[1]):
        raise ValueError("h: a float64 array of nodes × C (C >= 1)")
    n, C = h.shape
    L = _as_nodes("listeners", listeners, n)
    p = np.asarray(on_time, dtype=np.float64)
    if p.shape != (n,) or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"on_time: one probability in [0, 1] per node ({n})")
    uu = np.asarray(u, dtype=np.float64)
    if uu.shape != (n,):
        raise ValueError(f"u: one uniform per node ({n}), shape {uu.shape}")

    # (a) to the current count
    total = h.sum(axis=1)
    h[:, 0] += np.maximum(0.0, L - total)
    less = L < total
    h[less] *= (L[less] / total[less])[:, None]
    # (b) one interval
    total = h.sum(axis=1)
    x = h[:, C - 1] * (1 - p)
    h[:, 1:] = h[:, :-1] * (1 - p)[:, None]
    h[:, 0] = total * p
    # (c) who reaches C
    whole = np.floor(x)
    k = whole + (uu < x - whole)
    k = np.clip(k, 0.0, np.floor(L)).astype(np.int64)
    keep = np.maximum(0.0, L - k)
    rest = h[:, 1:].sum(axis=1)
    h[:, 0] = keep - rest
    over = h[:, 0] < 0  # rounded up past what c = 0 holds: take it from the other counts
    if over.any():
        h[over, 0] = 0.0
        h[over, 1:] *= (keep[over] / rest[over])[:, None]
    return k
