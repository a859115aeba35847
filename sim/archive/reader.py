"""The one reader: archives back into Python and pandas, whatever their schema version.

``open_archive(path)`` checks what a file is before anything reads it: a file that is not HDF5,
is truncated or damaged, is not a spacesim archive, or has a major schema version this spacesim
does not know raises an ``ArchiveError`` (a ``ValueError``) naming the file and the problem. It
then presents the file as an ``Archive`` of one or more runs, each a ``RunView``: ``V1Run`` for
schema 1.x, ``LegacyRun`` (``sim.archive.legacy``) for 0.1.x. The functions below are the public
API and return pandas objects:

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
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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
    Scalar,
    parse_version,
    scalar,
)
from sim.archive.table import build_table, read_table, summary_row

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SUPPORTED = "0.1.x and 1.x"
_MAJOR = parse_version(SCHEMA_VERSION)[0]


class RunView(Protocol):
    """One run of an archive, whatever its schema version."""

    run_id: int
    schema_version: str

    def status(self) -> str: ...
    def error(self) -> str: ...
    def job_num(self) -> int | None: ...
    def created(self) -> str: ...
    def software_version(self) -> str: ...
    def summary(self) -> dict[str, Any]: ...
    def summary_units(self) -> dict[str, str]: ...
    def parameters(self) -> dict[str, Scalar]: ...
    def config_yaml(self) -> str: ...
    def config_sha256(self) -> str: ...
    def overrides(self) -> list[str]: ...
    def provenance(self) -> dict[str, Any]: ...
    def seeds(self) -> dict[str, Any]: ...
    def time_base(self) -> dict[str, Any]: ...
    def timeseries(self) -> dict[str, np.ndarray]: ...
    def timeseries_units(self) -> dict[str, str]: ...
    def events(self) -> list[dict[str, Any]]: ...


def _value(v: Any, key: str = "") -> Scalar:
    if isinstance(v, bytes):
        v = v.decode()
    return scalar(key, v)


def _attr(v: Any, key: str = "") -> Any:
    """An attribute as Python: a scalar, or a list for a 1-D attribute."""
    if isinstance(v, np.ndarray):
        return [_value(x, key) for x in v.tolist()]
    return _value(v, key)


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"rejected.bucket": 3}`` → ``{"rejected": {"bucket": 3}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def strings_attr(obj: h5py.HLObject, name: str) -> list[str]:
    """A 1-D string attribute as a list (empty when absent)."""
    v = obj.attrs.get(name)
    if v is None:
        return []
    return [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(v).tolist()]


def read_row(d: h5py.Dataset) -> dict[str, Scalar]:
    """The one-row ``/summary`` of a 1.x run as ``{dotted key: scalar}`` (``missing`` → None)."""
    if d.shape is None:
        return {}
    row = d[0]
    missing = set(strings_attr(d, "missing"))
    return {k: None if k in missing else _value(row[k], k) for k in d.dtype.names or ()}


def _strings(d: h5py.Dataset) -> list[str]:
    return [str(s) for s in d.asstr()[:]]


_ABSENT = object()


class CachedAttrs:
    """An object's attributes, each read at most once and only when asked for (h5py reads them
    one by one, and a merge of 1,000 runs asks for a few of each)."""

    def __init__(self, obj: h5py.HLObject) -> None:
        self._attrs = obj.attrs
        self._seen: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self._seen:
            self._seen[key] = self._attrs.get(key, _ABSENT)
        value = self._seen[key]
        return default if value is _ABSENT else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            raise KeyError(f"attribute {key!r}")
        return value

    def __contains__(self, key: str) -> bool:
        return self.get(key, _ABSENT) is not _ABSENT


class V1Run:
    """A run of schema 1.x: a ``run.h5`` root, or a ``/runs/<id>`` group of a ``sweep.h5``."""

    def __init__(self, group: h5py.Group, run_id: int, attrs: CachedAttrs | None = None) -> None:
        self.group = group
        self.run_id = run_id
        self.attrs = CachedAttrs(group) if attrs is None else attrs
        self.schema_version = str(self.attrs["schema_version"])

    def status(self) -> str:
        return str(self.attrs["status"])

    def error(self) -> str:
        return str(self.attrs.get("error", ""))

    def job_num(self) -> int | None:
        n = self.attrs.get("job_num")
        return None if n is None else int(n)

    def created(self) -> str:
        return str(self.attrs.get("created", ""))

    def software_version(self) -> str:
        return str(self.attrs.get("software_version", ""))

    def summary(self) -> dict[str, Any]:
        return unflatten(read_row(self.group["summary"]))

    def summary_units(self) -> dict[str, str]:
        d = self.group["summary"]
        if d.shape is None:
            return {}
        return dict(zip(d.dtype.names or (), strings_attr(d, "units"), strict=True))

    def parameters(self) -> dict[str, Scalar]:
        return {k: _value(v, k) for k, v in self.group["config/parameters"].attrs.items()}

    def config_yaml(self) -> str:
        return str(self.group["config"].attrs["yaml"])

    def config_sha256(self) -> str:
        return str(self.group["config"].attrs["sha256"])

    def overrides(self) -> list[str]:
        return _strings(self.group["config/overrides"])

    def provenance(self) -> dict[str, Any]:
        p = self.group["provenance"]
        out: dict[str, Any] = {k: str(v) for k, v in p.attrs.items()}
        return out | {"libraries": {k: str(v) for k, v in p["libraries"].attrs.items()}}

    def seeds(self) -> dict[str, Any]:
        return {k: _attr(v, k) for k, v in self.group["seeds"].attrs.items()}

    def time_base(self) -> dict[str, Any]:
        return {k: _value(v, k) for k, v in self.group["timeseries"].attrs.items()}

    def timeseries(self) -> dict[str, np.ndarray]:
        g = self.group["timeseries"]
        return {k: d.asstr()[:] if h5py.check_string_dtype(d.dtype) else d[:] for k, d in g.items()}

    def timeseries_units(self) -> dict[str, str]:
        return {k: str(d.attrs.get("units", "")) for k, d in self.group["timeseries"].items()}

    def events(self) -> list[dict[str, Any]]:
        rows = self.group["events"][:]
        out = []
        for r in rows:
            t, *texts = r
            strings = [s.decode() if isinstance(s, bytes) else str(s) for s in texts]
            out.append(dict(zip(EVENT_FIELDS, [float(t), *strings], strict=True)))
        return out


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
            return _strings(self.file["problems"])
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
        yield Archive(p, f)
    except ArchiveError:
        raise
    except (
        OSError,
        KeyError,
        RuntimeError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
    ) as exc:
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
    data = OmegaConf.to_container(OmegaConf.create(text))
    if not isinstance(data, dict):
        raise ArchiveError(f"{path}: the stored config is not a mapping")
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
            "time_base": r.time_base(),
            "timeseries_units": r.timeseries_units(),
        }
