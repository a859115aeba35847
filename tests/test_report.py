"""``sim.report.build_report`` on real archives: one run (timeline) and an Erlang B threshold
search (threshold and sweep), each made once by the real CLI (in parallel); the notebooks run in
a real kernel."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import frames, notebook, plots, replay, theme
from sim.archive import ArchiveError, read_timeseries
from sim.report import REPORT_HTML, ReportResult, build_report, main
from tests.conftest import make_archives, make_reports, report_findings
from tests.test_report_browser import open_in_browser

JOBS = {
    "run": ["run", "experiment=bench_surge", "scenario.expected_arrivals=2000"],
    "threshold": [
        "threshold",
        "experiment=threshold_erlang_b",
        "workers=4,6",  # two cells: a capacity curve
        "service_rate_per_s=2",
        "max_reject_share=0.1",
        "hydra.sweeper.budget=10",
        "horizon_s=300",
    ],
}
IMG = '<img src="data:image/png;base64,'


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    return make_archives(root, JOBS)


@pytest.fixture(scope="module")
def reports(
    archives: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ReportResult]:
    return make_reports(archives, tmp_path_factory.mktemp("reports"))


def _check_html(result: ReportResult) -> str:
    assert result.html.is_file() and result.html.name == REPORT_HTML
    text = result.html.read_text()
    figures = [p for section in result.sections for p in result.figures[section]]
    assert figures
    assert text.count(IMG) == len(figures)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?:""", text, re.IGNORECASE)
    for png in figures:
        assert png.suffix == ".png" and png.stat().st_size > 0
        svg = png.with_suffix(".svg")
        assert svg.is_file() and svg.stat().st_size > 0
    for section in result.sections:  # notebook.problems of each drawn figure: none
        sidecar = json.loads((result.html.parent / f"{section}.findings.json").read_text())
        assert sidecar["problems"] == {f: [] for f in sidecar["figures"]}, section
    return text


def test_run_report_is_a_timeline(
    archives: dict[str, Path], reports: dict[str, ReportResult]
) -> None:
    result = reports["run"]
    assert result.sections == ["timeline"]
    assert set(result.skipped) == {"threshold", "sweep"}
    assert "threshold.json" in result.skipped["threshold"]
    assert "sweep" in result.skipped["sweep"]
    text = _check_html(result)
    peak = read_timeseries(archives["run"])["concurrent"].max()
    assert f"{plots.number(float(peak))} listeners" in report_findings(text)
    assert 'data-section="threshold"' in text and 'data-section="sweep"' in text
    assert (result.html.parent / "timeline.ipynb").is_file()
    # not a replay (no scenario.event): no public data points, no starts, no replay findings
    assert "Replay of" not in report_findings(text)
    svg = (result.html.parent / "timeline.svg").read_text()
    assert 'id="scheduled_start' not in svg and 'id="data/' not in svg
    assert "calibration.json" in result.not_applicable["calibration"]
    # attempts by outcome per second (the tick length divided out), words for the reasons
    ts = read_timeseries(archives["run"])
    rate = frames.per_second(frames.timeline(archives["run"], series="attempts"))
    tick = float(np.median(np.diff(ts["t_s"].to_numpy(float))))
    np.testing.assert_allclose(rate["value"], ts["attempts"].to_numpy(float) / tick)
    assert 'id="attempts_per_s/0"' in svg and 'id="concurrent/0"' in svg


def test_threshold_report(archives: dict[str, Path], reports: dict[str, ReportResult]) -> None:
    result = reports["threshold"]
    assert result.sections == ["threshold", "sweep"]
    assert set(result.skipped) == {"timeline"}
    assert "not a single run" in result.skipped["timeline"]
    text = _check_html(result)
    names = [p.name for p in result.figures["threshold"]]
    assert names == ["failure_curve.png", "capacity_curve.png"]  # two cells
    doc = json.loads((archives["threshold"] / "threshold.json").read_text())
    findings = report_findings(text)
    for workers, cell in zip((4, 6), doc["cells"], strict=True):
        est = f"{cell['estimate']:.4g} [{cell['ci_low']:.4g}, {cell['ci_high']:.4g}]"
        assert f"Join workers = {workers}: {est}" in findings
    assert findings.startswith("Arrival rate (1/s) at P(failure) = 0.5: ")
    assert f"{doc['runs']} runs swept join workers" in findings
    assert "goodput (joins/s) ranges from" in findings  # words and units, not column names
    sidecar = json.loads((result.html.parent / "threshold.findings.json").read_text())
    assert sidecar["section"] == "threshold" and sidecar["findings"] in findings


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    for bad in (junk, tmp_path / "missing", tmp_path):
        with pytest.raises(ValueError) as info:
            build_report(bad, tmp_path / "out", progress=False)
        assert isinstance(info.value, ArchiveError)
    assert not (tmp_path / "out" / REPORT_HTML).exists()
    assert main([str(junk), "--out", str(tmp_path / "out"), "--no-progress"]) == 2


def test_spacesim_report_command(archives: dict[str, Path], tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("spacesim"))
    out = subprocess.run(
        [exe, "report", str(archives["run"]), "--out", str(tmp_path / "rep"), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert f"report: {tmp_path / 'rep' / REPORT_HTML} (timeline)" in out.stdout
    assert "left out threshold:" in out.stdout
    assert IMG in (tmp_path / "rep" / REPORT_HTML).read_text()
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    bad = subprocess.run([exe, "report", str(junk)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("spacesim report: ") and len(bad.stderr.splitlines()) == 1


@pytest.mark.browser
@pytest.mark.parametrize("name", ["run", "threshold"])
def test_the_report_loads_in_a_real_browser(
    name: str, reports: dict[str, ReportResult], tmp_path: Path
) -> None:
    """Headless Chromium opens the report from disk (offline: every figure is embedded): every
    image decodes to a non-zero size, the page logs no error, and a screenshot is saved."""
    figures = sum(len(v) for v in reports[name].figures.values())
    open_in_browser(reports[name].html, figures, tmp_path / f"{name}-report.png")


def _timeline_with_close_lines(gap_s: float, width_in: float) -> plt.Figure:
    """A timeline (0-4000 s) with operator events at 1000 s and 3990 s, the actual start
    ``gap_s`` after the first, and the scheduled start at 0."""
    theme.apply()
    fig, ax = plt.subplots(figsize=(width_in, 3))
    t = np.arange(-600.0, 4000.0, 5.0)
    df = pd.DataFrame(
        {"run": 0, "t_s": t, "series": "concurrent", "value": 1e5 * np.sin(t / 3000) ** 2}
    )
    df["units"] = "count"
    ev = pd.DataFrame(
        {
            "run": [0, 0],
            "t_s": [1000.0, 3990.0],
            "kind": ["operator", "operator"],
            "target": ["cap_listeners", "cap_listeners"],
            "detail": ["room capped at 250000 connections", "cap lifted"],
        }
    )
    plots.timeline(df, ax=ax, events=ev, ylabel="People (people)")
    plots.label_events(ax, frames.event_marks(ev))
    replay.overlay(ax, pd.DataFrame(columns=replay.POINT_COLUMNS), 1000.0 + gap_s)
    return fig


@pytest.mark.parametrize("width_in", [5.0, 9.0])
@pytest.mark.parametrize("gap_s", [0.0, 10.0, 120.0])
def test_line_labels_never_overlap(gap_s: float, width_in: float, tmp_path: Path) -> None:
    """The labels of the starts and of the events, however close in time: their boxes (the
    renderer's window extents at the saved layout) never overlap and stay inside the axes."""
    fig = _timeline_with_close_lines(gap_s, width_in)
    ax = fig.axes[0]
    notebook.save(fig, tmp_path, "close")  # the layout, then plots.unclutter
    gids = sorted(str(t.get_gid()) for t in ax.texts)
    assert gids == [
        "label/actual_start",
        "label/event/1000",
        "label/event/3990",
        "label/scheduled_start",
    ]
    boxes = plots.label_boxes(ax)
    assert len(boxes) == 4
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    frame = ax.get_window_extent(fig.canvas.get_renderer())  # type: ignore[attr-defined]
    assert all(frame.x0 - 1 <= b.x0 and b.x1 <= frame.x1 + 1 for b in boxes)
    assert notebook.problems(fig) == []  # nor with tick labels, axis labels, the legend
    rows = {str(t.get_gid()): t.get_position()[1] for t in ax.texts}
    if gap_s <= 10:  # the event and the actual start, 10 s apart: stacked, not side by side
        assert rows["label/event/1000"] != rows["label/actual_start"]
    texts = {str(t.get_gid()): t.get_text() for t in ax.texts}
    assert "room capped at 250,000 connections".startswith(texts["label/event/1000"].rstrip("…"))
    if width_in >= 9:  # room enough: the words in full
        assert texts["label/event/1000"] == "room capped at 250,000 connections"
    assert texts["label/actual_start"].startswith("actual start")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "events (operator)" in legend and "scheduled start (t = 0 s)" in legend
    plt.close(fig)


def test_problems_finds_overlapping_cut_off_and_unitless_text() -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4, 3))
    top.set_ylabel("A label far too long for the height of its axes (people)")
    top.text(0.5, 0.5, "hello")
    top.text(0.5, 0.5, "world")
    bottom.set_xlabel("Time")
    found = notebook.problems(fig)
    assert "texts 'hello' and 'world' overlap" in found
    assert any("cut off" in p and "far too long" in p for p in found)
    assert "axis label 'Time' has no units" in found
    plt.close(fig)


def test_words_for_rates_rejections_and_events() -> None:
    assert theme.label("attempts_per_s") == "Join attempts (attempts/s)"
    assert theme.label("rejected_cap_per_s") == "Rejected: room capped (attempts/s)"
    assert theme.quantity("rejected_auth")[0] == "Rejected: login overloaded"
    assert theme.label("goodput_per_s") == "Joins completed (1/s)"  # a rate already
    assert theme.label("admission") == "Admission policy (name)"
    assert theme.setting("platform.fanout.edge.egress_gbps", 0.006) == (
        "Edge egress per node = 0.006 Gb/s"
    )
    assert theme.setting("platform.nodes", 8) == "Edge nodes = 8"
    ev = pd.DataFrame(
        {
            "run": [0] * 4,
            "t_s": [5.0, 5.0, 5.0, 9.0],
            "kind": ["crash", "crash", "operator", "restart"],
            "target": ["node 0", "node 1", "end_room", "node 0"],
            "detail": ["operator: end_room", "operator: end_room", "room ended: relaunched", "up"],
        }
    )
    marks = frames.event_marks(ev)
    assert list(marks["t_s"]) == [5.0, 9.0]
    assert list(marks["label"]) == ["2 node crashes; room ended", "1 node restart"]


def test_metastability_events_are_named_and_not_drawn_like_the_new_load() -> None:
    from analysis import metastability

    t = np.arange(0.0, 100.0, 10.0)
    win = pd.DataFrame(
        {"run": 0, "t_s": t, "goodput_per_s": 5.0, "offered_per_s": 50.0, "new_per_s": 5.0}
    )
    ev = pd.DataFrame({"run": [0], "t_s": [30.0], "kind": ["drain"], "target": ["node 0"]})
    ev["detail"] = ""
    _, axes = plt.subplots(2, 1)
    metastability.over_time(win, {0: "storm"}, ev, axes)
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == ["storm", "new listeners", "events (drain)"]
    events = [ln for ln in axes[0].get_lines() if ln.get_gid() == "event"]
    new = [ln for ln in axes[0].get_lines() if ln.get_gid() == "new"]
    assert events[0].get_linestyle() != new[0].get_linestyle()
    plt.close("all")
