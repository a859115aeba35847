"""The report of a study (``sim.report.build_report`` on a directory of archives): two replays at
reduced scale (their timelines carry the events' public data points), a small threshold search
and a small calibration (its own section), each made once by the real CLI (in parallel) as the
parts of one study directory, reported once. The figure helpers are checked on the archives' data
through their artists' gids; the report through its parts, order, files and findings."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from analysis import calibration, frames, plots, replay
from sim import observations
from sim.archive import ArchiveError, read_summary
from sim.report import REPORT_HTML, ReportResult, _locate, _plan, _study, build_report

JOBS = {
    "trump_2024": [
        "run",
        "experiment=replay_trump_2024",
        "scenario.expected_arrivals=20000",
        "platform.nodes=8",
        "platform.auth_workers=4",
    ],
    "desantis_2023": [
        "run",
        "experiment=replay_desantis_2023",
        "scenario.expected_arrivals=20000",
        "platform.nodes=4",
        "platform.auth_workers=4",
    ],
    "threshold": [
        "threshold",
        "experiment=threshold_erlang_b",
        "workers=4",
        "service_rate_per_s=2",
        "max_reject_share=0.1",
        "hydra.sweeper.budget=8",
        "hydra.sweeper.batch=4",
        "horizon_s=300",
    ],
    "calibration": [
        "calibrate",
        "--workers",
        "1",
        "experiment=calibrate_check",
        "scenario.event=trump_2024",
        "hydra.sweeper.budget=10",
        "hydra.sweeper.batch=6",
        "hydra.sweeper.replications=1",
    ],
}
STUDY = {
    "title": "Two launches and a threshold",
    "answers": ["The Trump room started late.", "The DeSantis room was pulled at 21 min."],
    "parts": [
        {"dir": "desantis_2023", "title": "DeSantis 2023 replay"},
        {"dir": "trump_2024", "title": "Trump 2024 replay"},
        {"dir": "threshold", "title": "Where the room breaks"},
    ],  # calibration/ is not listed: it follows
}
IMG = '<img src="data:image/png;base64,'

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import make_archives

    root = tmp_path_factory.mktemp("study")
    make_archives(root, JOBS)
    (root / "study.json").write_text(json.dumps(STUDY))
    (root / "notes").mkdir()  # holds no archive: not a part
    return root


@pytest.fixture(scope="module")
def report(study: Path) -> ReportResult:
    return build_report(study, study / "report", progress=False)


def _gid(ax: plt.Axes, gid: str) -> matplotlib.lines.Line2D:
    found = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    assert len(found) == 1, [ln.get_gid() for ln in ax.get_lines()]
    return found[0]


def _summary(run_dir: Path) -> dict:
    doc: dict = json.loads((run_dir / "summary.json").read_text())
    return doc


def test_the_study_has_one_part_per_archive_in_the_study_order(
    study: Path, report: ReportResult
) -> None:
    assert list(report.parts) == ["desantis_2023", "trump_2024", "threshold", "calibration"]
    assert report.title == STUDY["title"] and report.answers == STUDY["answers"]
    assert not report.parts_left_out
    assert report.parts["trump_2024"].sections == ["timeline"]
    assert report.parts["desantis_2023"].sections == ["timeline"]
    assert report.parts["threshold"].sections == ["threshold", "sweep"]
    assert report.parts["calibration"].sections == ["calibration", "sweep"]
    assert "trump_2024/timeline" in report.sections and "calibration/calibration" in report.sections
    assert "calibration" in report.parts["trump_2024"].not_applicable
    assert "calibration" in report.parts["threshold"].not_applicable
    text = report.html.read_text()
    # the title and the answers first, then the findings of every part in order, then the parts
    title, answers = text.index(STUDY["title"]), text.index('<ul id="answers">')
    findings = text.index('id="findings"')
    order = [text.index(f'<p id="findings-{n}"') for n in report.parts]
    parts = [text.index(f'<section id="part-{n}"') for n in report.parts]
    assert title < answers < findings < order[0] and order == sorted(order)
    assert order[-1] < parts[0] and parts == sorted(parts)
    for a in STUDY["answers"]:
        assert answers < text.index(a) < findings
    for name, part in report.parts.items():
        assert part.title in text
        for s in part.sections:
            assert f'<section id="{name}-{s}" data-part="{name}">' in text
            assert part.findings[s] in text
    # every figure embedded once, files per part: names never collide
    figures = [p for key in report.sections for p in report.figures[key]]
    assert text.count(IMG) == len(figures) == 1 + 1 + (1 + 1) + (2 + 1)  # one threshold cell
    assert len(set(figures)) == len(figures)
    for name, part in report.parts.items():
        for p in (q for s in part.sections for q in part.figures[s]):
            assert p.parent == study / "report" / name and p.is_file()
            assert p.with_suffix(".svg").is_file()
        assert (study / "report" / name / REPORT_HTML).is_file()  # each part alone, too
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?:""", text, re.IGNORECASE)


def test_replay_timeline_overlays_the_public_data_points(study: Path, report: ReportResult) -> None:
    run = study / "trump_2024"
    assert replay.event(run / "run.h5") == "trump_2024"
    pts = replay.points("trump_2024")
    expected = [
        o
        for o in observations.load("trump_2024")
        if o.role in ("fit", "input") and o.quantity in replay.OVERLAID
    ]
    assert list(pts["id"]) == [o.id for o in expected] and len(expected) >= 4
    summary = _summary(run)
    delay = float(summary["start_delay_s"])
    df = frames.timeline(run)
    _, axes = plt.subplots(2, 1, sharex=True)
    plots.timeline(df[df["series"].isin(["concurrent", "trying"])], ax=axes[0])
    replay.overlay(axes[0], pts, delay, (axes[1],))
    listeners = [o for o in expected if o.quantity == "listeners"]
    marks = _gid(axes[0], "data/fit/listeners")
    assert np.asarray(marks.get_xdata()) == pytest.approx([o.t_s for o in listeners])
    assert np.asarray(marks.get_ydata()) == pytest.approx([o.value for o in listeners])
    peak = next(o for o in expected if o.quantity == "peak_listeners")
    band = next(p for p in axes[0].patches if p.get_gid() == f"peak/{peak.id}")
    assert band.get_x() == pytest.approx(peak.t_s) and band.get_y() == pytest.approx(peak.low)
    assert band.get_width() == pytest.approx(peak.t_to_s - peak.t_s)
    assert band.get_height() == pytest.approx(peak.high - peak.low)
    assert np.asarray(_gid(axes[0], f"peak_value/{peak.id}").get_ydata()) == pytest.approx(
        [peak.value] * 2
    )
    for ax in axes:
        assert np.asarray(_gid(ax, "scheduled_start").get_xdata()) == pytest.approx([0, 0])
        assert np.asarray(_gid(ax, "actual_start").get_xdata()) == pytest.approx([delay] * 2)
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    late = f"actual start (t = {delay:.0f} s, {replay.duration(delay)} late)"
    assert "scheduled start (t = 0 s)" in legend and late in legend
    assert "public listeners, range (fit target)" in legend
    assert "public peak listeners, range, window (fit target)" in legend
    labels = {str(t.get_gid()): t for t in axes[0].texts}  # the starts' labels, on the top axes
    assert labels["label/actual_start"].get_text().startswith("actual start")
    assert labels["label/scheduled_start"].get_position()[0] == 0.0
    assert axes[0].get_xlabel() == "Time (s)" and axes[0].get_ylabel().endswith(")")
    plt.close("all")
    svg = (study / "report" / "trump_2024" / "timeline.svg").read_text()
    for gid in ("data/fit/listeners", f"peak/{peak.id}", "scheduled_start", "actual_start"):
        assert f'id="{gid}' in svg, gid  # the report's own figure has them


@pytest.mark.parametrize("name", ["trump_2024", "desantis_2023"])
def test_replay_findings_count_the_data_points_inside_their_bands(
    name: str, study: Path, report: ReportResult
) -> None:
    summary = _summary(study / name)
    fit = {o.id: o for o in observations.load(name) if o.role == "fit"}
    data = summary["data"]
    assert set(data) <= set(fit) and data
    inside = sum(1 for k, v in data.items() if fit[k].low <= float(v) <= fit[k].high)
    delay = float(summary["start_delay_s"])
    public = next(o for o in fit.values() if o.quantity == "start_delay_s")
    text = report.parts[name].findings["timeline"]
    assert f"Replay of {name}: {inside} of {len(data)} public data points inside their bands" in (
        text
    )
    assert f"start {replay.duration(delay)} late" in text
    assert f"(public: {public.low / 60:.0f}-{public.high / 60:.0f} min)" in text
    # the row summary of the archive gives the same values as summary.json
    row = read_summary(study / name).iloc[0]
    assert replay.simulated(row) == pytest.approx({k: float(v) for k, v in data.items()})
    checked = replay.check(name, row)
    assert int(checked["inside"].sum()) == inside and len(checked) == len(data)


def test_desantis_timeline_draws_its_demand_and_its_room_end(study: Path) -> None:
    pts = replay.points("desantis_2023")
    assert {"demand", "listeners", "peak_listeners"} <= set(pts["quantity"])
    _, ax = plt.subplots()
    plots.timeline(frames.timeline(study / "desantis_2023", series="concurrent"), ax=ax)
    replay.overlay(ax, pts, float(_summary(study / "desantis_2023")["start_delay_s"]))
    demand = pts[pts["quantity"] == "demand"]
    marks = _gid(ax, "data/fit/demand")
    assert np.asarray(marks.get_ydata()) == pytest.approx(demand["value"].to_numpy())
    assert ax.get_xlim()[1] >= float(pts["t_to_s"].max())  # the event's window is shown
    plt.close("all")


def test_calibration_figures_are_the_calibration_json(study: Path, report: ReportResult) -> None:
    doc = json.loads((study / "calibration" / "calibration.json").read_text())
    res = calibration.residuals(doc)
    assert list(res["id"]) == [r["id"] for r in doc["data_points"]]
    ax = calibration.plot_residuals(res)
    z = [
        (r["simulated"] - (r["low"] + r["high"]) / 2) / ((r["high"] - r["low"]) / 2)
        for r in doc["data_points"]
    ]
    assert np.asarray(_gid(ax, "z").get_xdata()) == pytest.approx(z)
    for r, zi in zip(doc["data_points"], z, strict=True):  # outside the band iff |z| > 1
        assert r["inside"] == (abs(zi) <= 1 + 1e-12)
    runs = [zr for zs in res["z_runs"] for zr in zs]
    assert np.asarray(_gid(ax, "z_runs").get_xdata()) == pytest.approx(runs)
    assert ax.get_xlabel().endswith("(band half widths)")
    plt.close("all")
    par = calibration.parameters(doc)
    assert list(par["name"]) == list(doc["best"])
    ax = calibration.plot_parameters(par)
    pos = []
    for name, est in doc["best"].items():
        p = doc["parameters"][name]
        if p["log"]:
            pos.append(math.log(est / p["lo"]) / math.log(p["hi"] / p["lo"]))
        else:
            pos.append((est - p["lo"]) / (p["hi"] - p["lo"]))
    assert np.asarray(_gid(ax, "estimate").get_xdata()) == pytest.approx(pos)
    segments = next(c for c in ax.collections if c.get_gid() == "interval").get_segments()
    assert len(segments) == len(pos)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    for label, name in zip(labels, doc["best"], strict=True):
        assert label.startswith(f"{name} = ")
        assert ("not identified" in label) == (not doc["identified"][name])
    plt.close("all")
    text = report.parts["calibration"].findings["calibration"]
    inside = sum(r["inside"] for r in doc["data_points"])
    assert f"Calibration of {doc['event']}: loss {plots.number(doc['loss'])}" in text
    assert f"{inside} of {len(doc['data_points'])} data points inside their bands" in text
    assert ("all bands met" if doc["inside_all_bands"] else "not all bands met") in text
    for name, (lo, hi) in doc["ci"].items():
        lo, hi = (-math.inf if lo is None else lo), (math.inf if hi is None else hi)
        est = plots.number(doc["best"][name])
        assert f"{name} = {est} 95% [{plots.number(lo)}, {plots.number(hi)}]" in text
    names = [p.name for p in report.parts["calibration"].figures["calibration"]]
    assert names == ["calibration_residuals.png", "calibration_parameters.png"]


def test_calibration_section_is_planned_only_with_a_calibration_json(study: Path) -> None:
    supported, skipped = _plan(_locate(study / "calibration"))
    assert "calibration" in supported and "calibration" not in skipped
    supported, skipped = _plan(_locate(study / "calibration" / "calibration.json"))
    assert "calibration" in supported
    supported, skipped = _plan(_locate(study / "threshold"))
    assert "calibration" not in supported
    assert skipped["calibration"].startswith("no calibration.json")


def test_study_json_order_and_errors(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "threshold.json").write_text("{}")
    found = _study(tmp_path)
    assert found is not None and [d for d, _ in found.parts] == ["a", "b", "c"]
    assert found.title == tmp_path.name and found.answers == []
    (tmp_path / "study.json").write_text(json.dumps({"parts": [{"dir": "c", "title": "C"}]}))
    found = _study(tmp_path)
    assert found is not None and found.parts == [("c", "C"), ("a", "a"), ("b", "b")]
    assert _study(tmp_path / "a") is None  # an archive, not a study
    for bad in (
        "[1]",
        '{"parts": {"a": 1}}',
        '{"parts": [{"title": "x"}]}',
        '{"answers": "yes"}',
        "{nope",
    ):
        (tmp_path / "study.json").write_text(bad)
        with pytest.raises(ArchiveError, match=r"study\.json"):
            _study(tmp_path)
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    assert _study(empty) is None
    with pytest.raises(ArchiveError):
        build_report(empty, tmp_path / "out", progress=False)


def test_a_study_part_that_cannot_be_read_is_left_out(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.h5").write_text("not hdf5")
    doc = {"title": "T", "parts": [{"dir": "missing"}, {"dir": "broken"}]}
    (tmp_path / "study.json").write_text(json.dumps(doc))
    result = build_report(tmp_path, tmp_path / "report", progress=False)
    assert set(result.parts_left_out) == {"missing", "broken"} and not result.parts
    assert result.sections == [] and result.html.is_file()
    text = result.html.read_text()
    assert 'data-part="missing"' in text and 'data-part="broken"' in text


def test_spacesim_report_of_a_study_dir(study: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    (small / "trump_2024").symlink_to(study / "trump_2024", target_is_directory=True)
    (small / "study.json").write_text(json.dumps({"title": "One replay", "answers": ["A."]}))
    exe = str(Path(sys.executable).with_name("spacesim"))
    out = subprocess.run(
        [exe, "report", str(small), "--out", str(tmp_path / "rep"), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert f"report: {tmp_path / 'rep' / REPORT_HTML} (trump_2024/timeline)" in out.stdout
    assert "left out trump_2024/threshold:" in out.stdout
    text = (tmp_path / "rep" / REPORT_HTML).read_text()
    assert text.index("One replay") < text.index("A.") < text.index('id="findings"')
    assert text.count(IMG) == 1 and (tmp_path / "rep" / "trump_2024" / "timeline.png").is_file()


def test_input_data_points_are_drawn_and_context_ones_are_not(tmp_path: Path) -> None:
    rows = [
        ("in_room", "listeners", 60, "", 900, 800, 1000, "listeners", "input"),
        ("fit_room", "listeners", 120, "", 1500, 1400, 1600, "listeners", "fit"),
        ("rumour", "listeners", 180, "", 9000, 8000, 10000, "listeners", "context"),
        ("peak", "peak_listeners", 100, 300, 2000, 1800, 2200, "listeners", "fit"),
        ("delay", "start_delay_s", "", "", 90, 60, 120, "s", "fit"),
    ]
    path = tmp_path / "event.csv"
    lines = [",".join(observations.COLUMNS)]
    lines += [",".join(map(str, r)) + ",false,a source," for r in rows]
    path.write_text("\n".join(lines) + "\n")
    pts = replay.points(str(path))
    assert list(pts["id"]) == ["in_room", "fit_room", "peak"]
    _, ax = plt.subplots()
    replay.overlay(ax, pts, float("nan"))
    assert np.asarray(_gid(ax, "data/input/listeners").get_ydata()) == pytest.approx([900])
    assert np.asarray(_gid(ax, "data/fit/listeners").get_xdata()) == pytest.approx([120])
    assert not [ln for ln in ax.get_lines() if ln.get_gid() == "actual_start"]  # never started
    plt.close("all")
    summary = {"data.fit_room": 1450.0, "data.peak": 2500.0, "data.delay": 100.0}
    checked = replay.check(str(path), summary)
    assert list(checked["id"]) == ["fit_room", "peak", "delay"]
    assert list(checked["inside"]) == [True, False, True]
    text = replay.findings(str(path), checked, float("nan"))
    assert text == (
        f"Replay of {path}: 2 of 3 public data points inside their bands; "
        "the conversation never started (public: 1-2 min)."
    )


def test_every_study_figure_is_free_of_text_problems(report: ReportResult) -> None:
    """``analysis.notebook.problems`` of every figure of every part (in the sidecars): no
    overlapping or cut-off text (the replays' start and event labels included), units on every
    axis label."""
    for name, part in report.parts.items():
        for section in part.sections:
            doc = json.loads((part.html.parent / f"{section}.findings.json").read_text())
            assert doc["problems"] == {f: [] for f in doc["figures"]}, (name, section)
