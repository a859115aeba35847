"""The summary table: one row per run, one column per swept parameter and per summary metric.

A row is built from a run's record the same way whether the run is read from its own file or
merged into a sweep: ``run`` (the Hydra job number), ``status``, the job's parameters (its
overrides, as typed values), then every summary metric, nested dicts flattened to dotted names
(``rejected.bucket``). When a parameter is also a metric (``seed``), one column holds it.

Runs may have different keys; the table is their union, in the order the keys were first seen.
A column's type follows its values: all bool → bool, all int → int64, numbers → float64, any text →
text. A missing value (a key a run lacks, ``None``, NaN) becomes NaN in a number column and ``""``
in a text column, so an int column with a gap is stored as float64; a column with no value at all
is float64 NaN. On disk (``/summary`` of ``sweep.h5``) the table is one compound dataset, a row
per run and a field per column, with the attributes ``units`` (one per field, in field order) and
``parameters`` (which fields are parameters).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import h5py
import numpy as np
from omegaconf import DictConfig, OmegaConf

from sim.archive.schema import COMPRESSION, STR, Scalar, flatten, is_missing, scalar, units_of
from sim.archive.v1 import checked, strings_attr

RUN, STATUS = "run", "status"


def override_key(override: str) -> str:
    """``"+a.b@pkg=3"`` → ``"a.b"``."""
    return override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]


def is_hydra_override(override: str) -> bool:
    key = override_key(override)
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def parameters_from(config: DictConfig, overrides: Sequence[str]) -> dict[str, Scalar]:
    """The job's overrides as ``{key: typed value}``: the resolved config's value at the key when
    it is a scalar (``seed=3`` → 3, ``scenario.expected_arrivals=1e4`` → 10000.0), else the text
    after ``=`` (a config group choice, ``admission=none`` → ``"none"``). Hydra's own keys and
    deletions (``~key``) are left out."""
    params: dict[str, Scalar] = {}
    for o in overrides:
        if is_hydra_override(o) or o.startswith("~") or "=" not in o:
            continue
        key = override_key(o)
        raw = o.split("=", 1)[1]
        try:
            value: Any = OmegaConf.select(config, key, throw_on_missing=False)
        except Exception:  # an interpolation that does not resolve: keep the text
            value = raw
        if isinstance(value, DictConfig | list) or OmegaConf.is_config(value) or value is None:
            value = raw
        params[key] = scalar(key, value)
    return params


def summary_row(
    run_id: int, status: str, parameters: Mapping[str, Any], summary: Mapping[str, Any]
) -> tuple[dict[str, Scalar], list[str]]:
    """One row of the table and the names of its parameter columns."""
    row: dict[str, Scalar] = {RUN: run_id, STATUS: status}
    row |= {k: scalar(k, v) for k, v in parameters.items()}
    row |= dict(flatten(summary))
    return row, list(parameters)


_ABSENT = object()


def column_array(values: Sequence[Any]) -> np.ndarray:
    """The values of one column (``_ABSENT``/``None``/NaN missing) as a typed array."""
    present = [v for v in values if v is not _ABSENT and not is_missing(v)]
    complete = len(present) == len(values)
    if not present:
        return np.full(len(values), math.nan)
    if any(isinstance(v, str) for v in present):
        text = ["" if v is _ABSENT or is_missing(v) else str(v) for v in values]
        return np.array(text, dtype=object)
    if complete and all(isinstance(v, bool) for v in present):
        return np.array(values, dtype=np.bool_)
    if complete and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return np.array(values, dtype=np.int64)
    return np.array(
        [math.nan if v is _ABSENT or is_missing(v) else float(v) for v in values], dtype=np.float64
    )


def column_units(name: str, values: Sequence[Any], array: np.ndarray) -> str:
    first = next((v for v in values if v is not _ABSENT and not is_missing(v)), None)
    if array.dtype.kind == "O":
        return ""
    return units_of(name, first)


def build_table(
    rows: Iterable[tuple[Mapping[str, Scalar], Sequence[str]]],
) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
    """``(columns, units, parameter names)`` of the table of these rows (see the module doc)."""
    rows = list(rows)
    names: dict[str, None] = {}
    params: dict[str, None] = {}
    for row, p in rows:
        names |= dict.fromkeys(row)
        params |= dict.fromkeys(p)
    columns: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for name in names:
        values = [row.get(name, _ABSENT) for row, _ in rows]
        columns[name] = column_array(values)
        units[name] = column_units(name, values, columns[name])
    return columns, units, list(params)


def write_table(
    parent: h5py.Group,
    name: str,
    columns: Mapping[str, np.ndarray],
    units: Mapping[str, str],
    parameters: Sequence[str],
) -> h5py.Dataset:
    """The table as a compound dataset ``parent/name``, one row per run (see the module doc)."""
    if not columns:  # HDF5 has no compound type without fields
        columns = {RUN: np.zeros(0, dtype=np.int64)}
        units = {RUN: "count"}
    n = len(next(iter(columns.values())))
    dtype = [(k, STR if a.dtype.kind == "O" else a.dtype) for k, a in columns.items()]
    rows = np.empty(n, dtype=dtype)
    for k, a in columns.items():
        rows[k] = a
    d = parent.create_dataset(name, data=rows, **(COMPRESSION if n else {}))
    d.attrs.create("units", data=[units[k] for k in columns], dtype=STR)
    d.attrs.create("parameters", data=list(parameters), dtype=STR)
    return d


def _strings(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def read_table(d: h5py.Dataset) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
    """``(columns, units, parameter names)`` as ``write_table`` wrote them."""
    rows = checked(d)[:]
    names = d.dtype.names or ()
    columns = {
        k: _strings(rows[k]) if rows.dtype[k].kind == "O" else np.asarray(rows[k]) for k in names
    }
    units = strings_attr(d, "units")
    params = strings_attr(d, "parameters")
    return columns, dict(zip(names, units, strict=True)), params
