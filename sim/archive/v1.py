"""The reader of schema 1.x: one run, from a ``run.h5`` root or a ``/runs/<id>`` group of a sweep.

``V1Run`` presents a run through the methods of ``RunView``, the interface every version's reader
has (``LegacyRun`` in ``sim.archive.legacy`` for 0.1.x), so the public functions of
``sim.archive.reader`` never look at a layout themselves. A 1.x reader reads every 1.y file: it
asks only for what 1.0 defines and ignores the rest. Attributes are read lazily and once
(``CachedAttrs``), because h5py reads them one call at a time and a merge reads 1,000 runs.
"""

from __future__ import annotations

from typing import Any, Protocol

import h5py
import numpy as np

from sim.archive.schema import EVENT_FIELDS, Scalar, scalar


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
