"""The fan-out kernel on tiny cases worked out by hand, against a per-node twin, and its stalls.

``sim.kernels.fanout.interval`` is checked first on cases whose answer is a number written in the
test (1,000 listeners at 96 kb/s ask 0.096 Gb/s; a tier at half its demand serves half), then for
equality with ``_twin``, a plain-Python evaluation of the same model one node at a time, on
seeded random inputs across every regime (floods, degradation, coalescing on and off).
``stall_step`` is checked on hand-worked counts and, for its stochastic rounding, against the
mean it must have (4 binomial standard errors).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from sim.config import FanoutConfig
from sim.kernels.fanout import Interval, interval, stall_segments, stall_step

TIERS = ("sfu", "origin", "relay", "edge")


def make(
    *,
    edge: dict[str, Any] | None = None,
    relay: dict[str, Any] | None = None,
    origin: dict[str, Any] | None = None,
    **kw: Any,
) -> FanoutConfig:
    """The default fan-out with ``P = 0`` unless given, tiers overridden by dicts; valid."""
    base = FanoutConfig(enabled=True, playlist_polls_per_segment=0.0)
    cfg = replace(
        base,
        edge=replace(base.edge, **(edge or {})),
        relay=replace(base.relay, **(relay or {})),
        origin=replace(base.origin, **(origin or {})),
        **kw,
    )
    assert not list(cfg.problems())
    return cfg


def run(cfg: FanoutConfig, listeners: list[float], **kw: Any) -> Interval:
    with np.errstate(all="raise"):
        return interval(cfg, np.array(listeners, dtype=np.float64), **kw)


def approx(x: Any) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------- below capacity


def test_below_capacity_everything_is_on_time() -> None:
    iv = run(make(), [1000.0])
    assert iv.demand_gbps["edge"] == approx(0.096)
    assert iv.requests_per_s["edge"] == approx(1000 / 3)
    assert iv.on_time.tolist() == [1.0]
    assert iv.degraded.tolist() == [0.0]
    assert iv.due == 1000.0
    assert iv.delivered == iv.due
    assert iv.served_gbps["edge"] == approx(0.096)
    assert iv.capacity_gbps == {"sfu": 0.1, "origin": 20.0, "relay": 80.0, "edge": 1.0}
    assert iv.demand_gbps["sfu"] == approx(3 * 32 / 1e6)
    assert iv.requests_per_s["sfu"] == 0.0
    assert iv.served_share == {t: 1.0 for t in TIERS}


def test_playlist_polls_add_requests_and_bytes() -> None:
    iv = run(make(playlist_polls_per_segment=1.0, playlist_bytes=1500.0), [1000.0])
    assert iv.demand_gbps["edge"] == approx(0.096 + 1000 * 12 / 3 / 1e6)
    assert iv.requests_per_s["edge"] == approx(1000 * 2 / 3)
    assert iv.on_time.tolist() == [1.0]


# --------------------------------------------------------------------------- edge capacity


def test_edge_egress_at_half_the_demand_serves_half() -> None:
    full = run(make(edge={"egress_gbps": 0.096}), [1000.0])
    half = run(make(edge={"egress_gbps": 0.048}), [1000.0])
    assert full.on_time[0] == approx(1.0)
    assert half.on_time[0] == approx(0.5)
    assert half.delivered / half.due == approx(0.5) and full.delivered / full.due == approx(1.0)
    assert half.demand_gbps["edge"] == approx(0.096)
    assert half.served_gbps["edge"] == approx(0.048)
    assert half.served_share["edge"] == approx(0.5)
    assert half.capacity_gbps["edge"] == 0.048


def test_edge_requests_at_half_the_demand_serve_half() -> None:
    iv = run(make(playlist_polls_per_segment=1.0, edge={"requests_per_s": 1000 / 3}), [1000.0])
    assert iv.on_time[0] == approx(0.5)


def test_edge_nodes_are_independent() -> None:
    iv = run(make(edge={"egress_gbps": 0.048}), [1000.0, 100.0, 0.0])
    assert iv.on_time == approx(np.array([0.5, 1.0, 1.0]))
    assert iv.due == 1100.0
    assert iv.delivered == approx(600.0)
    assert iv.capacity_gbps["edge"] == approx(3 * 0.048)
    # egress-weighted: 0.048 + 0.0096 served of 0.1056 asked
    assert iv.served_share["edge"] == approx((0.048 + 0.0096) / 0.1056)


@pytest.mark.parametrize("degrade", [False, True])
def test_more_egress_never_lowers_delivered(degrade: bool) -> None:
    listeners = [0.0, 10.0, 500.0, 3000.0, 0.5]
    delivered, on_time = [], []
    for g in np.linspace(0.0, 0.4, 81):
        cfg = make(
            degrade=degrade,
            ladder_kbps=[64.0, 32.0],
            playlist_polls_per_segment=1.0,
            edge={"egress_gbps": max(float(g), 1e-6)},
        )
        iv = run(cfg, listeners)
        delivered.append(iv.delivered)
        on_time.append(iv.on_time)
    assert np.all(np.diff(delivered) >= -1e-9)
    assert np.all(np.diff(np.array(on_time), axis=0) >= -1e-12)
    assert delivered[0] < delivered[-1] == approx(sum(listeners))


# --------------------------------------------------------------------------- upstream tiers


@pytest.mark.parametrize("P", [0.0, 1.0, 2.5])
def test_coalescing_edges_fetch_once_per_rendition(P: float) -> None:
    cfg = make(playlist_polls_per_segment=P)
    small = run(cfg, [1000.0, 0.0, 5.0])
    large = run(cfg, [90000.0, 0.0, 0.25])
    for iv in (small, large):
        assert iv.requests_per_s["relay"] == approx(2 * (1 + P) / 3)
        assert iv.demand_gbps["relay"] == approx(2 * (96 * 3 + P * 12) / 3 / 1e6)
        # coalescing relays: each of the 8 fetches the one rendition
        assert iv.requests_per_s["origin"] == approx(8 * (1 + P) / 3)
        assert iv.demand_gbps["origin"] == approx(8 * (96 * 3 + P * 12) / 3 / 1e6)


def test_without_coalescing_the_misses_go_upstream() -> None:
    cfg = make(
        playlist_polls_per_segment=1.0,
        edge={"coalesce": False, "hit_ratio": 0.9},
        relay={"coalesce": False, "hit_ratio": 0.95},
    )
    iv = run(cfg, [1000.0, 0.0, 5.0])
    assert iv.requests_per_s["relay"] == approx(0.1 * iv.requests_per_s["edge"])
    assert iv.demand_gbps["relay"] == approx(0.1 * iv.demand_gbps["edge"])
    assert iv.requests_per_s["origin"] == approx(0.05 * iv.requests_per_s["relay"])
    assert iv.on_time == approx(np.ones(3))


def test_relay_saturation_propagates_to_coalescing_edges() -> None:
    listeners = [1000.0, 200.0]
    demand = 2 * 96 / 1e6  # Gb/s: one 96 kb/s fill per node
    assert run(make(), listeners).demand_gbps["relay"] == approx(demand)
    iv = run(make(relay={"egress_gbps": demand / 2 / 8}), listeners)
    assert iv.on_time == approx(np.array([0.5, 0.5]))
    assert iv.served_share["relay"] == approx(0.5)
    assert iv.delivered == approx(600.0)
    # the same through the relays' request rate: 2 fills per 3 s
    iv = run(make(relay={"requests_per_s": 2 / 3 / 2 / 8}), listeners)
    assert iv.on_time == approx(np.array([0.5, 0.5]))


def test_relay_saturation_behind_a_cache_hits_only_the_misses() -> None:
    listeners = [1000.0, 200.0]
    edge = {"coalesce": False, "hit_ratio": 0.9}
    demand = 0.1 * 1200 * 96 / 1e6
    assert run(make(edge=edge), listeners).demand_gbps["relay"] == approx(demand)
    iv = run(make(edge=edge, relay={"egress_gbps": demand / 2 / 8}), listeners)
    assert iv.on_time == approx(np.full(2, 0.9 + 0.1 * 0.5))


def test_origin_saturation_propagates() -> None:
    demand = 8 * 96 / 1e6  # every coalescing relay fetches the rendition
    iv = run(make(origin={"egress_gbps": demand / 2 / 2}), [1000.0, 200.0])
    assert iv.on_time == approx(np.full(2, 0.5))
    assert iv.served_share["origin"] == approx(0.5)
    relay = {"coalesce": False, "hit_ratio": 0.95}
    iv = run(make(relay=relay, origin={"egress_gbps": 0.05 * 2 * 96 / 1e6 / 2 / 2}), [1000.0, 2.0])
    assert iv.on_time == approx(np.full(2, 0.95 + 0.05 * 0.5))


def test_sfu_limits_scale_every_listener() -> None:
    iv = run(make(speakers=13, sfu_streams=10), [1000.0, 3.0])
    assert iv.on_time == approx(np.full(2, 10 / 13))
    assert iv.served_share["sfu"] == approx(10 / 13)
    assert iv.served_gbps["sfu"] == approx(13 * 32 / 1e6 * 10 / 13)
    iv = run(make(sfu_mbps=0.048), [1000.0])  # 3 x 32 kb/s into 48 kb/s
    assert iv.on_time[0] == approx(0.5)
    assert iv.served_gbps["sfu"] == approx(iv.capacity_gbps["sfu"])


# --------------------------------------------------------------------------- volumetric floods


def test_ingress_flood_loses_the_requests_it_overfills() -> None:
    cfg = make(edge={"ingress_gbps": 1.0})
    iv = run(cfg, [1000.0, 1000.0], flood_gbps=np.array([0.0, 2.0]), target="ingress")
    assert iv.on_time == approx(np.array([1.0, 0.5]))
    assert iv.capacity_gbps["edge"] == 2.0  # egress untouched
    iv = run(cfg, [1000.0], flood_gbps=2.0, target="ingress")
    assert iv.on_time[0] == approx(0.5)
    assert iv.requests_per_s["edge"] == approx(1000 / 3)  # offered, before the loss


def test_egress_flood_takes_egress() -> None:
    cfg = make(edge={"egress_gbps": 1.0})
    iv = run(cfg, [1000.0], flood_gbps=1.0 - 0.048, target="egress")
    assert iv.on_time[0] == approx(0.5)
    assert iv.capacity_gbps["edge"] == approx(0.048)
    iv = run(cfg, [1000.0, 0.0], flood_gbps=5.0, target="egress")
    assert iv.on_time.tolist() == [0.0, 0.0]  # nothing left, not even for a first listener
    assert iv.capacity_gbps["edge"] == 0.0


@pytest.mark.parametrize("target", ["ingress", "egress"])
def test_zero_flood_changes_nothing(target: str) -> None:
    cfg = make(edge={"egress_gbps": 0.05})
    a = run(cfg, [1000.0, 3.0])
    b = run(cfg, [1000.0, 3.0], flood_gbps=np.zeros(2), target=target)
    assert a.on_time.tolist() == b.on_time.tolist()
    assert (a.demand_gbps, a.served_gbps, a.capacity_gbps) == (
        b.demand_gbps,
        b.served_gbps,
        b.capacity_gbps,
    )


# --------------------------------------------------------------------------- degradation


@pytest.mark.parametrize("P", [0.0, 1.0])
def test_degrading_fits_the_egress_exactly(P: float) -> None:
    cfg = make(
        degrade=True,
        ladder_kbps=[64.0, 32.0],
        playlist_polls_per_segment=P,
        edge={"egress_gbps": 1000 * (80 * 3 + P * 12) / 3 / 1e6},  # a mean of 80 kb/s
    )
    iv = run(cfg, [1000.0])
    assert iv.on_time[0] == approx(1.0)
    assert iv.degraded[0] == approx((96 - 80) / (96 - 64))
    assert iv.served_gbps["edge"] == approx(iv.capacity_gbps["edge"])
    assert iv.demand_gbps["edge"] == approx(iv.capacity_gbps["edge"])  # at the rungs chosen
    # 96 and 64 in use: two fills per node and relay
    assert iv.requests_per_s["relay"] == approx(2 * (1 + P) / 3)
    assert iv.demand_gbps["relay"] == approx(((96 + 64) * 3 + 2 * P * 12) / 3 / 1e6)
    assert iv.requests_per_s["origin"] == approx(8 * 2 * (1 + P) / 3)


def test_degrading_between_lower_rungs_keeps_the_top_rendition_fetched() -> None:
    cfg = make(degrade=True, ladder_kbps=[64.0, 32.0], edge={"egress_gbps": 1000 * 48 / 1e6})
    iv = run(cfg, [1000.0])
    assert iv.on_time[0] == approx(1.0)
    assert iv.degraded[0] == 1.0  # half on 64, half on 32
    assert iv.requests_per_s["relay"] == approx(3 / 3)  # 96, 64 and 32
    assert iv.demand_gbps["relay"] == approx((96 + 64 + 32) / 1e6)


@pytest.mark.parametrize(("P", "share"), [(0.0, 16 / 32), (1.0, (16 * 3 + 12) / (32 * 3 + 12))])
def test_below_the_lowest_rung_everyone_degrades_and_stalls(P: float, share: float) -> None:
    cfg = make(
        degrade=True,
        ladder_kbps=[64.0, 32.0],
        playlist_polls_per_segment=P,
        edge={"egress_gbps": 1000 * (16 * 3 + P * 12) / 3 / 1e6},
    )
    iv = run(cfg, [1000.0, 0.0])
    assert iv.on_time[0] == approx(share)
    assert iv.on_time[1] == 1.0
    assert iv.degraded.tolist() == [1.0, 0.0]
    assert iv.demand_gbps["edge"] == approx(1000 * (32 * 3 + P * 12) / 3 / 1e6)


def test_without_degrade_the_ladder_is_unused() -> None:
    cfg = make(ladder_kbps=[64.0, 32.0], edge={"egress_gbps": 0.048})
    iv = run(cfg, [1000.0])
    assert iv.on_time[0] == approx(0.5)
    assert iv.degraded[0] == 0.0


# --------------------------------------------------------------------------- degenerate input


@pytest.mark.parametrize("listeners", [[], [0.0, 0.0, 0.0]])
@pytest.mark.parametrize("coalesce", [False, True])
def test_no_listeners_no_warnings(listeners: list[float], coalesce: bool) -> None:
    cfg = make(
        degrade=True,
        ladder_kbps=[64.0],
        edge={"coalesce": coalesce},
        relay={"coalesce": coalesce},
    )
    iv = run(cfg, listeners, flood_gbps=3.0)
    assert iv.due == 0.0 and iv.delivered == 0.0
    assert iv.on_time.shape == iv.degraded.shape == (len(listeners),)
    assert iv.served_share == {"sfu": 1.0, "origin": 1.0, "relay": 1.0, "edge": 1.0}
    for tier in ("origin", "relay", "edge"):
        assert iv.demand_gbps[tier] == 0.0 and iv.requests_per_s[tier] == 0.0
    assert np.all(iv.degraded == 0.0)


def test_bad_input_is_refused() -> None:
    cfg = make()
    with pytest.raises(ValueError, match="listeners"):
        interval(cfg, np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="flood_gbps"):
        interval(cfg, np.array([1.0, 2.0]), np.zeros(3))
    with pytest.raises(ValueError, match="target"):
        interval(cfg, np.array([1.0]), target="both")


# --------------------------------------------------------------------------- the twin


def _twin(
    cfg: FanoutConfig, listeners: list[float], flood: list[float], target: str
) -> dict[str, Any]:
    """The model one node at a time, in plain Python, from the module docstring."""
    S, P, b = cfg.segment_s, cfg.playlist_polls_per_segment, cfg.bitrate_kbps
    pk = cfg.playlist_bytes * 8 / 1000
    rungs = [b, *cfg.ladder_kbps]

    def fill(rate: float) -> float:
        return (rate * S + P * pk) / S

    def share(cap: float, need: float) -> float:
        return min(1.0, cap / need) if need > 0 else 1.0

    s_sfu = min(
        1.0,
        cfg.sfu_streams / cfg.speakers,
        cfg.sfu_mbps * 1000 / (cfg.speakers * cfg.speaker_kbps),
    )
    ed = cfg.edge
    nodes = []
    fetches, fetch_kbps, in_use = 0.0, 0.0, {b}
    for L, fl in zip(listeners, flood, strict=True):
        R = L * (1 + P) / S
        if target == "ingress":
            q, A = share(ed.ingress_gbps, fl), ed.egress_gbps * 1e6
        else:
            q, A = 1.0, max(0.0, ed.egress_gbps - fl) * 1e6
        r = share(ed.requests_per_s, q * R)
        mix = {b: 1.0}
        E = L * fill(b)
        e = share(A, q * r * E) if L > 0 else (1.0 if A > 0 else 0.0)
        if cfg.degrade and e < 1 and L > 0:
            m = A / (q * r * L) - P * pk / S
            if m >= rungs[-1]:
                hi, lo = next((h, lo) for h, lo in itertools.pairwise(rungs) if h > m >= lo)
                mix = {hi: (m - lo) / (hi - lo), lo: (hi - m) / (hi - lo)}
                e = 1.0
            else:
                mix = {rungs[-1]: 1.0}
                e = A / (q * r * L * fill(rungs[-1]))
            E = L * sum(w * fill(k) for k, w in mix.items())
        used = {b} | {k for k, w in mix.items() if w > 0}
        if L > 0:
            in_use |= used
            if ed.coalesce:
                fetches += len(used) * (1 + P) / S
                fetch_kbps += sum(fill(k) for k in used)
        if not ed.coalesce:
            fetches += (1 - ed.hit_ratio) * q * r * R
            fetch_kbps += (1 - ed.hit_ratio) * q * r * E
        nodes.append((L, q * r * e, E, 1.0 - mix.get(b, 0.0) if L > 0 else 0.0))
    rl, og = cfg.relay, cfg.origin
    r_rel = share(rl.nodes * rl.requests_per_s, fetches)
    s_rel = r_rel * share(rl.nodes * rl.egress_gbps * 1e6, r_rel * fetch_kbps)
    if rl.coalesce:
        k = len(in_use) if any(L > 0 for L in listeners) else 0
        up = rl.nodes * k * (1 + P) / S
        up_kbps = rl.nodes * sum(fill(x) for x in in_use) if k else 0.0
    else:
        up = (1 - rl.hit_ratio) * r_rel * fetches
        up_kbps = (1 - rl.hit_ratio) * r_rel * fetch_kbps
    r_org = share(og.nodes * og.requests_per_s, up)
    s_org = r_org * share(og.nodes * og.egress_gbps * 1e6, r_org * up_kbps)
    u_rel = s_org if rl.coalesce else rl.hit_ratio + (1 - rl.hit_ratio) * s_org
    u = s_rel * u_rel if ed.coalesce else ed.hit_ratio + (1 - ed.hit_ratio) * s_rel * u_rel
    on_time = [s_sfu * s * u for _, s, _, _ in nodes]
    return {
        "on_time": on_time,
        "degraded": [d for *_, d in nodes],
        "delivered": sum(L * p for (L, *_), p in zip(nodes, on_time, strict=True)),
        "edge_served": sum(s * E for _, s, E, _ in nodes) / 1e6,
        "edge_demand": sum(E for _, _, E, _ in nodes) / 1e6,
        "relay": (fetches, fetch_kbps / 1e6, s_rel),
        "origin": (up, up_kbps / 1e6, s_org),
    }


def test_equals_the_per_node_twin_on_random_inputs() -> None:
    rng = np.random.default_rng(20240611)
    for _ in range(300):
        n = int(rng.integers(0, 8))
        ladder = sorted(rng.choice([80.0, 64.0, 48.0, 32.0, 24.0], int(rng.integers(0, 4)), False))
        ladder = ladder[::-1]
        cfg = make(
            speakers=int(rng.integers(1, 14)),
            sfu_streams=int(rng.integers(1, 16)),
            sfu_mbps=float(rng.uniform(0.05, 0.6)),
            ladder_kbps=ladder,
            degrade=bool(ladder) and bool(rng.random() < 0.7),
            playlist_polls_per_segment=float(rng.choice([0.0, 1.0, 2.0])),
            edge={
                "egress_gbps": float(rng.uniform(0.01, 0.4)),
                "ingress_gbps": float(rng.uniform(0.5, 2.0)),
                "requests_per_s": float(rng.uniform(100, 2000)),
                "hit_ratio": float(rng.uniform(0, 1)),
                "coalesce": bool(rng.random() < 0.5),
            },
            relay={
                "nodes": int(rng.integers(1, 4)),
                "egress_gbps": float(rng.uniform(1e-4, 0.05)),
                "requests_per_s": float(rng.uniform(0.5, 50)),
                "hit_ratio": float(rng.uniform(0, 1)),
                "coalesce": bool(rng.random() < 0.5),
            },
            origin={
                "egress_gbps": float(rng.uniform(1e-5, 0.01)),
                "requests_per_s": float(rng.uniform(0.5, 20)),
            },
        )
        listeners = np.where(rng.random(n) < 0.2, 0.0, rng.exponential(1500, n))
        flood = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, 3, n))
        target = str(rng.choice(["ingress", "egress"]))
        iv = run(cfg, listeners.tolist(), flood_gbps=flood, target=target)
        tw = _twin(cfg, listeners.tolist(), flood.tolist(), target)
        np.testing.assert_allclose(iv.on_time, tw["on_time"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(iv.degraded, tw["degraded"], rtol=1e-10, atol=1e-12)
        assert iv.delivered == pytest.approx(tw["delivered"], rel=1e-10, abs=1e-9)
        assert iv.served_gbps["edge"] == pytest.approx(tw["edge_served"], rel=1e-10, abs=1e-15)
        assert iv.demand_gbps["edge"] == pytest.approx(tw["edge_demand"], rel=1e-10, abs=1e-15)
        for tier in ("relay", "origin"):
            got = (iv.requests_per_s[tier], iv.demand_gbps[tier], iv.served_share[tier])
            assert got == pytest.approx(tw[tier], rel=1e-10, abs=1e-15)
        assert np.all((iv.on_time >= 0) & (iv.on_time <= 1))
        for tier in TIERS:
            assert iv.served_gbps[tier] <= iv.capacity_gbps[tier] * (1 + 1e-12)
            assert iv.served_gbps[tier] <= iv.demand_gbps[tier] * (1 + 1e-12)


# --------------------------------------------------------------------------- stalls


def test_stall_segments_rounds_up_to_whole_segments() -> None:
    assert stall_segments(FanoutConfig(stall_reconnect_s=9.0, segment_s=3.0)) == 3
    assert stall_segments(FanoutConfig(stall_reconnect_s=10.0, segment_s=3.0)) == 4
    assert stall_segments(FanoutConfig(stall_reconnect_s=0.9, segment_s=0.3)) == 3
    assert stall_segments(FanoutConfig(stall_reconnect_s=1.0, segment_s=3.0)) == 1


def test_on_time_segments_collapse_the_counts() -> None:
    h = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 4.0]])
    k = stall_step(h, np.array([6.0, 4.0]), np.ones(2), np.full(2, 0.5))
    assert k.dtype == np.int64 and k.tolist() == [0, 0]
    assert h.tolist() == [[6.0, 0.0, 0.0], [4.0, 0.0, 0.0]]


def test_a_cohort_always_late_is_dropped_at_the_third_segment() -> None:
    h = np.zeros((1, 3))
    L, late, u = np.array([100.0]), np.zeros(1), np.full(1, 0.5)
    assert stall_step(h, L, late, u).tolist() == [0]
    assert h.tolist() == [[0.0, 100.0, 0.0]]
    assert stall_step(h, L, late, u).tolist() == [0]
    assert h.tolist() == [[0.0, 0.0, 100.0]]
    assert stall_step(h, L, late, u).tolist() == [100]
    assert h.tolist() == [[0.0, 0.0, 0.0]]


def test_newcomers_start_at_zero_and_departures_leave_every_count() -> None:
    h = np.array([[0.0, 5.0, 0.0]])
    assert stall_step(h, np.array([8.0]), np.array([0.5]), np.zeros(1)).tolist() == [0]
    assert h.tolist() == [[4.0, 1.5, 2.5]]  # 3 newcomers at c = 0, then half late
    h = np.array([[4.0, 4.0, 0.0]])
    assert stall_step(h, np.array([4.0]), np.zeros(1), np.zeros(1)).tolist() == [0]
    assert h.tolist() == [[0.0, 2.0, 2.0]]  # halved in every count, then late


def test_rounding_up_past_count_zero_comes_out_of_the_others() -> None:
    h = np.array([[0.0, 1.0, 2.6]])  # 2.6 reach C, rounded up to 3: 0.4 more than c = 0 holds
    k = stall_step(h, np.array([3.6]), np.zeros(1), np.zeros(1))
    assert k.tolist() == [3]
    assert h[0] == approx(np.array([0.0, 0.0, 0.6]))


def test_drops_never_exceed_the_whole_listeners() -> None:
    h = np.array([[0.0, 0.0, 2.6]])
    assert stall_step(h, np.array([2.6]), np.zeros(1), np.zeros(1)).tolist() == [2]
    assert h.sum() == approx(0.6) and np.all(h >= 0)


def test_row_sums_are_the_listeners_less_the_dropped() -> None:
    rng = np.random.default_rng(3)
    n, C = 200, 4
    h = np.zeros((n, C))
    for _ in range(40):
        L = np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0, 50, n))
        p = np.where(rng.random(n) < 0.3, rng.uniform(0, 0.2, n), rng.uniform(0, 1, n))
        with np.errstate(all="raise"):
            k = stall_step(h, L, p, rng.random(n))
        assert np.all((k >= 0) & (k <= np.floor(L)))
        np.testing.assert_allclose(h.sum(axis=1), L - k, atol=1e-9)
        assert np.all(h >= -1e-12)


def test_stochastic_rounding_has_the_mean_of_the_mass() -> None:
    n = 20_000
    h = np.zeros((n, 3))
    h[:, 2] = 5.2
    k = stall_step(h, np.full(n, 5.2), np.full(n, 0.5), np.random.default_rng(11).random(n))
    x, f = 2.6, 0.6  # mass reaching C per node, and its fraction
    assert set(np.unique(k).tolist()) == {2, 3}
    assert abs(k.mean() - x) < 4 * math.sqrt(f * (1 - f) / n)
    np.testing.assert_allclose(h.sum(axis=1), 5.2 - k)


def test_stall_step_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match="h"):
        stall_step(np.zeros((2, 0)), np.zeros(2), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="on_time"):
        stall_step(np.zeros((2, 3)), np.zeros(2), np.full(2, 1.5), np.zeros(2))
