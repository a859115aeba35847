"""The one reader: archives back into Python and pandas, whatever their schema version.

``open_archive(path)`` checks what a file is before anything reads it: a file that is not HDF5,
is truncated or damaged, is not a spacesim archive, or has a major schema version this spacesim
does not know raises an ``ArchiveError`` (a ``ValueError``) naming the file and the problem. It
then presents the file as an ``Archive`` of one or more runs, each a ``RunView``: ``V1Run``
(``sim.archive.v1``) for schema 1.x, ``LegacyRun`` (``sim.archive.legacy``) for 0.1.x. The
functions below are the public API and return pandas objects:

- ``read_summary(path)``: one row per run (one row for a run file), see ``sim.archive.table``;
- ``read_timeseries(path, run=None)``: long format, ``run``, ``t_s`` and one column per metric;
- ``read_events(path, run=None)``: ``run``, ``t_s``, ``kind``, ``target``, ``detail``;
- ``read_config(path, run=None)``: the resolved config of one run as a dict.

``run`` is a Hydra job number; ``None`` means every run (``read_config``: the only run). A path may
also be a run or sweep directory (its ``sweep.h5``, else its ``run.h5``). pandas is imported only
when a function needs it: the simulation path imports the writer, never pandas.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from sim.archive.legacy import VERSION_PREFIX, LegacyRun
from sim.archive.schema import (
    EVENT_FIELDS,
    RUN_H5,
    RUN_SCHEMA,
    SCHEMA_VERSION,
    SWEEP_H5,
    SWEEP_SCHEMA,
    ArchiveError,
    parse_version,
)
from sim.archive.table import build_table, read_table, summary_row
from sim.archive.v1 import CachedAttrs, RunView, V1Run, strings

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SUPPORTED = "0.1.x and 1.x"

#: what reading a damaged file raises (h5py: OSError, KeyError, RuntimeError, ValueError...;
#: decoding: UnicodeError, a ValueError; numpy: OverflowError, MemoryError), made ArchiveErrors
DAMAGE = (
    OSError,
    LookupError,
    RuntimeError,
    TypeError,
    ValueError,
    AttributeError,
    ArithmeticError,
    MemoryError,
    RecursionError,
)
_MAJOR = parse_version(SCHEMA_VERSION)[0]


class Archive:
    """An open archive: a run file (one run) or a sweep file (``/runs/<id>``, ``/summary``)."""

    def __init__(self, path: Path, f: h5py.File) -> None:
        self.path = path
        self.file = f
        attrs = self.attrs = CachedAttrs(f)
        if "schema_version" not in attrs:
            raise ArchiveError(f"{path}: not a spacesim archive (no schema_version attribute)")
        self.schema_version = str(attrs["schema_version"])
        try:
            version = parse_version(self.schema_version)
        except ArchiveError as exc:
            raise ArchiveError(f"{path}: {exc}") from None
        self.legacy = version[:2] == VERSION_PREFIX
        if version[0] != _MAJOR and not self.legacy:
            raise ArchiveError(
                f"{path}: schema version {self.schema_version} is not supported by this "
                f"spacesim (it reads {SUPPORTED}); a newer spacesim may read it"
            )
        self.schema_name = str(attrs.get("schema_name") or attrs.get("kind", ""))
        if self.schema_name not in (RUN_SCHEMA, SWEEP_SCHEMA):
            raise ArchiveError(
                f"{path}: schema_name {self.schema_name!r} is neither {RUN_SCHEMA} nor "
                f"{SWEEP_SCHEMA}"
            )
        self.is_sweep = self.schema_name == SWEEP_SCHEMA

    def run_ids(self) -> list[int]:
        if self.is_sweep:
            return sorted(int(k) for k in self.file["runs"])
        if self.legacy:
            return [0]
        n = self.attrs.get("job_num")
        return [0 if n is None else int(n)]

    def run(self, run_id: int | str | None = None) -> RunView:
        ids = self.run_ids()
        if run_id is None:
            if len(ids) != 1:
                raise ArchiveError(f"{self.path} holds {len(ids)} runs: name one (run=...)")
            run_id = ids[0]
        rid = int(run_id)
        if rid not in ids:
            shown = ", ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "")
            raise ArchiveError(f"{self.path}: no run {rid} (runs: {shown or 'none'})")
        if self.is_sweep:
            return V1Run(self.file["runs"][str(rid)], rid)
        if self.legacy:
            return LegacyRun(self.file, rid)
        return V1Run(self.file, rid, self.attrs)

    def runs(self, run_id: int | str | None = None) -> Iterator[RunView]:
        """The runs asked for: one, or (``None``) all."""
        if run_id is not None:
            yield self.run(run_id)
            return
        for rid in self.run_ids():
            yield self.run(rid)

    def table(self) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
        """The summary table: ``(columns, units, parameter names)``."""
        if self.is_sweep:
            return read_table(self.file["summary"])
        run = self.run()
        return build_table([summary_row(run.run_id, run.status(), run.parameters(), run.summary())])

    def problems(self) -> list[str]:
        """What the merge of a sweep reported (files left out and why); empty for a run."""
        if self.is_sweep and "problems" in self.file:
            return strings(self.file["problems"])
        return []


def resolve(path: str | Path) -> Path:
    """A file, or the ``sweep.h5`` (else ``run.h5``) of a directory."""
    p = Path(path)
    if p.is_dir():
        for name in (SWEEP_H5, RUN_H5):
            if (p / name).is_file():
                return p / name
        raise ArchiveError(f"{p}: a directory with neither {SWEEP_H5} nor {RUN_H5}")
    return p


_GCOL = b"GCOL\x01\x00\x00\x00"  # a global heap collection, version 1
_OBJ_HEADER = 16  # index (2), reference count (2), reserved (4), size (8)


def check_global_heaps(p: Path) -> None:
    """Refuse a file whose global heap collections (where HDF5 keeps variable-length strings,
    unchecksummed) are damaged: HDF5 reads a collection whose size or objects do not add up for
    ever, or out of bounds. Each collection must lie in the file, and its objects must fill it
    exactly, the free space (object 0, its size counting its header) last."""
    import mmap

    with p.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            at = m.find(_GCOL)
            while at >= 0:
                _check_collection(p, m, at, size)
                at = m.find(_GCOL, at + 1)


def _check_collection(p: Path, m: Any, at: int, file_size: int) -> None:
    (length,) = struct.unpack_from("<Q", m, at + 8) if at + 16 <= file_size else (0,)
    end = at + length
    if length < 4096 or end > file_size:
        raise ArchiveError(f"{p}: damaged archive (global heap at byte {at}: size {length})")
    pos = at + 16
    while end - pos >= _OBJ_HEADER:
        index, _refs, _reserved, obj = struct.unpack_from("<HHIQ", m, pos)
        need = _OBJ_HEADER + ((obj + 7) // 8) * 8
        if index == 0:  # the free space: the rest of the collection
            if pos + obj != end:
                raise ArchiveError(
                    f"{p}: damaged archive (global heap at byte {at}: free space {obj} bytes "
                    f"at {pos}, collection ends at {end})"
                )
            return
        if need > end - pos:
            raise ArchiveError(
                f"{p}: damaged archive (global heap at byte {at}: object {index} of {obj} "
                "bytes overruns it)"
            )
        pos += need


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextlib.contextmanager
def open_archive(path: str | Path) -> Iterator[Archive]:
    """Open an archive read-only; every failure to read it is an ``ArchiveError``."""
    p = resolve(path)
    if not p.exists():
        raise ArchiveError(f"{p}: no such file")
    try:
        # final names are never written again, so no lock is needed (and NFS often has none)
        f = h5py.File(p, "r", locking=False)
    except OSError as exc:
        raise ArchiveError(
            f"{p}: not a readable HDF5 file: truncated, damaged or not an archive "
            f"({_first_line(exc)})"
        ) from None
    try:
        check_global_heaps(p)  # before HDF5 reads any text
        yield Archive(p, f)
    except ArchiveError as exc:
        if str(p) in str(exc):
            raise
        # found by a check of one object (sim.archive.v1.checked, SafeAttrs): name the file
        raise ArchiveError(f"{p}: damaged archive ({exc})") from None
    except DAMAGE as exc:
        # a layout that is not what its version promises: missing or mistyped objects
        what = f"{type(exc).__name__}: {_first_line(exc)}"
        raise ArchiveError(f"{p}: damaged archive ({what})") from exc
    finally:
        f.close()


# --- the public API ---------------------------------------------------------------------------


def read_summary(path: str | Path) -> pd.DataFrame:
    """One row per run (one row for a run file): ``run``, ``status``, parameters, metrics.

    A missing value is NaN (``""`` in a text column on disk reads back as missing). Units are in
    ``df.attrs["units"]``, the parameter columns in ``df.attrs["parameters"]``.
    """
    import pandas as pd

    with open_archive(path) as a:
        columns, units, params = a.table()
    for name, values in columns.items():
        if values.dtype.kind == "O":
            columns[name] = np.array([None if v == "" else v for v in values], dtype=object)
    df = pd.DataFrame(columns)
    df.attrs["units"] = units
    df.attrs["parameters"] = params
    return df


def read_timeseries(path: str | Path, run: int | str | None = None) -> pd.DataFrame:
    """The per-tick time series in long format: ``run``, ``t_s``, one column per metric.

    Runs with different columns are joined with NaN where a run lacks one; a run without time
    series (a failed run) has no rows. Units are in ``df.attrs["units"]``.
    """
    import pandas as pd

    frames = []
    units: dict[str, str] = {"run": ""}
    with open_archive(path) as a:
        for r in a.runs(run):
            ts = r.timeseries()
            units |= r.timeseries_units()
            n = len(next(iter(ts.values()))) if ts else 0
            if n:
                frames.append(pd.DataFrame({"run": np.full(n, r.run_id, dtype=np.int64), **ts}))
    if not frames:
        return pd.DataFrame({"run": np.zeros(0, dtype=np.int64), "t_s": np.zeros(0)})
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    front = [c for c in ("run", "t_s") if c in df.columns]
    df = df[front + [c for c in df.columns if c not in front]]
    df.attrs["units"] = {c: units.get(c, "") for c in df.columns}
    return df


def read_events(path: str | Path, run: int | str | None = None) -> pd.DataFrame:
    """The events (crashes, restarts, operator actions, failures): ``run``, ``t_s``, ``kind``,
    ``target``, ``detail``; no rows when there were none."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    with open_archive(path) as a:
        for r in a.runs(run):
            rows += [{"run": r.run_id, **e} for e in r.events()]
    columns = ["run", *EVENT_FIELDS]
    if not rows:
        return pd.DataFrame(
            {
                "run": np.zeros(0, dtype=np.int64),
                "t_s": np.zeros(0),
                **{k: np.array([], dtype=object) for k in EVENT_FIELDS[1:]},
            }
        )
    return pd.DataFrame(rows, columns=columns)


def read_config(path: str | Path, run: int | str | None = None) -> dict[str, Any]:
    """The resolved config of one run as a dict (``run`` may be left out when there is one)."""
    from omegaconf import OmegaConf

    with open_archive(path) as a:
        text = a.run(run).config_yaml()
        try:
            data = OmegaConf.to_container(OmegaConf.create(text))
        except Exception as exc:  # YAML or OmegaConf errors of a damaged text
            raise ArchiveError(f"{a.path}: the stored config does not read ({exc})") from None
        if not isinstance(data, dict):
            raise ArchiveError(f"{a.path}: the stored config is not a mapping")
    return {str(k): v for k, v in data.items()}


def read_record(path: str | Path, run: int | str | None = None) -> dict[str, Any]:
    """Everything about one run, as plain Python (what ``spacesim inspect`` and resume use)."""
    with open_archive(path) as a:
        r = a.run(run)
        return {
            "run": r.run_id,
            "schema_version": r.schema_version,
            "software_version": r.software_version(),
            "created": r.created(),
            "status": r.status(),
            "error": r.error(),
            "job_num": r.job_num(),
            "config_sha256": r.config_sha256(),
            "overrides": r.overrides(),
            "parameters": r.parameters(),
            "seeds": r.seeds(),
            "provenance": r.provenance(),
            "summary": r.summary(),
            "summary_units": r.summary_units(),
            "time_base": r.time_base(),
            "timeseries_units": r.timeseries_units(),
        }
