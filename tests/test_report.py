"""``sim.report.build_report`` on real archives: one run (timeline) and an Erlang B threshold
search (threshold and sweep), each made once by the real CLI (in parallel); the notebooks run in
a real kernel."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.archive import ArchiveError, read_timeseries
from sim.report import REPORT_HTML, ReportResult, build_report, main
from tests.conftest import make_archives, make_reports, report_findings

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
    assert f"{float(peak):.0f} listeners" in report_findings(text)
    assert 'data-section="threshold"' in text and 'data-section="sweep"' in text
    assert (result.html.parent / "timeline.ipynb").is_file()
    # not a replay (no scenario.event): no public data points, no starts, no replay findings
    assert "Replay of" not in report_findings(text)
    svg = (result.html.parent / "timeline.svg").read_text()
    assert 'id="scheduled_start' not in svg and 'id="data/' not in svg
    assert "calibration.json" in result.not_applicable["calibration"]


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
        assert f"workers={workers}: {est}" in findings
    assert f"{doc['runs']} runs swept workers" in findings
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


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.mark.browser
@pytest.mark.parametrize("name", ["run", "threshold"])
def test_the_report_loads_in_a_real_browser(
    name: str, reports: dict[str, ReportResult], tmp_path: Path
) -> None:
    """Headless Chromium opens the report from disk (offline: every figure is embedded): every
    image decodes to a non-zero size, the page logs no error, and a screenshot is saved."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.is_file() and CHROMEDRIVER.is_file(), (
        "no chromium/chromedriver: `apt-get install chromium chromium-driver` (.ci/run does)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,2000"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(60)
        driver.get(reports[name].html.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map("
            "i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt || ''])"
        )
        figures = sum(len(v) for v in reports[name].figures.values())
        assert len(images) == figures > 0
        assert all(done and w > 0 and h > 0 for done, w, h, _ in images), images
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        shot = tmp_path / f"{name}-report.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    finally:
        driver.quit()
