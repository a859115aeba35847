"""``spacesim report``: one self-contained HTML report from a run or sweep archive.

``build_report(archive, out, progress)`` decides which sections the archive supports, runs each
section's notebook (jupytext percent files in ``analysis/notebooks/``) with the archive and
``out`` injected into its ``parameters`` cell, and writes ``out/report.html``: the findings of
every section at the top (from the ``<section>.findings.json`` sidecars the notebooks write),
then each section's figures embedded as base64 PNG (readable offline), then the sections left
out and why (``ReportResult.skipped``, and ``not_applicable`` for a ``SPECIALISED`` section whose
kind of study the archive is not). Each notebook also leaves its figures as PNG and SVG, and
its executed ``.ipynb``, in ``out``.

Sections (``docs/report.md``): ``timeline`` (a run file with time series), ``metastability``
(runs with per-tick ``arrivals``/``attempts``/``joined`` judged by ``criterion=metastable`` or
found metastable), ``audio`` (runs with the audio fan-out on: a finite ``audio_delivered_ratio``),
``threshold`` (a sweep with a ``threshold.json``), ``policy`` (a ``threshold.json`` whose cells vary
an admission or client policy), ``calibration`` (a sweep dir with the ``calibration.json`` of
``spacesim calibrate``), ``sweep`` (a sweep archive of two or more runs with a swept parameter).
A replay run (``scenario.event`` set) gets its event's public data points on its timeline.

A **study** is a directory that holds no archive itself but has subdirectories that do (one level
down): ``build_report(study_dir, out)`` makes one part per subdirectory, in the order of the
optional ``study.json`` (``{"title", "answers": [...], "parts": [{"dir", "title"}, ...]}``; the
subdirectories it does not list follow, sorted; without it, all of them sorted), each part's files
in ``out/<dir>/`` (with its own ``report.html``), and one ``out/report.html``: the study's title
and ``answers`` first, then the findings of every part, then the parts.

``python -m sim.report ARCHIVE --out DIR`` runs it from the shell. The notebooks need the
``notebooks`` extra (ipykernel, nbclient, nbformat, jupytext).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.archive.reader import open_archive, resolve
from sim.archive.schema import RUN_H5, SWEEP_H5, ArchiveError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "analysis" / "notebooks"
THRESHOLD_JSON = "threshold.json"  # sim.sweep.THRESHOLD_JSON (not imported: it pulls in Hydra)
CALIBRATION_JSON = "calibration.json"  # sim.calibration.CALIBRATION_JSON (the same: Hydra)
STUDY_JSON = "study.json"
ARCHIVE_FILES = (RUN_H5, SWEEP_H5, THRESHOLD_JSON, CALIBRATION_JSON)
"""A directory holding one of these is an archive; one holding none, with subdirectories that
do, is a study (one part per subdirectory)."""
REPORT_HTML = "report.html"
KERNEL = "python3"
CELL_TIMEOUT_S = 600
STORM_SERIES = ("arrivals", "attempts", "joined")  # analysis.metastability.REQUIRED
AUDIO_METRIC = "audio_delivered_ratio"  # NaN (or absent) when the fan-out was off
POLICY_KEYS = ("admission", "client")  # analysis.policy.POLICY_KEYS

SECTIONS: dict[str, str] = {
    "timeline": "Run timeline",
    "metastability": "Metastability",
    "audio": "Audio",
    "threshold": "Failure threshold",
    "policy": "Policy comparison",
    "calibration": "Calibration",
    "sweep": "Sweep",
}
"""Section name (and notebook ``analysis/notebooks/<name>.py``) -> title, in report order."""

SPECIALISED = ("metastability", "audio", "policy", "calibration")
"""Sections for one kind of study: when the archive is not of that kind, the reason is kept in
``ReportResult.not_applicable`` (not ``skipped``); both are listed in the HTML."""


@dataclass
class ReportResult:
    """What ``build_report`` wrote: the HTML file, the sections made and those left out
    (``skipped``: a general section the archive cannot support, or any section whose notebook
    failed; ``not_applicable``: a ``SPECIALISED`` section for another kind of archive)."""

    html: Path
    sections: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    findings: dict[str, str] = field(default_factory=dict)
    figures: dict[str, list[Path]] = field(default_factory=dict)
    title: str = ""
    """The study's (or, for a part of one, the part's) title; empty for a single archive."""
    answers: list[str] = field(default_factory=list)
    """The study's answers (``study.json``), shown first."""
    parts: dict[str, ReportResult] = field(default_factory=dict)
    """A study's parts, by subdirectory, in report order (then ``sections``, ``findings``,
    ``figures``, ``skipped`` and ``not_applicable`` are keyed ``"<dir>/<section>"``)."""
    parts_left_out: dict[str, str] = field(default_factory=dict)
    """A study's parts that could not be read, by subdirectory, with the reason."""


@dataclass
class _Target:
    """Where an archive's parts are: its HDF5 file (if any), its ``threshold.json`` and its
    ``calibration.json`` (if any)."""

    h5: Path | None
    threshold: Path | None
    calibration: Path | None = None

    def only(self) -> str:
        """What the archive has when it has no HDF5 file: ``"only a threshold.json"``."""
        docs = [p.name for p in (self.threshold, self.calibration) if p is not None]
        return "only a " + " and a ".join(docs) if docs else "nothing"


def _locate(archive: Path) -> _Target:
    """The archive's HDF5 file and threshold document; ``ValueError`` when there is neither."""
    if not archive.exists():
        raise ArchiveError(f"{archive}: no such file or directory")
    folder = archive if archive.is_dir() else archive.parent
    doc, cal_doc = folder / THRESHOLD_JSON, folder / CALIBRATION_JSON
    thr = doc if doc.is_file() else None
    cal = cal_doc if cal_doc.is_file() else None
    if archive.is_file() and archive.name in (THRESHOLD_JSON, CALIBRATION_JSON):
        h5 = archive.parent / SWEEP_H5
        return _Target(h5 if h5.is_file() else None, thr, cal)
    if (
        archive.is_dir()
        and (thr is not None or cal is not None)
        and not any((archive / n).is_file() for n in (SWEEP_H5, RUN_H5))
    ):
        return _Target(None, thr, cal)
    return _Target(resolve(archive), thr, cal)


@dataclass
class _Runs:
    """What the run-based sections need to know of the archive's runs."""

    storm_series: int = 0  # runs with every STORM_SERIES column
    metastable_criterion: int = 0  # runs judged by criterion=metastable
    metastable: int = 0  # runs found metastable
    audio: int = 0  # runs with a finite AUDIO_METRIC
    audio_column: bool = False  # the summary has AUDIO_METRIC at all


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _survey(a: Any, columns: dict[str, Any]) -> _Runs:
    """Count the runs of an open archive that the metastability and audio sections can use."""
    import yaml

    runs = _Runs(audio_column=AUDIO_METRIC in columns)
    runs.audio = sum(1 for v in columns.get(AUDIO_METRIC, []) if _finite(v))
    runs.metastable = sum(1 for v in columns.get("metastable", []) if _finite(v) and float(v))
    for r in a.runs():
        if all(c in r.timeseries_units() for c in STORM_SERIES):
            runs.storm_series += 1
        try:
            doc = yaml.safe_load(r.config_yaml()) or {}
        except (KeyError, yaml.YAMLError):  # no stored config: only the verdict can tell
            continue
        criterion = doc.get("criterion") if isinstance(doc, dict) else None
        if isinstance(criterion, dict) and criterion.get("name") == "metastable":
            runs.metastable_criterion += 1
    return runs


def _policy_keys(threshold: Path) -> tuple[list[str], int]:
    """The policy keys (``POLICY_KEYS``) the cells of a ``threshold.json`` vary; its cells."""
    doc = json.loads(threshold.read_text())
    cells = doc.get("cells") or []
    values: dict[str, set[str]] = {k: set() for k in POLICY_KEYS}
    for c in cells:
        given: dict[str, str] = {}
        for o in c.get("overrides") or []:
            key, _, value = str(o).partition("=")
            given[key.lstrip("+~")] = value
        for k in POLICY_KEYS:
            values[k].add(given.get(k, ""))
    return [k for k in POLICY_KEYS if len(values[k]) > 1], len(cells)


def _plan(target: _Target) -> tuple[list[str], dict[str, str]]:
    """The sections the archive supports (in report order) and the others with the reason."""
    supported: list[str] = []
    skipped: dict[str, str] = {}
    is_sweep, n_runs, has_series, varied = False, 0, False, 0
    runs = _Runs()
    if target.h5 is not None:
        with open_archive(target.h5) as a:  # raises ArchiveError (a ValueError) on a non-archive
            is_sweep = a.is_sweep
            ids = a.run_ids()
            n_runs = len(ids)
            columns, _, params = a.table()
            if not is_sweep:
                series = a.run().timeseries()
                has_series = bool(series) and len(next(iter(series.values()))) > 0
            else:
                varied = sum(1 for p in params if len({repr(v) for v in columns[p]}) > 1)
            runs = _survey(a, columns)
            if not is_sweep and not has_series:
                runs.storm_series = 0
    if target.h5 is None:
        skipped["timeline"] = f"no run archive ({target.only()})"
    elif is_sweep:
        skipped["timeline"] = f"a sweep archive of {n_runs} runs, not a single run file"
    elif not has_series:
        skipped["timeline"] = "the run has no time series (output.timeseries=false or it failed)"
    else:
        supported.append("timeline")
    storm = " ".join(f"`{c}`" for c in STORM_SERIES)
    if target.h5 is None:
        skipped["metastability"] = f"no run archive ({target.only()})"
    elif not runs.storm_series:
        skipped["metastability"] = f"no run has the per-tick {storm} time series"
    elif not (runs.metastable_criterion or runs.metastable):
        skipped["metastability"] = (
            "no run is judged by criterion=metastable (a trigger end) or was found metastable"
        )
    else:
        supported.append("metastability")
    if target.h5 is None:
        skipped["audio"] = f"no run archive ({target.only()})"
    elif not runs.audio_column:
        skipped["audio"] = f"no fan-out metrics ({AUDIO_METRIC}) in the archive's summary"
    elif not runs.audio:
        skipped["audio"] = (
            f"{AUDIO_METRIC} is NaN in every run: the audio fan-out was off "
            "(platform.fanout.enabled=false)"
        )
    else:
        supported.append("audio")
    if target.threshold is None:
        skipped["threshold"] = f"no {THRESHOLD_JSON}: the archive is not from a threshold search"
    else:
        supported.append("threshold")
    keys, n_cells = ([], 0) if target.threshold is None else _policy_keys(target.threshold)
    if target.threshold is None:
        skipped["policy"] = f"no {THRESHOLD_JSON}: the archive is not from a threshold search"
    elif not keys:
        skipped["policy"] = (
            f"the {n_cells} cell(s) of {THRESHOLD_JSON} vary no admission or client policy"
        )
    else:
        supported.append("policy")
    if target.calibration is None:
        skipped["calibration"] = (
            f"no {CALIBRATION_JSON}: the archive is not from a calibration (spacesim calibrate)"
        )
    else:
        supported.append("calibration")
    if target.h5 is None or not is_sweep:
        skipped["sweep"] = "not a sweep archive (sweep.h5)"
    elif n_runs < 2:
        skipped["sweep"] = f"the sweep has {n_runs} run, at least 2 are needed"
    elif not varied:
        skipped["sweep"] = "no parameter varies between the sweep's runs"
    else:
        supported.append("sweep")
    return supported, skipped


def _notebook(section: str, archive: Path, out: Path) -> Any:
    """The section's notebook with ``archive`` and ``out`` in its parameters cell."""
    import jupytext  # type: ignore[import-untyped]
    import nbformat

    path = NOTEBOOKS / f"{section}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the {section} notebook is missing")
    nb = jupytext.read(path)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: needs exactly one cell tagged 'parameters', has {len(cells)}")
    cells[0].source = f"archive = {str(archive)!r}\nout = {str(out)!r}"
    # the project root first on the kernel's path, whatever its cwd: `import analysis`
    root = f"import sys\n\nsys.path.insert(0, {str(ROOT)!r})"
    nb.cells.insert(0, nbformat.v4.new_code_cell(root, metadata={"tags": ["injected"]}))
    return nb


def _execute(section: str, archive: Path, out: Path) -> dict[str, Any]:
    """Run the section's notebook; its sidecar (``section``, ``findings``, ``figures``)."""
    import nbformat
    from nbclient import NotebookClient

    nb = _notebook(section, archive, out)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,  # its "python" argv is this interpreter (jupyter_client swaps it)
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(ROOT)}},  # the kernel's cwd: `import analysis`
    )
    try:
        client.execute()
    finally:
        nbformat.write(nb, out / f"{section}.ipynb")
    sidecar = out / f"{section}.findings.json"
    if not sidecar.is_file():
        raise RuntimeError(f"the {section} notebook wrote no {sidecar.name}")
    doc: dict[str, Any] = json.loads(sidecar.read_text())
    return doc


def _last_line(exc: BaseException) -> str:
    """The last non-blank line: where a failed cell's traceback names the error."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    alt = html.escape(path.stem.replace("_", " "))
    return f'<img src="data:image/png;base64,{data}" alt="{alt}">'


_STYLE = """
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
img { max-width: 100%; display: block; margin: 1em 0; }
.findings { background: #f4f6f8; padding: 0.8em 1.2em; border-left: 4px solid #0072b2; }
code { background: #eee; padding: 0 0.2em; }
"""


def _head(title: str) -> list[str]:
    esc = html.escape
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
    ]


def _body(result: ReportResult, part: str = "") -> list[str]:
    """Each section with its findings and figures, then the sections left out and why. In a
    study (``part``: the subdirectory) the ids are ``<part>-<section>``, the headings one lower."""
    esc = html.escape
    h, prefix = ("h3", f"{part}-") if part else ("h2", "")
    data_part = f' data-part="{esc(part)}"' if part else ""
    parts: list[str] = []
    for section in result.sections:
        parts.append(f'<section id="{prefix}{section}"{data_part}>')
        parts.append(f"<{h}>{esc(SECTIONS[section])}</{h}>")
        if section in result.findings:
            parts.append(f"<p>{esc(result.findings[section])}</p>")
        parts += [_img(p) for p in result.figures.get(section, [])]
        parts.append("</section>")
    left_out = result.skipped | result.not_applicable
    if left_out:
        parts.append(f'<section id="{prefix}skipped"><{h}>Sections left out</{h}><ul>')
        parts += [
            f'<li data-section="{s}"{data_part}><b>{esc(SECTIONS.get(s, s))}</b>: '
            f"{esc(left_out[s])}</li>"
            for s in SECTIONS
            if s in left_out
        ]
        parts.append("</ul></section>")
    return parts


def _html(archive: Path, result: ReportResult) -> str:
    esc = html.escape
    parts = [
        *_head(f"spacesim report: {archive.name}"),
        f"<h1>{esc(result.title) if result.title else 'spacesim report'}</h1>",
        f"<p>Archive: <code>{esc(str(archive))}</code></p>",
        '<div class="findings"><h2>Findings</h2>',
    ]
    if result.findings:
        text = " ".join(esc(result.findings[s]) for s in result.sections if s in result.findings)
        parts.append(f'<p id="findings">{text}</p>')
    else:
        parts.append('<p id="findings">No section could be made from this archive.</p>')
    parts.append("</div>")
    parts += _body(result)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _study_html(path: Path, result: ReportResult) -> str:
    """The study's title and answers, the findings of every part, then the parts."""
    esc = html.escape
    parts = [
        *_head(f"spacesim study: {result.title}"),
        f'<h1 id="title">{esc(result.title)}</h1>',
    ]
    if result.answers:
        parts.append('<ul id="answers">')
        parts += [f"<li>{esc(a)}</li>" for a in result.answers]
        parts.append("</ul>")
    parts += [
        f"<p>Study: <code>{esc(str(path))}</code></p>",
        '<div class="findings" id="findings"><h2>Findings</h2>',
    ]
    for name, part in result.parts.items():
        text = " ".join(esc(part.findings[s]) for s in part.sections if s in part.findings)
        parts.append(
            f'<p id="findings-{esc(name)}" data-part="{esc(name)}"><b>{esc(part.title)}</b>: '
            f"{text or 'no section could be made from this part.'}</p>"
        )
    if not result.parts:
        parts.append("<p>No part of this study could be read.</p>")
    parts.append("</div>")
    for name, part in result.parts.items():
        parts.append(f'<section id="part-{esc(name)}" class="part"><h2>{esc(part.title)}</h2>')
        parts.append(f"<p>Archive: <code>{esc(str(path / name))}</code></p>")
        parts += _body(part, name)
        parts.append("</section>")
    if result.parts_left_out:
        parts.append('<section id="parts-left-out"><h2>Parts left out</h2><ul>')
        parts += [
            f'<li data-part="{esc(n)}"><b>{esc(n)}</b>: {esc(why)}</li>'
            for n, why in result.parts_left_out.items()
        ]
        parts.append("</ul></section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def build_report(archive: Path, out: Path, progress: bool = False) -> ReportResult:
    """Write ``out/report.html`` (and each section's figures and notebook) for ``archive``.

    ``archive``: a run or sweep directory, its ``run.h5``/``sweep.h5``, a ``threshold.json`` or
    ``calibration.json``, or a study directory (subdirectories that are archives: one part each,
    their files in ``out/<dir>/``; ``ReportResult.parts``). A path that is not an archive raises
    ``sim.archive.ArchiveError`` (a ``ValueError``). A section whose notebook fails is listed with
    the skipped ones, with the error.
    """
    archive = Path(archive).resolve()
    out = Path(out).resolve()
    study = _study(archive)
    if study is not None:
        return _build_study(archive, study, out, progress)
    result = _build_part(archive, out, progress)
    result.html.write_text(_html(archive, result))
    log.info(
        "report: %s (%d sections, %d skipped, %d not applicable)",
        result.html,
        len(result.sections),
        len(result.skipped),
        len(result.not_applicable),
    )
    return result


def _build_part(archive: Path, out: Path, progress: bool, desc: str = "report") -> ReportResult:
    """Run the notebooks of every section ``archive`` supports into ``out``; no HTML yet."""
    from tqdm import tqdm

    target = _locate(archive)
    supported, skipped = _plan(target)
    out.mkdir(parents=True, exist_ok=True)
    result = ReportResult(html=out / REPORT_HTML)
    log.info("report of %s: %s", archive, ", ".join(supported) or "no sections")
    for section, why in skipped.items():
        log.info("skipping %s: %s", section, why)
    folder = None if target.threshold is None else target.threshold.parent
    source = {
        "timeline": target.h5,
        "metastability": target.h5,
        "audio": target.h5,
        "sweep": target.h5,
        "threshold": target.threshold,
        "policy": folder,  # threshold.json and, when there, sweep.h5 (time to stable)
        "calibration": target.calibration,
    }
    bar = tqdm(supported, desc=desc, unit="section", disable=not progress)
    for section in bar:
        bar.set_postfix_str(section)
        path = source[section]
        assert path is not None  # _plan only keeps sections whose inputs exist
        try:
            doc = _execute(section, path, out)
        except Exception as exc:  # a failing notebook costs its section, not the report
            log.error("the %s section failed: %s", section, _last_line(exc))
            result.skipped[section] = f"its notebook failed: {_last_line(exc)}"
            continue
        result.sections.append(section)
        result.findings[section] = str(doc.get("findings", ""))
        result.figures[section] = [out / str(f) for f in doc.get("figures", [])]
    result.not_applicable = {s: why for s, why in skipped.items() if s in SPECIALISED}
    result.skipped |= {s: why for s, why in skipped.items() if s not in SPECIALISED}
    result.skipped = {s: result.skipped[s] for s in SECTIONS if s in result.skipped}
    return result


@dataclass
class _Study:
    """A study directory: its title, its answers and its parts (subdirectory, title), in order."""

    title: str
    answers: list[str]
    parts: list[tuple[str, str]]


def _is_archive_dir(path: Path) -> bool:
    return path.is_dir() and any((path / n).is_file() for n in ARCHIVE_FILES)


def _study(path: Path) -> _Study | None:
    """The study ``path`` is (``STUDY_JSON`` and/or archive subdirectories), or None when it is
    not a directory, is an archive itself, or has neither. A malformed ``study.json`` raises
    ``ArchiveError``."""
    if not path.is_dir() or _is_archive_dir(path):
        return None
    found = sorted(d.name for d in path.iterdir() if _is_archive_dir(d))
    doc_path = path / STUDY_JSON
    if not doc_path.is_file():
        return _Study(path.name, [], [(d, d) for d in found]) if found else None
    try:
        doc = json.loads(doc_path.read_text())
    except json.JSONDecodeError as exc:
        raise ArchiveError(f"{doc_path}: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ArchiveError(f"{doc_path}: must be a JSON object with title, answers, parts")
    title, answers, listed = doc.get("title", path.name), doc.get("answers", []), doc.get("parts")
    if not isinstance(title, str):
        raise ArchiveError(f"{doc_path}: title = {title!r}; want a string")
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ArchiveError(f"{doc_path}: answers = {answers!r}; want a list of strings")
    if listed is not None and not isinstance(listed, list):
        raise ArchiveError(f"{doc_path}: parts = {listed!r}; want a list")
    parts: list[tuple[str, str]] = []
    for i, part in enumerate(listed if listed is not None else []):
        name = part.get("dir") if isinstance(part, dict) else None
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise ArchiveError(
                f"{doc_path}: parts[{i}] = {part!r}; want {{'dir': SUBDIRECTORY, 'title': str}}"
            )
        parts.append((name, str(part.get("title") or name)))
    named = {name for name, _ in parts}
    parts += [(d, d) for d in found if d not in named]
    return _Study(title, list(answers), parts)


def _build_study(path: Path, study: _Study, out: Path, progress: bool) -> ReportResult:
    """One part per subdirectory into ``out/<dir>/`` (each with its own ``report.html``), then
    ``out/report.html`` of them all."""
    out.mkdir(parents=True, exist_ok=True)
    result = ReportResult(html=out / REPORT_HTML, title=study.title, answers=study.answers)
    log.info("study %s: %s", path, ", ".join(name for name, _ in study.parts) or "no parts")
    for name, title in study.parts:
        sub = path / name
        if not _is_archive_dir(sub):
            why = f"{sub}: no {', '.join(ARCHIVE_FILES)}"
            log.error("study part %s left out: %s", name, why)
            result.parts_left_out[name] = why
            continue
        try:
            part = _build_part(sub, out / name, progress, desc=f"report {name}")
        except ValueError as exc:  # ArchiveError: a broken archive costs its part
            log.error("study part %s left out: %s", name, exc)
            result.parts_left_out[name] = str(exc)
            continue
        part.title = title
        part.html.write_text(_html(sub, part))
        result.parts[name] = part
        result.sections += [f"{name}/{s}" for s in part.sections]
        result.findings |= {f"{name}/{s}": v for s, v in part.findings.items()}
        result.figures |= {f"{name}/{s}": v for s, v in part.figures.items()}
        result.skipped |= {f"{name}/{s}": v for s, v in part.skipped.items()}
        result.not_applicable |= {f"{name}/{s}": v for s, v in part.not_applicable.items()}
    result.html.write_text(_study_html(path, result))
    log.info(
        "report: %s (%d parts, %d sections, %d parts left out)",
        result.html,
        len(result.parts),
        len(result.sections),
        len(result.parts_left_out),
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sim.report ARCHIVE --out DIR``: 0 when written, 1 when no section could be
    made, 2 for a path that is not an archive."""
    parser = argparse.ArgumentParser(prog="spacesim report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "archive", type=Path, help="run/sweep directory, .h5, threshold.json or a study directory"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: ARCHIVE_DIR/report)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    archive: Path = args.archive
    out: Path = args.out or (archive if archive.is_dir() else archive.parent) / "report"
    try:
        result = build_report(archive, out, progress=not args.no_progress)
    except ValueError as exc:
        print(f"spacesim report: {exc}", file=sys.stderr)
        return 2
    for name, why in result.skipped.items():
        print(f"  left out {name}: {why}")
    for name, why in result.not_applicable.items():
        print(f"  not applicable {name}: {why}")
    for name, why in result.parts_left_out.items():
        print(f"  part left out {name}: {why}")
    print(f"report: {result.html} ({', '.join(result.sections) or 'no section'})")
    return 0 if result.sections else 1


if __name__ == "__main__":
    sys.exit(main())
