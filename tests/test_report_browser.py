"""The report in a real browser (marker ``browser``): headless Debian Chromium through Selenium
opens a report from disk (offline: every figure is embedded) and checks that every image decodes
to a non-zero size and that the page logs no error, and saves a screenshot.

``open_in_browser`` is the check; ``tests/test_report.py`` uses it on a run and a threshold
report, this module on a study report like the one ``spacesim main`` writes (a ``study.json``
with a title, the answers and the parts; here a reduced-scale DeSantis replay, whose timeline has
operator events, crashes and the two starts, and a small threshold search).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.report import REPORT_HTML, ReportResult, build_report
from tests.conftest import make_archives

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def open_in_browser(html: Path, figures: int, shot: Path) -> list[list[object]]:
    """Open ``html`` in headless Chromium: ``figures`` (> 0) images, each loaded with a non-zero
    natural size, no SEVERE (or ERROR) console entry; the page's screenshot saved as ``shot``.
    The images as ``[complete, naturalWidth, naturalHeight, alt]``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.is_file() and CHROMEDRIVER.is_file(), (
        "no chromium/chromedriver: `apt-get install chromium chromium-driver` (.ci/run does)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,2000"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={shot.parent / (shot.stem + '-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(60)
        driver.get(html.resolve().as_uri())
        images: list[list[object]] = driver.execute_script(
            "return Array.from(document.images).map("
            "i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt || ''])"
        )
        assert len(images) == figures > 0
        assert all(done and w > 0 and h > 0 for done, w, h, _ in images), images  # type: ignore[operator]
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    finally:
        driver.quit()
    return images


JOBS = {
    "desantis_2023": [
        "run",
        "experiment=replay_desantis_2023",
        "scenario.expected_arrivals=2e4",
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
}
STUDY = {  # the shape of what sim.mainjob.write_study writes
    "title": "spacesim main job (small): the DeSantis 2023 replay and a threshold",
    "answers": [
        "DeSantis 2023 replay: the first room ends at 21 min (public: 21 min).",
        "The platform fails above 3.8 arrivals per second.",
    ],
    "parts": [
        {"dir": "desantis_2023", "title": "Replay: the DeSantis launch, 24 May 2023"},
        {"dir": "threshold", "title": "Threshold: where the room breaks"},
    ],
}


@pytest.fixture(scope="module")
def study_report(tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    root = tmp_path_factory.mktemp("study")
    make_archives(root, JOBS)
    (root / "study.json").write_text(json.dumps(STUDY))
    return build_report(root, root / "report", progress=False)


def test_the_study_report_has_every_part_and_clean_figures(study_report: ReportResult) -> None:
    assert list(study_report.parts) == ["desantis_2023", "threshold"]
    assert study_report.sections == [
        "desantis_2023/timeline",
        "threshold/threshold",
        "threshold/sweep",
    ]
    out = study_report.html.parent
    for key in study_report.sections:
        part, section = key.split("/")
        sidecar = json.loads((out / part / f"{section}.findings.json").read_text())
        # every figure drawn without overlapping or cut-off text, every axis label with units
        assert sidecar["problems"] == {f: [] for f in sidecar["figures"]}, key
    findings = study_report.findings["desantis_2023/timeline"]
    assert "Replay of desantis_2023" in findings and "events (crash, operator, restart)" in findings


@pytest.mark.browser
def test_the_study_report_loads_in_a_real_browser(
    study_report: ReportResult, tmp_path: Path
) -> None:
    assert study_report.html.name == REPORT_HTML
    figures = sum(len(v) for v in study_report.figures.values())
    images = open_in_browser(study_report.html, figures, tmp_path / "study-report.png")
    alts = [str(alt) for *_, alt in images]
    assert alts == ["timeline", "failure curve", "sweep"]  # the parts in the study's order
