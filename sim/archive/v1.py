"""The reader of schema 1.x: one run, from a ``run.h5`` root or a ``/runs/<id>`` group of a sweep.

``V1Run`` presents a run through the methods of ``RunView``, the interface every version's reader
has (``LegacyRun`` in ``sim.archive.legacy`` for 0.1.x), so the public functions of
``sim.archive.reader`` never look at a layout themselves. A 1.x reader reads every 1.y file: it
asks only for what 1.0 defines and ignores the rest. Attributes are read lazily and once
(``CachedAttrs``), because h5py reads them one call at a time and a merge reads 1,000 runs.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import h5py
import numpy as np

from sim.archive.schema import EVENT_FIELDS, ArchiveError, Scalar, scalar

#: how much larger than its file a dataset may read back (gzip packs at most ~1,000:1)
MAX_EXPANSION = 2_000


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


MAX_ATTR_VALUES = 1 << 20


class SafeAttrs:
    """An object's attributes, each checked before h5py reads it: of a type the writer writes
    (text, bool, integers and floats of at most 8 bytes), scalar or 1-D and not huge. HDF5 reads a
    damaged attribute's type or shape out of bounds (a crash), so a damaged one is an
    ``ArchiveError``."""

    def __init__(self, obj: h5py.HLObject) -> None:
        self._obj = obj
        self._attrs = obj.attrs

    def _check(self, name: str) -> None:
        aid = h5py.h5a.open(self._obj.id, name.encode())
        shape = aid.shape
        if not _field_ok(aid.dtype) or (
            shape is not None and (len(shape) > 1 or int(np.prod(shape)) > MAX_ATTR_VALUES)
        ):
            raise ArchiveError(
                f"{self._obj.name}: attribute {name!r} of type {aid.dtype} and shape {shape} "
                "is damaged"
            )

    def __contains__(self, name: str) -> bool:
        return name in self._attrs

    def __getitem__(self, name: str) -> Any:
        self._check(name)
        return self._attrs[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._attrs else default

    def keys(self) -> list[str]:
        return list(self._attrs.keys())

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self[k]) for k in self.keys()]


def attrs_of(obj: h5py.HLObject) -> SafeAttrs:
    """``obj.attrs``, each checked before it is read (``SafeAttrs``)."""
    return SafeAttrs(obj)


def strings_attr(obj: h5py.HLObject, name: str) -> list[str]:
    """A 1-D string attribute as a list (empty when absent)."""
    v = attrs_of(obj).get(name)
    if v is None:
        return []
    return [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(v).tolist()]


def _field_ok(dt: np.dtype[Any]) -> bool:
    """A type the writer writes: bool, an integer or float of at most 8 bytes, UTF-8 text."""
    if h5py.check_string_dtype(dt) is not None:
        return True
    return dt.kind in "biuf" and dt.itemsize <= 8 and dt.shape == () and dt.names is None


def checked(d: h5py.Dataset) -> h5py.Dataset:
    """``d`` if its type and size are what the writer writes, else an ``ArchiveError``.

    A damaged file may declare a type or a size HDF5 would read into memory it did not
    allocate, or for ever: overlapping or odd compound fields, huge dataspaces."""
    dt = d.dtype
    if dt.names is not None:
        end = 0
        for name in dt.names:
            sub, offset = dt.fields[name][:2]
            if offset < end or not _field_ok(sub):
                raise ArchiveError(f"{d.name}: field {name!r} of type {sub} at {offset} is damaged")
            end = offset + sub.itemsize
        if end > dt.itemsize:
            raise ArchiveError(f"{d.name}: compound type of {dt.itemsize} bytes is damaged")
    elif not _field_ok(dt):
        raise ArchiveError(f"{d.name}: type {dt} is not one an archive holds")
    if d.shape is not None:
        if len(d.shape) > 1:
            raise ArchiveError(f"{d.name}: {len(d.shape)}-D, not 1-D")
        limit = MAX_EXPANSION * os.path.getsize(d.file.filename) + (1 << 20)
        if d.size * dt.itemsize > limit:
            raise ArchiveError(f"{d.name}: {d.size} values of {dt.itemsize} bytes, a damaged size")
    return d


def read_row(d: h5py.Dataset) -> dict[str, Scalar]:
    """The one-row ``/summary`` of a 1.x run as ``{dotted key: scalar}`` (``missing`` → None)."""
    if checked(d).shape is None:
        return {}
    if d.shape != (1,):
        raise ArchiveError(f"{d.name}: shape {d.shape}, not one row")
    row = d[0]
    missing = set(strings_attr(d, "missing"))
    return {k: None if k in missing else _value(row[k], k) for k in d.dtype.names or ()}


def strings(d: h5py.Dataset) -> list[str]:
    """A 1-D text dataset as a list."""
    if h5py.check_string_dtype(checked(d).dtype) is None:
        raise ArchiveError(f"{d.name}: type {d.dtype}, not text")
    return [str(s) for s in d.asstr()[:]]


_ABSENT = object()


class CachedAttrs:
    """An object's attributes, each read at most once and only when asked for (h5py reads them
    one by one, and a merge of 1,000 runs asks for a few of each)."""

    def __init__(self, obj: h5py.HLObject) -> None:
        self._attrs = attrs_of(obj)
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
        return {k: _value(v, k) for k, v in attrs_of(self.group["config/parameters"]).items()}

    def config_yaml(self) -> str:
        return str(attrs_of(self.group["config"])["yaml"])

    def config_sha256(self) -> str:
        return str(attrs_of(self.group["config"])["sha256"])

    def overrides(self) -> list[str]:
        return strings(self.group["config/overrides"])

    def provenance(self) -> dict[str, Any]:
        p = self.group["provenance"]
        out: dict[str, Any] = {k: str(v) for k, v in attrs_of(p).items()}
        return out | {"libraries": {k: str(v) for k, v in attrs_of(p["libraries"]).items()}}

    def seeds(self) -> dict[str, Any]:
        return {k: _attr(v, k) for k, v in attrs_of(self.group["seeds"]).items()}

    def time_base(self) -> dict[str, Any]:
        return {k: _value(v, k) for k, v in attrs_of(self.group["timeseries"]).items()}

    def timeseries(self) -> dict[str, np.ndarray]:
        g = self.group["timeseries"]
        return {
            k: d.asstr()[:] if h5py.check_string_dtype(d.dtype) else d[:]
            for k, d in ((k, checked(d)) for k, d in g.items())
        }

    def timeseries_units(self) -> dict[str, str]:
        return {k: str(attrs_of(d).get("units", "")) for k, d in self.group["timeseries"].items()}

    def events(self) -> list[dict[str, Any]]:
        d = checked(self.group["events"])
        if d.dtype.names != EVENT_FIELDS:
            raise ArchiveError(f"{d.name}: fields {d.dtype.names}, not {EVENT_FIELDS}")
        rows = [] if d.shape is None else d[:]
        out = []
        for r in rows:
            t, *texts = r
            strings = [s.decode() if isinstance(s, bytes) else str(s) for s in texts]
            out.append(dict(zip(EVENT_FIELDS, [float(t), *strings], strict=True)))
        return out
