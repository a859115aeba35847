"""``spacesim report``: one self-contained HTML report from a run or sweep archive.

``build_report(archive, out, progress)`` decides which sections the archive supports, runs each
section's notebook (jupytext percent files in ``analysis/notebooks/``) with the archive and
``out`` injected into its ``parameters`` cell, and writes ``out/report.html``: the findings of
every section at the top (from the ``<section>.findings.json`` sidecars the notebooks write),
then each section's figures embedded as base64 PNG (readable offline), then the sections left
out and why. Each notebook also leaves its figures as PNG and SVG, and its executed ``.ipynb``,
in ``out``.

Sections: ``timeline`` (a run file with time series), ``threshold`` (a sweep with a
``threshold.json``), ``sweep`` (a sweep archive of two or more runs with a swept parameter).

``python -m sim.report ARCHIVE --out DIR`` runs it from the shell. The notebooks need the
``notebooks`` extra (ipykernel, nbclient, nbformat, jupytext).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import logging
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

SECTIONS: dict[str, str] = {
    "timeline": "Run timeline",
    "threshold": "Failure threshold",
    "sweep": "Sweep",
}
"""Section name (and notebook ``analysis/notebooks/<name>.py``) -> title, in report order."""


@dataclass
class ReportResult:
    """What ``build_report`` wrote: the HTML file, the sections made and those left out."""

    html: Path
    sections: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
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


def _plan(target: _Target) -> tuple[list[str], dict[str, str]]:
    """The sections the archive supports (in report order) and the others with the reason."""
    supported: list[str] = []
    skipped: dict[str, str] = {}
    is_sweep, n_runs, has_series, varied = False, 0, False, 0
    if target.h5 is not None:
        with open_archive(target.h5) as a:  # raises ArchiveError (a ValueError) on a non-archive
            is_sweep = a.is_sweep
            ids = a.run_ids()
            n_runs = len(ids)
            if not is_sweep:
                series = a.run().timeseries()
                has_series = bool(series) and len(next(iter(series.values()))) > 0
            else:
                columns, _, params = a.table()
                varied = sum(1 for p in params if len({repr(v) for v in columns[p]}) > 1)
    if target.h5 is None:
        skipped["timeline"] = "no run archive (only a threshold.json)"
    elif is_sweep:
        skipped["timeline"] = f"a sweep archive of {n_runs} runs, not a single run file"
    elif not has_series:
        skipped["timeline"] = "the run has no time series (output.timeseries=false or it failed)"
    else:
        supported.append("timeline")
    if target.threshold is None:
        skipped["threshold"] = f"no {THRESHOLD_JSON}: the archive is not from a threshold search"
    else:
        supported.append("threshold")
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
    if result.skipped:
        parts.append('<section id="skipped"><h2>Sections left out</h2><ul>')
        parts += [
            f'<li data-section="{s}"><b>{esc(SECTIONS.get(s, s))}</b>: {esc(why)}</li>'
            for s, why in result.skipped.items()
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
    source = {"timeline": target.h5, "sweep": target.h5, "threshold": target.threshold}
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
    result.skipped |= skipped
    result.skipped = {s: result.skipped[s] for s in SECTIONS if s in result.skipped}
    result.html.write_text(_html(archive, result))
    log.info(
        "report: %s (%d sections, %d skipped)",
        result.html,
        len(result.sections),
        len(result.skipped),
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
    print(f"report: {result.html} ({', '.join(result.sections) or 'no section'})")
    return 0 if result.sections else 1


if __name__ == "__main__":
    sys.exit(main())
