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
an admission or client policy), ``sweep`` (a sweep archive of two or more runs with a swept
parameter).

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
    "sweep": "Sweep",
}
"""Section name (and notebook ``analysis/notebooks/<name>.py``) -> title, in report order."""

SPECIALISED = ("metastability", "audio", "policy")
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


@dataclass
class _Target:
    """Where an archive's parts are: its HDF5 file (if any) and its ``threshold.json`` (if any)."""

    h5: Path | None
    threshold: Path | None


def _locate(archive: Path) -> _Target:
    """The archive's HDF5 file and threshold document; ``ValueError`` when there is neither."""
    if not archive.exists():
        raise ArchiveError(f"{archive}: no such file or directory")
    if archive.is_file() and archive.name == THRESHOLD_JSON:
        h5 = archive.parent / SWEEP_H5
        return _Target(h5 if h5.is_file() else None, archive)
    folder = archive if archive.is_dir() else archive.parent
    doc = folder / THRESHOLD_JSON
    thr = doc if doc.is_file() else None
    if (
        archive.is_dir()
        and thr is not None
        and not any((archive / n).is_file() for n in (SWEEP_H5, RUN_H5))
    ):
        return _Target(None, thr)
    return _Target(resolve(archive), thr)


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
        skipped["timeline"] = "no run archive (only a threshold.json)"
    elif is_sweep:
        skipped["timeline"] = f"a sweep archive of {n_runs} runs, not a single run file"
    elif not has_series:
        skipped["timeline"] = "the run has no time series (output.timeseries=false or it failed)"
    else:
        supported.append("timeline")
    storm = " ".join(f"`{c}`" for c in STORM_SERIES)
    if target.h5 is None:
        skipped["metastability"] = "no run archive (only a threshold.json)"
    elif not runs.storm_series:
        skipped["metastability"] = f"no run has the per-tick {storm} time series"
    elif not (runs.metastable_criterion or runs.metastable):
        skipped["metastability"] = (
            "no run is judged by criterion=metastable (a trigger end) or was found metastable"
        )
    else:
        supported.append("metastability")
    if target.h5 is None:
        skipped["audio"] = "no run archive (only a threshold.json)"
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


def _html(archive: Path, result: ReportResult) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>spacesim report: {esc(archive.name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>spacesim report</h1>",
        f"<p>Archive: <code>{esc(str(archive))}</code></p>",
        '<div class="findings"><h2>Findings</h2>',
    ]
    if result.findings:
        text = " ".join(esc(result.findings[s]) for s in result.sections if s in result.findings)
        parts.append(f'<p id="findings">{text}</p>')
    else:
        parts.append('<p id="findings">No section could be made from this archive.</p>')
    parts.append("</div>")
    for section in result.sections:
        parts.append(f'<section id="{section}"><h2>{esc(SECTIONS[section])}</h2>')
        if section in result.findings:
            parts.append(f"<p>{esc(result.findings[section])}</p>")
        parts += [_img(p) for p in result.figures.get(section, [])]
        parts.append("</section>")
    left_out = result.skipped | result.not_applicable
    if left_out:
        parts.append('<section id="skipped"><h2>Sections left out</h2><ul>')
        parts += [
            f'<li data-section="{s}"><b>{esc(SECTIONS.get(s, s))}</b>: {esc(left_out[s])}</li>'
            for s in SECTIONS
            if s in left_out
        ]
        parts.append("</ul></section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def build_report(archive: Path, out: Path, progress: bool = False) -> ReportResult:
    """Write ``out/report.html`` (and each section's figures and notebook) for ``archive``.

    ``archive``: a run or sweep directory, its ``run.h5``/``sweep.h5``, or a ``threshold.json``.
    A path that is not an archive raises ``sim.archive.ArchiveError`` (a ``ValueError``). A
    section whose notebook fails is listed with the skipped ones, with the error.
    """
    from tqdm import tqdm

    archive = Path(archive).resolve()
    out = Path(out).resolve()
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
    }
    bar = tqdm(supported, desc="report", unit="section", disable=not progress)
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
    result.html.write_text(_html(archive, result))
    log.info(
        "report: %s (%d sections, %d skipped, %d not applicable)",
        result.html,
        len(result.sections),
        len(result.skipped),
        len(result.not_applicable),
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sim.report ARCHIVE --out DIR``: 0 when written, 1 when no section could be
    made, 2 for a path that is not an archive."""
    parser = argparse.ArgumentParser(prog="spacesim report", description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path, help="run/sweep directory, .h5 or threshold.json")
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
    print(f"report: {result.html} ({', '.join(result.sections) or 'no section'})")
    return 0 if result.sections else 1


if __name__ == "__main__":
    sys.exit(main())
