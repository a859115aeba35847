"""The audio fan-out, the presence channel and attack traffic, through the engines.

The tier arithmetic itself is checked exactly in ``tests/test_fanout_kernel.py``; here the
components: the delivered ratio is 1 below capacity and falls when capacity is cut, more egress
never lowers it, stalled listeners reconnect, the time series add up to the summary, broadcast
presence lags where aggregate counts do not, and attack traffic is counted apart from the organic
one and lowered by mitigation. The reference engine agrees with the batched one on
``fanout_saturation`` at reduced scale (seeded replications, Welch tolerances as in
``tests/test_reference.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.config import Config
from sim.engine import RunResult, simulate
from tests.conftest import typed_config
from tests.test_reference import agreement, format_rows

SATURATION = ["experiment=fanout_saturation"]
SMALL = [  # the surge at a tenth: ~1,400 arrivals, ~900 listeners on 2 nodes at the peak
    "scenario.expected_arrivals=1400",
    "platform.nodes=2",
]


def run(overrides: list[str], seed: int = 0) -> RunResult:
    return simulate(dataclasses.replace(typed_config(overrides), seed=seed))


def test_fanout_off_gives_nan_and_changes_nothing_else() -> None:
    off = run(SMALL)
    on = run([*SMALL, "platform.fanout.enabled=true"])
    assert math.isnan(off.summary["audio_delivered_ratio"])
    assert "audio_due" not in off.timeseries
    # below capacity nothing stalls and the join path is the same, number for number
    assert on.summary["audio_delivered_ratio"] == 1.0
    assert on.summary["stall_s_per_listener_min"] == 0.0
    for key in ("arrivals", "attempts", "joined", "peak_concurrent", "rejected"):
        assert on.summary[key] == off.summary[key], key


def test_the_delivered_ratio_falls_when_edge_egress_is_halved() -> None:
    enough = run([*SATURATION, "platform.fanout.edge.egress_gbps=0.065"])  # the peak fits
    assert enough.summary["audio_delivered_ratio"] == 1.0
    assert enough.summary["egress_demand_peak"]["edge"] <= 1.0
    half = run([*SATURATION, "platform.fanout.edge.egress_gbps=0.0325"])
    quarter = run([*SATURATION, "platform.fanout.edge.egress_gbps=0.01625"])
    assert 0 < quarter.summary["audio_delivered_ratio"] < half.summary["audio_delivered_ratio"]
    assert half.summary["audio_delivered_ratio"] < 1.0
    quarter = run(SATURATION)  # 0.03 Gb/s per node, the experiment as shipped
    s, ts = quarter.summary, quarter.timeseries
    assert s["egress_utilisation_peak"]["edge"] == pytest.approx(1.0)
    assert s["egress_demand_peak"]["edge"] > 1.0
    assert s["stall_s_per_listener_min"] > 0
    # the time series add up to the summary
    assert ts["audio_on_time"].sum() / ts["audio_due"].sum() == pytest.approx(
        s["audio_delivered_ratio"]
    )
    assert ts["stall_s"].sum() / (ts["listen_s"].sum() / 60) == pytest.approx(
        s["stall_s_per_listener_min"]
    )
    # stalled listeners were dropped and came back through the join path
    assert s["stall_dropped"] == ts["audio_dropped"].sum() > 0
    assert s["reconnects"] > 0 and ts["dropped"].sum() == s["stall_dropped"]


@pytest.mark.parametrize("seed", [0, 1])
def test_more_edge_egress_never_lowers_the_delivered_ratio(seed: int) -> None:
    grid = (0.015, 0.02, 0.03, 0.045, 0.07, 0.1)
    ratios = [
        run([*SATURATION, f"platform.fanout.edge.egress_gbps={g}"], seed).summary[
            "audio_delivered_ratio"
        ]
        for g in grid
    ]
    assert all(a <= b for a, b in itertools.pairwise(ratios)), ratios
    assert ratios[0] < 0.7 and ratios[-1] == 1.0


def test_stall_reconnect_share_zero_sends_the_stalled_away() -> None:
    s = run([*SATURATION, "platform.fanout.stall_reconnect_share=0"]).summary
    assert s["stall_dropped"] > 0 and s["reconnects"] == 0


def test_degrading_down_the_ladder_keeps_the_audio_on_time() -> None:
    plain = run(SATURATION).summary
    ladder = run(
        [*SATURATION, "platform.fanout.ladder_kbps=[64,32]", "platform.fanout.degrade=true"]
    ).summary
    assert ladder["audio_delivered_ratio"] > plain["audio_delivered_ratio"]
    assert ladder["audio_degraded_share"] > 0 and plain["audio_degraded_share"] == 0


# --------------------------------------------------------------------------- presence

BROADCAST = ["experiment=presence_broadcast"]


def test_broadcast_presence_lags_and_delays_joins_where_aggregate_counts_do_not() -> None:
    b = run(BROADCAST)
    a = run([*BROADCAST, "platform.presence.mode=aggregate"])
    sb, sa = b.summary, a.summary
    assert sb["presence_lag_s"] > 5.0 > sa["presence_lag_s"]
    assert sb["rejected"]["presence"] > 0 and sa["rejected"]["presence"] == 0
    assert sb["presence_saturated_s"] > 0 and sa["presence_saturated_s"] == 0
    assert b.timeseries["presence_lag_s"].max() == sb["presence_lag_s"]
    # the channel's saturation is an event of the run, and so is its recovery
    kinds = [(e["kind"], e["detail"].split(":")[0]) for e in b.events]
    assert kinds[:2] == [("presence", "saturated"), ("presence", "caught up")], b.events
    assert not a.events
    # joins waited for the channel: the room fills later
    assert sb["join_latency_p99_s"] > sa["join_latency_p99_s"]


def test_a_saturated_channel_that_drops_connections_sends_listeners_back() -> None:
    s = run([*BROADCAST, "platform.presence.on_saturation=drop_connections"]).summary
    assert s["presence_dropped"] > 0
    assert s["reconnects"] >= s["presence_dropped"] * 0.9  # they come back (a few after the end)
    assert s["rejected"]["presence"] == 0


def test_presence_lag_is_the_fluid_backlog_over_capacity() -> None:
    r = run(BROADCAST)
    ts = r.timeseries
    cap = 5.0e5
    backlog = 0.0
    for joined, listeners, lag in zip(ts["joined"], ts["concurrent"], ts["presence_lag_s"],
                                      strict=True):  # fmt: skip
        backlog = max(0.0, backlog + float(joined) * float(listeners) - cap)
        assert lag == pytest.approx(backlog / cap)


# --------------------------------------------------------------------------- attack traffic

FLOOD = ["attack=join_flood", "attack.detect_delay_s=null"]


def test_a_join_flood_is_counted_apart_from_the_organic_listeners() -> None:
    calm = run(SMALL)
    flood = run([*SMALL, *FLOOD])
    c, f = calm.summary, flood.summary
    assert c["attack_attempts"] == 0
    assert f["arrivals"] == c["arrivals"]  # the same organic listeners (their own stream)
    assert f["organic_attempts"] == f["attempts"]
    # ~2,000/s for ~9.5 min, up to 3 attempts each
    assert 1.0e6 < f["attack_attempts"] < 3 * 1.2e6
    ts = flood.timeseries
    assert ts["attack_attempts"].sum() == f["attack_attempts"]
    assert f["attack_served"] + f["attack_rejected"] + f["attack_filtered"] <= f["attack_attempts"]
    # organic counters hold people only: every organic attempt ends once
    assert f["joined"] + f["abandoned"] <= f["arrivals"] + f["reconnects"]
    # the flood eats admission tokens: real listeners are turned away more often
    assert sum(f["rejected"].values()) > sum(c["rejected"].values())


def test_mitigation_lowers_the_attack_traffic_that_reaches_the_platform() -> None:
    unmitigated = run([*SMALL, *FLOOD]).summary
    mitigated = run([*SMALL, "attack=join_flood", "attack.detect_delay_s=0"]).summary
    assert mitigated["attack_filtered"] > 0 and unmitigated["attack_filtered"] == 0

    def reaching(s: dict[str, Any]) -> int:  # bot attempts past the filter
        return int(s["attack_attempts"] - s["attack_filtered"])

    # 90% filtered from the start: about a tenth of the bots get to admission
    assert reaching(mitigated) < 0.15 * reaching(unmitigated)
    assert unmitigated["attack_served"] > 0
    assert mitigated["joined"] > 1.3 * unmitigated["joined"]  # more real listeners get in
    assert mitigated["rejected"]["filtered"] > 0  # false positives: 1% of real attempts
    events = run([*SMALL, "attack=join_flood"]).events  # detection after 120 s
    assert [(e["t_s"], e["kind"]) for e in events] == [(60.0, "attack"), (180.0, "mitigation")]


def test_a_volumetric_flood_loses_join_attempts_and_audio() -> None:
    over = [*SMALL, "attack=volumetric", "attack.detect_delay_s=null",
            "platform.fanout.enabled=true", "platform.fanout.edge.ingress_gbps=10"]  # fmt: skip
    s = run(over).summary  # 40 Gb/s over 2 nodes: 20 per node, twice the ingress
    assert s["rejected"]["flooded"] > 0
    assert s["audio_delivered_ratio"] < 0.9
    egress = run([*over[:-1], "attack.target=egress"]).summary  # 1 Gb/s of egress per node
    assert egress["rejected"]["flooded"] == 0 and egress["audio_delivered_ratio"] < 0.5


# --------------------------------------------------------------------------- the reference

REDUCED = [*SATURATION, "scenario.expected_arrivals=1500", "platform.nodes=2",
           "platform.fanout.edge.egress_gbps=0.025"]  # fmt: skip


def observables(result: RunResult) -> dict[str, float]:
    s = result.summary
    return {
        "audio_delivered_ratio": s["audio_delivered_ratio"],
        "stall_s_per_listener_min": s["stall_s_per_listener_min"],
        "stall_dropped_per_arrival": s["stall_dropped"] / s["arrivals"],
        "reconnects_per_arrival": s["reconnects"] / s["arrivals"],
        "joined_share": s["joined"] / s["arrivals"],
        "peak_concurrent": float(s["peak_concurrent"]),
        "egress_demand_peak_edge": s["egress_demand_peak"]["edge"],
    }


def replicate(cfg: Config, kind: str, seeds: range) -> dict[str, np.ndarray]:
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        engine = dataclasses.replace(cfg.engine, kind=kind)
        rows.append(observables(simulate(dataclasses.replace(cfg, seed=seed, engine=engine))))
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


@pytest.mark.slow
def test_batched_and_reference_agree_on_fanout_saturation() -> None:
    cfg = typed_config(REDUCED)
    r = 10
    batched = replicate(cfg, "batched", range(r))
    reference = replicate(cfg, "reference", range(10_000, 10_000 + r))
    rows = agreement(batched, reference, 0.001)
    report = format_rows("fanout_saturation", r, rows)
    print(report)
    assert all(row["ok"] for row in rows), report
    assert batched["stall_dropped_per_arrival"].mean() > 0.01  # the stalls matter here
    assert 0.3 < batched["audio_delivered_ratio"].mean() < 0.95


def presence_observables(result: RunResult) -> dict[str, float]:
    s = result.summary
    return {
        "presence_lag_s": s["presence_lag_s"],
        "presence_saturated_s": s["presence_saturated_s"],
        "rejected_presence_share": s["rejected"]["presence"] / s["attempts"],
        "presence_dropped_per_arrival": s["presence_dropped"] / s["arrivals"],
        "joined_share": s["joined"] / s["arrivals"],
        "abandoned_share": s["abandoned"] / s["arrivals"],
        "peak_concurrent": float(s["peak_concurrent"]),
        "join_latency_p99_s": s["join_latency_p99_s"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("saturation", ["delay_joins", "drop_connections"])
def test_batched_and_reference_agree_on_presence_broadcast(saturation: str) -> None:
    """A tenth of the audience on a hundredth of the channel: it saturates either way."""
    cfg = typed_config(
        [*BROADCAST, "scenario.expected_arrivals=1500", "platform.nodes=2",
         "platform.presence.capacity_msgs_per_s=5000",
         f"platform.presence.on_saturation={saturation}"]
    )  # fmt: skip
    r = 10
    runs = {
        kind: [
            presence_observables(
                simulate(
                    dataclasses.replace(
                        cfg, seed=seed, engine=dataclasses.replace(cfg.engine, kind=kind)
                    )
                )
            )
            for seed in seeds
        ]
        for kind, seeds in (("batched", range(r)), ("reference", range(10_000, 10_000 + r)))
    }
    a, b = ({k: np.array([x[k] for x in rows]) for k in rows[0]} for rows in runs.values())
    rows = agreement(a, b, 0.001)
    report = format_rows(f"presence_broadcast ({saturation})", r, rows)
    print(report)
    assert all(row["ok"] for row in rows), report
    delayed = saturation == "delay_joins"
    acted = "rejected_presence_share" if delayed else "presence_dropped_per_arrival"
    assert a[acted].mean() > 0.1 and b[acted].mean() > 0.1


# --------------------------------------------------------------------------- attack vs organic

ATTACKED = ["experiment=attack_vs_organic"]  # a join flood against 150 joins/s
ORGANIC = [*ATTACKED, "attack=none", "admission.rate_per_s=100"]  # no attack, 100 joins/s


def listeners(result: RunResult) -> dict[str, float]:
    s, c = result.summary, result.timeseries["concurrent"]
    return {
        "mean_concurrent_600s": float(c[:600].mean()),
        "peak_concurrent": float(s["peak_concurrent"]),
        "joined_share": s["joined"] / s["arrivals"],
        "abandoned_share": s["abandoned"] / s["arrivals"],
    }


def test_an_attack_and_a_smaller_platform_give_the_same_listener_timeline() -> None:
    r = 8
    attacked = [simulate(dataclasses.replace(typed_config(ATTACKED), seed=s)) for s in range(r)]
    organic = [
        simulate(dataclasses.replace(typed_config(ORGANIC), seed=s)) for s in range(100, 100 + r)
    ]
    a = {k: np.array([listeners(x)[k] for x in attacked]) for k in listeners(attacked[0])}
    b = {k: np.array([listeners(x)[k] for x in organic]) for k in listeners(organic[0])}
    rows = agreement(a, b, 0.001)
    report = format_rows("attack_vs_organic", r, rows)  # "batched": attacked; "reference": organic
    print(report)
    assert all(row["ok"] for row in rows), report
    # what tells them apart: the bots, and the people still trying
    assert all(x.summary["attack_attempts"] > 50_000 for x in attacked)
    assert all(x.summary["attack_attempts"] == 0 for x in organic)
    tts = [np.array([x.summary["time_to_stable_s"] for x in runs]) for runs in (attacked, organic)]
    assert tts[0].min() > tts[1].max()


# --------------------------------------------------------------------------- the figure


def test_the_fanout_figure_draws_the_archives_series(tmp_path: Path) -> None:
    from analysis import audio

    exe = Path(sys.executable).with_name("spacesim")
    sweep = tmp_path / "fanout"
    args = ["-m", *SATURATION, "scenario.expected_arrivals=1500", "platform.nodes=2",
            "platform.fanout.edge.egress_gbps=0.02,0.1", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    done = subprocess.run([str(exe), "run", *args], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "fig.png"
    assert audio.main([str(sweep / "sweep.h5"), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    summary, ts = audio.frames(sweep / "sweep.h5")
    fig = audio.plot(summary, ts)
    top, mid, _ = fig.axes
    for line, (_, one) in zip(top.get_lines(), ts.groupby("run", sort=False), strict=True):
        assert np.array_equal(line.get_ydata(), one["concurrent"].to_numpy())
    shares = [line.get_ydata() for line in mid.get_lines()]
    assert min(shares[0]) < 1.0 and min(shares[1]) == 1.0  # 0.02 Gb/s stalls, 0.1 does not
    assert "Gb/s" in top.get_legend().get_texts()[0].get_text()
    assert audio.main([str(tmp_path / "missing.h5")]) == 2
