"""What ``spacesim inspect ARCHIVE`` shows: an archive described without knowing its contents.

``describe`` reads any archive the reader accepts (a run or a sweep, schema 0.1.0 or 1.x) into a
plain, JSON-ready dict: what the file is (schema name and version, the spacesim that wrote it,
when), its provenance, one entry per run (``run``, ``status``, swept parameters and every
summary metric), the units of the summary columns, every dataset with its shape, type and units
(for a sweep, those of its first run stand for all runs' layout), and the problems a merge
reported. ``format_text`` lays that out as aligned text for people; ``--json`` prints the dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sim.archive.reader import open_archive
from sim.archive.v1 import RunView, V1Run, attrs_of, strings_attr

KEY_METRICS = (
    "arrivals",
    "attempts",
    "joined",
    "abandoned",
    "join_latency_p99_s",
    "peak_concurrent",
    "wall_s",
)
MAX_TEXT_RUNS = 100


def _plain(value: Any) -> Any:
    """Python values JSON can hold: NaN becomes ``None``."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _dtype(dt: np.dtype[Any]) -> str:
    if dt.names:
        return f"compound({len(dt.names)} fields)"
    if h5py.check_string_dtype(dt):
        return "string"
    return str(dt)


def _fields(d: h5py.Dataset) -> list[dict[str, str]]:
    """The fields of a compound dataset with their units (``units``: one per field)."""
    names = d.dtype.names or ()
    units = strings_attr(d, "units")
    if len(units) != len(names):
        units = ["s" if n == "t_s" else "" for n in names]  # /events: t_s_units
    return [
        {"name": n, "dtype": _dtype(d.dtype[n]), "units": u}
        for n, u in zip(names, units, strict=True)
    ]


def _datasets(group: h5py.Group, prefix: str = "") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, obj in group.items():
        path = f"{prefix}/{name}"
        if isinstance(obj, h5py.Group):
            if path == "/runs":  # one run stands for the layout of all
                first = sorted(obj, key=int)[:1]
                for rid in first:
                    out += _datasets(obj[rid], f"{path}/{rid}")
            else:
                out += _datasets(obj, path)
            continue
        shape = None if obj.shape is None else list(obj.shape)
        entry: dict[str, Any] = {"path": path, "shape": shape, "dtype": _dtype(obj.dtype)}
        if obj.dtype.names:
            entry["units"] = ""
            entry["fields"] = _fields(obj)
        else:
            entry["units"] = str(attrs_of(obj).get("units", ""))
        out.append(entry)
    return out


def describe(path: str | Path) -> dict[str, Any]:
    """Everything ``spacesim inspect`` shows, as a JSON-ready dict."""
    with open_archive(path) as a:
        head: RunView = V1Run(a.file, -1) if a.is_sweep else a.run()
        columns, units, params = a.table()
        n = len(columns.get("run", []))
        runs = [{k: columns[k][i] for k in columns} for i in range(n)]
        info = {
            "path": str(a.path),
            "schema_name": a.schema_name,
            "schema_version": a.schema_version,
            "software_version": head.software_version(),
            "created": head.created(),
            "provenance": head.provenance(),
            "runs": runs,
            "parameters": params,
            "units": units,
            "datasets": _datasets(a.file),
            "problems": a.problems(),
        }
    return dict(_plain(info))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


def format_text(info: Mapping[str, Any]) -> str:
    """``describe``'s dict as aligned text."""
    lines = [f"{info['path']}"]
    lines += _table(
        [
            ["schema", f"{info['schema_name']} {info['schema_version']}"],
            ["written by", f"spacesim {info['software_version'] or '?'}"],
            ["created", info["created"] or "-"],
        ],
        "",
    )
    prov = dict(info["provenance"])
    libs = prov.pop("libraries", {})
    lines.append("provenance")
    rows = [[k, str(v)] for k, v in prov.items()]
    if libs:
        rows.append(["libraries", ", ".join(f"{k} {v}" for k, v in libs.items())])
    lines += _table(rows) if rows else ["  -"]

    runs = info["runs"]
    not_ok = sum(1 for r in runs if r.get("status") != "ok")
    lines.append(f"runs: {len(runs)} ({not_ok} not ok)")
    if runs:
        keys = ["run", "status", *info["parameters"]]
        keys += [k for k in KEY_METRICS if k in runs[0] and k not in keys]
        if any(r.get("status") != "ok" for r in runs) and "failure_reason" in runs[0]:
            keys.append("failure_reason")
        units = info["units"]
        plain = ("", "count", None)
        header = [k if units.get(k) in plain else f"{k} [{units[k]}]" for k in keys]
        shown = runs[:MAX_TEXT_RUNS]
        lines += _table([header, *[[_fmt(r.get(k)) for k in keys] for r in shown]])
        if len(runs) > len(shown):
            lines.append(f"  ... {len(runs) - len(shown)} more runs (--json lists all)")

    lines.append("datasets")
    rows = []
    for d in info["datasets"]:
        shape = "null" if d["shape"] is None else str(tuple(d["shape"]))
        rows.append([d["path"], shape, d["dtype"], d["units"]])
        rows += [[f"  .{f['name']}", "", f["dtype"], f["units"]] for f in d.get("fields", [])]
    lines += _table(rows) if rows else ["  -"]
    if info["problems"]:
        lines.append("problems")
        lines += [f"  {p}" for p in info["problems"]]
    return "\n".join(lines)
