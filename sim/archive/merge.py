"""Merging a sweep: every job's ``run.h5`` into one ``sweep.h5``, by its only writer, the parent.

HDF5 allows one writer per file, so the jobs of a sweep never share one: each writes its own
``run.h5`` in its job dir, and when the multirun ends the parent (``sim.callbacks.MergeSweep``, a
Hydra ``on_multirun_end`` callback) calls ``merge_sweep``. It opens each complete job file (final
name only) read-only, copies its root with ``h5py``'s object copy (chunks are copied as they are,
not recompressed) to ``/runs/<job number>`` of ``sweep.h5.tmp``, builds the summary table from the
same rows ``read_summary`` gives for a run file, and renames the file to ``sweep.h5``.

Nothing is skipped silently: a ``*.tmp`` left by a job that did not finish, a file that does not
open or read, a file of another schema, and two files claiming the same job number are listed in
the sweep's ``/problems`` and in the returned ``MergeReport``; the good runs are merged all the
same. A sweep dir holds one sweep: files of jobs that an earlier, different sweep left there are
merged too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sim.archive.reader import open_archive
from sim.archive.schema import (
    RUN_H5,
    RUN_SCHEMA,
    STATUS_OK,
    SWEEP_H5,
    SWEEP_SCHEMA,
    TMP_SUFFIX,
    ArchiveError,
)
from sim.archive.table import build_table, summary_row, write_table
from sim.archive.v1 import V1Run
from sim.archive.writer import atomic_h5, write_header, write_strings

log = logging.getLogger(__name__)


@dataclass
class MergeReport:
    """What a merge did: the sweep file, the runs merged, those not ``ok``, what was left out."""

    path: Path
    runs: list[int] = field(default_factory=list)
    not_ok: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.not_ok)


def job_files(sweep_dir: Path) -> tuple[list[Path], list[Path]]:
    """``(complete run files, incomplete *.tmp files)`` under ``sweep_dir``, in path order."""
    finals = sorted(sweep_dir.rglob(RUN_H5))
    own_tmp = sweep_dir / (SWEEP_H5 + TMP_SUFFIX)
    tmps = sorted(p for p in sweep_dir.rglob(f"*{TMP_SUFFIX}") if p != own_tmp)
    return finals, tmps


def merge_sweep(
    sweep_dir: Path,
    *,
    overrides: Sequence[str] = (),
    command_line: str = "",
    out: Path | None = None,
) -> MergeReport:
    """Merge the job files under ``sweep_dir`` into ``sweep_dir/sweep.h5`` (or ``out``)."""
    start = time.perf_counter()
    path = out or sweep_dir / SWEEP_H5
    report = MergeReport(path)
    finals, tmps = job_files(sweep_dir)
    report.problems += [f"{p}: incomplete (a job that did not finish), ignored" for p in tmps]
    rows = []
    seen: dict[int, Path] = {}
    with atomic_h5(path) as dst:
        write_header(dst, SWEEP_SCHEMA, command_line)
        dst.attrs["sweep_dir"] = str(sweep_dir.resolve())
        cfg = dst.create_group("config", track_order=True)
        write_strings(cfg, "overrides", overrides)
        runs = dst.create_group("runs")
        for p in finals:
            try:
                with open_archive(p) as a:
                    if a.legacy or a.schema_name != RUN_SCHEMA:
                        raise ArchiveError(
                            f"{p}: schema {a.schema_name} {a.schema_version}, not a "
                            f"{RUN_SCHEMA} 1.x file (rerun the job to rewrite it)"
                        )
                    src = a.run()
                    if not isinstance(src, V1Run):  # pragma: no cover - legacy refused above
                        raise ArchiveError(f"{p}: not a 1.x run")
                    num = src.job_num()
                    if num is None:
                        raise ArchiveError(f"{p}: no job number (not written by a multirun job)")
                    if num in seen:
                        raise ArchiveError(f"{p}: job {num} again (also {seen[num]}), ignored")
                    status = src.status()
                    row = summary_row(num, status, src.parameters(), src.summary())
                    try:
                        a.file.copy(a.file, runs, name=str(num))
                    except BaseException:
                        if str(num) in runs:  # no half-copied run in the sweep
                            del runs[str(num)]
                        raise
            except ArchiveError as exc:
                report.problems.append(str(exc))
                continue
            seen[num] = p
            rows.append(row)
            if status != STATUS_OK:
                report.not_ok[num] = status
        order = sorted(range(len(rows)), key=lambda i: int(rows[i][0]["run"] or 0))
        columns, units, params = build_table(rows[i] for i in order)
        write_table(dst, "summary", columns, units, params)
        write_strings(dst, "problems", report.problems)
        dst.attrs["runs"] = len(rows)
    report.runs = sorted(seen)
    report.seconds = time.perf_counter() - start
    for problem in report.problems:
        log.warning("merge: %s", problem)
    log.info("merged %d runs into %s in %.2f s", len(rows), path, report.seconds)
    return report
