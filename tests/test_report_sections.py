"""The report's policy, metastability and audio sections (``sim.report``) on small real archives:
a threshold search over two admission policies, one retry-storm run and one fan-out run short
of edge egress, each made once by the real CLI (in parallel). The figure helpers are checked on
the archives' data through their artists' gids; the reports through their sections, skip reasons
and findings."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from analysis import audio, frames, metastability, plots, policy
from sim.archive import read_summary, read_timeseries
from sim.report import SECTIONS, ReportResult
from tests.conftest import make_archives, make_reports, report_findings

JOBS = {
    "policy": [
        "threshold",
        "experiment=policy_comparison",
        "hydra.sweeper.params.admission='none,token_bucket'",
        "hydra.sweeper.params.client=immediate",
        "hydra.sweeper.lo=2000",
        "hydra.sweeper.hi=50000",
        "hydra.sweeper.budget=4",
        "hydra.sweeper.batch=4",
    ],
    "storm": ["run", "experiment=metastable_retry_storm"],
    "fanout": [
        "run",
        "experiment=fanout_saturation",
        "scenario.expected_arrivals=3000",
        "platform.fanout.edge.egress_gbps=0.006",  # short of the audio: stalls
    ],
}
NEW = {"policy", "metastability", "audio"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_archives(tmp_path_factory.mktemp("sections"), JOBS)


@pytest.fixture(scope="module")
def reports(
    archives: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ReportResult]:
    return make_reports(archives, tmp_path_factory.mktemp("section-reports"))


def _gid(ax: plt.Axes, gid: str) -> matplotlib.lines.Line2D:
    found = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    assert len(found) == 1, [ln.get_gid() for ln in ax.get_lines()]
    return found[0]


def test_sections_are_chosen_for_the_right_archives(reports: dict[str, ReportResult]) -> None:
    pol, storm, fan = reports["policy"], reports["storm"], reports["fanout"]
    assert "policy" in pol.sections and NEW & set(pol.sections) == {"policy"}
    # a grid of policies (strings) is not a capacity curve, but the threshold and sweep
    # sections still draw what applies (the failure curve, the sweep per policy)
    assert pol.sections == ["threshold", "policy", "sweep"], pol.skipped
    assert [p.name for p in pol.figures["threshold"]] == ["failure_curve.png"]
    assert NEW & set(storm.sections) == {"metastability"}
    assert NEW & set(fan.sections) == {"audio"}
    assert [s for s in storm.sections] == ["timeline", "metastability"]  # report order
    assert "NaN in every run" in storm.not_applicable["audio"]
    assert "fan-out was off" in pol.not_applicable["audio"]
    assert "criterion=metastable" in fan.not_applicable["metastability"]
    assert "arrivals" in pol.not_applicable["metastability"]  # the search keeps no time series
    for r in (storm, fan):
        assert "threshold.json" in r.not_applicable["policy"]
        text = r.html.read_text()
        assert 'data-section="policy"' in text and 'data-section="threshold"' in text
    for r in reports.values():
        assert not NEW & set(r.skipped)  # only a failing notebook would put one there
        assert set(r.sections) | set(r.skipped) | set(r.not_applicable) == set(SECTIONS)
        for section in NEW & set(r.sections):
            assert r.findings[section]
            assert r.figures[section] and all(p.is_file() for p in r.figures[section])
            assert all(p.with_suffix(".svg").is_file() for p in r.figures[section])
            assert f'<section id="{section}">' in r.html.read_text()


def test_a_threshold_search_over_one_parameter_has_no_policy_section(tmp_path: Path) -> None:
    doc = {"parameter": "workers", "cells": [{"overrides": ["workers=4"]}, {"overrides": []}]}
    (tmp_path / "threshold.json").write_text(json.dumps(doc))
    from sim.report import _locate, _plan

    supported, skipped = _plan(_locate(tmp_path / "threshold.json"))
    assert "policy" not in supported
    assert skipped["policy"] == "the 2 cell(s) of threshold.json vary no admission or client policy"


def test_policy_figure_is_the_threshold_json(
    archives: dict[str, Path], reports: dict[str, ReportResult]
) -> None:
    doc = json.loads((archives["policy"] / "threshold.json").read_text())
    cells, _ = frames.threshold(archives["policy"])
    keys = policy.policy_keys(cells)
    assert keys == ["admission"]
    thr = policy.thresholds(cells, ["admission", "client"])
    ax = plots.policy_comparison(thr, by="policy")
    line = _gid(ax, "policies")
    est = [c["estimate"] for c in doc["cells"]]
    assert np.asarray(line.get_xdata()) == pytest.approx(est)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"admission={a}, client=immediate" for a in ("none", "token_bucket")]
    plt.close("all")
    findings = report_findings(reports["policy"].html.read_text())
    for cell, label in zip(doc["cells"], labels, strict=True):
        interval = (
            f"{plots.number(cell['estimate'])} [{plots.number(cell['ci_low'])}, "
            f"{plots.number(cell['ci_high'])}]"
        )
        assert f"{label}: {interval}" in findings
    names = [p.name for p in reports["policy"].figures["policy"]]
    assert names == ["policy_thresholds.png", "policy_time_to_stable.png"]


def test_policy_time_to_stable_is_the_runs_mean(archives: dict[str, Path]) -> None:
    s = frames.summary(archives["policy"])
    tts = policy.time_to_stable(s, ["admission", "client"], [])
    for _, row in tts.iterrows():
        admission = row["policy"].split(",")[0].split("=")[1]
        runs = s[s["admission"] == admission]["time_to_stable_s"].dropna()
        assert row["mean"] == pytest.approx(runs.mean())
        assert row["n"] == len(runs)


def test_hysteresis_loop_is_the_archive_series(
    archives: dict[str, Path], reports: dict[str, ReportResult]
) -> None:
    ts = read_timeseries(archives["storm"])
    win = metastability.windows(ts, window_s=10.0)
    tick = float(np.median(np.diff(ts["t_s"])))
    k = round(10.0 / tick)
    n = len(ts) // k
    attempts = ts["attempts"].to_numpy()[: n * k].reshape(n, k).sum(axis=1) / (k * tick)
    joined = ts["joined"].to_numpy()[: n * k].reshape(n, k).sum(axis=1) / (k * tick)
    ax = metastability.hysteresis(win, {0: "storm"}, trigger_end_s=330.0)
    loop = _gid(ax, "loop/0")
    assert np.asarray(loop.get_xdata()) == pytest.approx(attempts)
    assert np.asarray(loop.get_ydata()) == pytest.approx(joined)
    after = _gid(ax, "after/0")
    assert len(after.get_xdata()) == int((win["t_s"] > 330.0).sum())
    assert ax.get_xlabel().endswith("(1/s)") and ax.get_ylabel().endswith("(1/s)")
    plt.close("all")
    _, axes = plt.subplots(2, 1)
    metastability.over_time(win, {0: "storm"}, None, axes)
    assert np.asarray(_gid(axes[0], "goodput/0").get_ydata()) == pytest.approx(joined)
    assert np.asarray(_gid(axes[1], "offered/0").get_ydata()) == pytest.approx(attempts)
    assert len(axes[0].get_legend().get_texts()) == 2  # the run and the new load
    plt.close("all")
    s = read_summary(archives["storm"]).iloc[0]
    findings = report_findings(reports["storm"].html.read_text())
    assert bool(s["metastable"])
    assert f"metastable from {float(s['metastable_since_s']):g} s" in findings
    assert f"{attempts.max():,.0f} attempts/s" in findings
    assert f"{float(s['retry_amplification']):.3g} attempts per arrival" in findings


def test_audio_figures_are_the_archive_metrics(
    archives: dict[str, Path], reports: dict[str, ReportResult]
) -> None:
    ts = read_timeseries(archives["fanout"])
    s = read_summary(archives["fanout"])
    seg = ts[ts["audio_due"] > 0]
    d = audio.delivery(ts)
    _, axes = plt.subplots(2, 1)
    audio.plot_delivery(d, {0: "fan-out"}, axes)
    on_time = _gid(axes[0], "on_time/0")
    assert np.asarray(on_time.get_xdata()) == pytest.approx(seg["t_s"].to_numpy())
    share = (seg["audio_on_time"] / seg["audio_due"]).to_numpy()
    assert np.asarray(on_time.get_ydata()) == pytest.approx(share)
    stall = 60 * seg["stall_s"].to_numpy() / seg["listen_s"].to_numpy()
    assert np.asarray(_gid(axes[1], "stall/0").get_ydata()) == pytest.approx(stall, nan_ok=True)
    # the whole run's ratios are the per-segment counts summed
    assert seg["audio_on_time"].sum() / seg["audio_due"].sum() == pytest.approx(
        float(s["audio_delivered_ratio"].iloc[0]), rel=1e-3
    )
    plt.close("all")
    tr = audio.tiers(s)
    assert list(tr["tier"]) == list(audio.TIERS)
    ax = audio.plot_tiers(tr)
    bars = {p.get_gid(): p.get_height() for p in ax.patches}
    for tier in audio.TIERS:
        assert bars[f"demand/{tier}"] == pytest.approx(float(s[f"egress_demand_peak.{tier}"][0]))
        assert bars[f"served/{tier}"] == pytest.approx(
            float(s[f"egress_utilisation_peak.{tier}"][0])
        )
    assert ax.get_legend() is not None
    plt.close("all")
    ratio = float(s["audio_delivered_ratio"].iloc[0])
    assert ratio < 1  # the egress is short: the section has something to show
    findings = report_findings(reports["fanout"].html.read_text())
    assert f"{ratio:.1%} of segments on time" in findings
    assert f"{float(s['stall_s_per_listener_min'].iloc[0]):.3g} s stalled" in findings
    assert "The edge tier is the busiest" in findings


def test_every_figure_is_free_of_text_problems(reports: dict[str, ReportResult]) -> None:
    """``analysis.notebook.problems`` of every figure drawn (in the sidecars): no overlapping or
    cut-off text, every axis label with units."""
    for name, r in reports.items():
        for section in r.sections:
            doc = json.loads((r.html.parent / f"{section}.findings.json").read_text())
            assert doc["problems"] == {f: [] for f in doc["figures"]}, (name, section)
