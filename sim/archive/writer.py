"""The one writer: every result of a run leaves it through ``write_run``.

A run hands its results over as a ``RunRecord`` (summary, time series, events, config, seeds,
status). ``write_run`` writes ``summary.json`` (for people and scripts) and then ``run.h5``, the
archive of schema 1.0.0 (layout in ``docs/archive.md``). Both go to a temporary name
(``run.h5.tmp``), are flushed to disk and renamed, so a file under its final name is always whole,
whatever kills the process; ``run.h5`` is written last, so when it exists the run is complete. A
failed run writes the same files with ``status = "failed"`` and the error.

Nothing here knows the model: summary keys, time-series columns and events are written as they
come, with units from ``schema.units_of``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sim.archive.schema import (
    COMPRESSION,
    EVENT_DTYPE,
    EVENT_FIELDS,
    RUN_H5,
    RUN_SCHEMA,
    SCHEMA_VERSION,
    STATUS_FAILED,
    STATUS_OK,
    STATUSES,
    STR,
    SUMMARY_JSON,
    TMP_SUFFIX,
    ArchiveError,
    Scalar,
    check_name,
    config_sha256,
    flatten,
    scalar,
    units_of,
)

log = logging.getLogger(__name__)

LIBRARIES = ("numpy", "numba", "simpy", "scipy", "h5py", "hydra-core", "omegaconf")


@dataclass(frozen=True)
class RunRecord:
    """Everything a run hands to the writer.

    ``status`` defaults to ``failed`` when the run failed (``summary["engine_failed"]``, or
    ``summary["failed"]`` in a summary without it), else ``ok``: a room that failed its criterion
    is a run that worked. ``error`` defaults to ``summary["failure_reason"]`` for a failed run.
    ``parameters`` are the job's overrides as
    typed values (``{"seed": 3, "platform.nodes": 32}``), the sweep's summary table columns.
    ``job_num`` is the Hydra job number in a multirun (``None`` for a single run).
    """

    summary: Mapping[str, Any]
    timeseries: Mapping[str, np.ndarray] = field(default_factory=dict)
    events: Sequence[Mapping[str, Any]] = ()
    config_yaml: str = ""
    overrides: Sequence[str] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    seeds: Mapping[str, Any] = field(default_factory=dict)
    status: str | None = None
    error: str | None = None
    job_num: int | None = None
    tick_s: float = math.nan
    command_line: str = ""

    @property
    def final_status(self) -> str:
        status = self.status
        if status is None:
            # ``failed`` alone is the room's verdict (the criterion); the run failed when the
            # engine did (``engine_failed``; a record without it is the runner's failed summary)
            run_failed = self.summary.get("engine_failed", self.summary.get("failed"))
            status = STATUS_FAILED if run_failed else STATUS_OK
        if status not in STATUSES:
            raise ArchiveError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        return status

    @property
    def final_error(self) -> str:
        if self.error is not None:
            return self.error
        if self.final_status == STATUS_OK:
            return ""
        return str(self.summary.get("failure_reason") or "")


# --- provenance -------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def software_version() -> str:
    """The installed spacesim version."""
    return _version("spacesim")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def _static_provenance() -> dict[str, str]:
    """What does not change within a process (cached: a worker writes many runs)."""
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_revision": _git("rev-parse", "HEAD") or "unknown",
        "git_dirty": "unknown" if dirty is None else str(bool(dirty)).lower(),
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
    }


def provenance(command_line: str = "") -> dict[str, str]:
    """Where, with what and by which command a file was made."""
    return {
        **_static_provenance(),
        "command_line": command_line or " ".join(sys.argv),
        "pid": str(os.getpid()),
    }


@functools.cache
def _library_versions() -> tuple[tuple[str, str], ...]:
    return tuple((lib, _version(lib)) for lib in LIBRARIES)  # cached: reading metadata is slow


def library_versions() -> dict[str, str]:
    return dict(_library_versions())


def created_now() -> str:
    """ISO 8601, UTC, to the second: ``2026-12-02T10:00:00+00:00``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_header(f: h5py.File | h5py.Group, schema_name: str, command_line: str) -> None:
    """The root attributes and ``/provenance`` that every archive starts with."""
    f.attrs["schema_name"] = schema_name
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["software_version"] = software_version()
    f.attrs["created"] = created_now()
    prov = f.create_group("provenance", track_order=True)
    for k, v in provenance(command_line).items():
        prov.attrs[k] = v
    libs = prov.create_group("libraries", track_order=True)
    for k, v in library_versions().items():
        libs.attrs[k] = v


# --- atomic files -----------------------------------------------------------------------------


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path) -> None:
    """Flush ``tmp`` to disk and rename it to ``final`` (atomic on POSIX), then flush the dir."""
    _fsync(tmp)
    os.replace(tmp, final)
    with contextlib.suppress(OSError):  # some file systems cannot open a directory
        _fsync(final.parent)


@contextlib.contextmanager
def atomic_h5(final: Path) -> Iterator[h5py.File]:
    """An HDF5 file written as ``final.tmp`` and renamed to ``final`` only if the block succeeds."""
    tmp = final.with_name(final.name + TMP_SUFFIX)
    try:
        with h5py.File(tmp, "w", track_order=True) as f:
            yield f
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish(tmp, final)


# --- summary.json -----------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return None if math.isnan(f) else f
    return value


def write_summary(run_dir: Path, summary: Mapping[str, Any], status: str) -> Path:
    """Write ``summary.json`` atomically: the summary plus ``status``; NaN becomes ``null``."""
    path = run_dir / SUMMARY_JSON
    tmp = path.with_name(path.name + TMP_SUFFIX)
    data = _jsonable(summary) | {"status": status}
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    publish(tmp, path)
    return path


# --- run.h5 -----------------------------------------------------------------------------------


def write_attr(group: h5py.Group, key: str, value: Any) -> None:
    """A scalar attribute (``None`` as ``""``), or a 1-D one for a list of scalars."""
    name = check_name(key)
    if isinstance(value, list | tuple):
        items = [scalar(key, v) for v in value]
        if any(isinstance(v, str) for v in items):
            group.attrs.create(name, data=["" if v is None else str(v) for v in items], dtype=STR)
        else:
            group.attrs[name] = np.array(items)
        return
    v = scalar(key, value)
    group.attrs[name] = "" if v is None else v


def _summary_field(key: str, value: Scalar) -> tuple[np.dtype[Any], Any]:
    if value is None:
        return np.dtype("f8"), math.nan
    if isinstance(value, str):
        return STR, value
    if isinstance(value, bool):
        return np.dtype("?"), value
    if isinstance(value, int):
        return np.dtype("i8"), value
    return np.dtype("f8"), value


def write_summary_table(f: h5py.Group, summary: Mapping[str, Any]) -> h5py.Dataset:
    """``/summary``: one row, one typed field per (flattened) scalar; attributes ``units`` (one
    per field, in field order) and ``missing`` (the fields that were ``None``)."""
    flat = dict(flatten(summary))
    if not flat:
        return f.create_dataset("summary", data=h5py.Empty("f8"))
    fields = [(k, *_summary_field(k, v)) for k, v in flat.items()]
    row = np.array([tuple(v for _, _, v in fields)], dtype=[(k, t) for k, t, _ in fields])
    d = f.create_dataset("summary", data=row)
    d.attrs.create("units", data=[units_of(k, v) for k, v in flat.items()], dtype=STR)
    d.attrs.create("missing", data=[k for k, v in flat.items() if v is None], dtype=STR)
    return d


def _column(key: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ArchiveError(f"time-series column {key} has shape {arr.shape}: not 1-D, one per tick")
    return arr


def write_strings(group: h5py.Group, name: str, values: Sequence[str]) -> h5py.Dataset:
    """A 1-D dataset of variable-length UTF-8 strings (empty when ``values`` is)."""
    data = np.array(list(values), dtype=object)
    return group.create_dataset(name, data=data, dtype=STR, **(COMPRESSION if len(data) else {}))


def _event_row(event: Mapping[str, Any]) -> tuple[float, str, str, str]:
    t = event.get("t_s")
    detail = str(event.get("detail") or "")
    extra = {k: v for k, v in event.items() if k not in EVENT_FIELDS}
    if extra:  # kept, not dropped: the schema has four fields, the rest goes into detail
        text = json.dumps(_jsonable(extra), sort_keys=True, default=str)
        detail = f"{detail}\n{text}" if detail else text
    return (
        math.nan if t is None else float(t),
        str(event.get("kind") or ""),
        str(event.get("target") or ""),
        detail,
    )


def write_events(f: h5py.Group, events: Sequence[Mapping[str, Any]]) -> h5py.Dataset:
    """``/events``: a compound table ``(t_s, kind, target, detail)``, empty when none."""
    rows = np.array([_event_row(e) for e in events], dtype=EVENT_DTYPE)
    d = f.create_dataset("events", data=rows, **(COMPRESSION if len(rows) else {}))
    d.attrs["t_s_units"] = "s"
    return d


def _fill_run(f: h5py.File, record: RunRecord) -> None:
    status = record.final_status
    write_header(f, RUN_SCHEMA, record.command_line)
    f.attrs["status"] = status
    f.attrs["error"] = record.final_error
    if record.job_num is not None:
        f.attrs["job_num"] = np.int64(record.job_num)

    cfg = f.create_group("config", track_order=True)
    cfg.attrs["yaml"] = record.config_yaml
    cfg.attrs["sha256"] = config_sha256(record.config_yaml)
    write_strings(cfg, "overrides", record.overrides)
    params = cfg.create_group("parameters", track_order=True)
    for k, v in record.parameters.items():
        write_attr(params, k, scalar(k, v))

    seeds = f.create_group("seeds", track_order=True)
    for k, v in record.seeds.items():
        write_attr(seeds, k, v)

    write_summary_table(f, record.summary)

    ts = f.create_group("timeseries", track_order=True)
    ts.attrs["time"] = "t_s"
    ts.attrs["tick_s"] = float(record.tick_s)
    ts.attrs["time_base"] = "t_s is the end of each tick, in s from the start of the simulation"
    for k, values in record.timeseries.items():
        arr = _column(k, values)
        if arr.dtype.kind in "OUS":
            d = write_strings(ts, check_name(k), [str(x) for x in arr])
        else:
            d = ts.create_dataset(check_name(k), data=arr, **(COMPRESSION if arr.size else {}))
        d.attrs["units"] = units_of(k, arr)

    write_events(f, record.events)


def write_archive(run_dir: Path, record: RunRecord) -> Path:
    """Write ``run.h5`` (schema 1.0.0) atomically; returns its path."""
    path = run_dir / RUN_H5
    with atomic_h5(path) as f:
        _fill_run(f, record)
    return path


def _check_keys(summary: Mapping[str, Any], prefix: str = "") -> None:
    for key, value in summary.items():
        if "." in str(key) or not str(key):
            raise ArchiveError(
                f"summary key {prefix}{key!r} is empty or has a '.' (nested keys join with '.')"
            )
        if isinstance(value, Mapping):
            _check_keys(value, f"{prefix}{key}.")


def check_record(record: RunRecord) -> None:
    """Refuse a record the schema cannot hold before anything is written."""
    _check_keys(record.summary)
    list(flatten(record.summary))
    for key, values in record.timeseries.items():
        _column(check_name(key), values)
    for key, value in [*record.parameters.items(), *record.seeds.items()]:
        check_name(key)
        for v in value if isinstance(value, list | tuple) else [value]:
            scalar(key, v)
    _ = record.final_status


def write_run(run_dir: Path, record: RunRecord, *, archive: bool = True) -> None:
    """The one writer of a run's results: ``summary.json``, then (when asked) ``run.h5``."""
    check_record(record)
    run_dir.mkdir(parents=True, exist_ok=True)
    status = record.final_status
    write_summary(run_dir, record.summary, status)
    if archive:
        write_archive(run_dir, record)
    log.debug("wrote %s (%s)", run_dir, status)
