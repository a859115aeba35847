"""The archive schema: names, versions, units, and the values a record may hold.

Every archive says what it is and which layout it follows: the root attributes ``schema_name``
(``spacesim.run`` for one run's file, ``spacesim.sweep`` for a merged sweep) and
``schema_version``, a semantic version. Readers dispatch on the *major* version: a 1.x reader reads
every 1.y file (a minor version only adds optional things, which older readers ignore), files of
0.1.x go through the legacy reader, and any other major version is refused with an
``ArchiveError`` naming the file, its version and the versions this spacesim reads.

Units are not free text picked by each writer: ``units_of`` derives them from the key, one rule
for the summary, the time series and the sweep's summary table (``docs/archive.md`` states it).

A summary is generic: whatever keys the engine returns, with scalar values (bool, int, float, NaN,
str, ``None``) or nested dicts of them (``rejected: {reason: count}``), which flatten to dotted
column names (``rejected.bucket``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import h5py
import numpy as np

SCHEMA_VERSION = "1.0.0"
RUN_SCHEMA = "spacesim.run"
SWEEP_SCHEMA = "spacesim.sweep"
RUN_H5 = "run.h5"
SWEEP_H5 = "sweep.h5"
SUMMARY_JSON = "summary.json"
TMP_SUFFIX = ".tmp"

STATUSES = ("ok", "failed", "interrupted")
STATUS_OK, STATUS_FAILED, STATUS_INTERRUPTED = STATUSES

#: gzip level 1 + shuffle: portable (no filter plugin needed on the reader's side); level 4 writes
#: a run 1.5x as slowly for 2% smaller files
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1, "shuffle": True}

STR = h5py.string_dtype()  # variable-length UTF-8
EVENT_FIELDS = ("t_s", "kind", "target", "detail")
EVENT_DTYPE = np.dtype([("t_s", "f8"), ("kind", STR), ("target", STR), ("detail", STR)])

Scalar = bool | int | float | str | None

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


class ArchiveError(ValueError):
    """A file that is not a readable spacesim archive, or a record that cannot be written."""


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.2.3"`` → ``(1, 2, 3)``; anything else is an ``ArchiveError``."""
    m = _VERSION.match(text)
    if not m:
        raise ArchiveError(f"schema_version {text!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def units_of(key: str, value: Any = 0) -> str:
    """The units of a summary scalar or time-series column, from its key (and its type).

    Text and booleans have none (``""``); otherwise the key's suffix decides: ``*_per_s`` → ``1/s``,
    ``*_s`` → ``s``, ``*_gbps`` → ``Gb/s``, ``*_share``, ``*_ratio``, utilisations and
    ``retry_amplification`` → ``1``, ``*_s_per_listener_min`` → ``s/min``, anything else →
    ``count``. ``None`` has no type: a suffix decides, else ``""``.
    """
    if isinstance(value, str | bool | np.bool_):
        return ""
    if isinstance(value, np.ndarray) and value.dtype.kind in "bOSUT":
        return ""
    name = key.rsplit(".", 1)[-1]
    if name.endswith("_per_s"):
        return "1/s"
    if name.endswith("_s"):
        return "s"
    if name.endswith("_gbps"):
        return "Gb/s"
    if name.endswith(("_share", "_ratio")) or name == "retry_amplification":
        return "1"
    if "utilisation" in key or "_ratio_" in name or "_demand_peak" in key:
        return "1"  # egress_utilisation_edge, egress_demand_ratio_relay, egress_demand_peak.sfu
    if name.endswith("_s_per_listener_min"):
        return "s/min"
    return "" if value is None else "count"


def check_name(key: str) -> str:
    """An HDF5 link name: not empty, no ``/``, not ``.``."""
    if not key or "/" in key or key == ".":
        raise ArchiveError(f"{key!r} cannot name an archive entry (empty, '.' or containing '/')")
    return key


def scalar(key: str, value: Any) -> Scalar:
    """``value`` as a plain Python scalar, or an ``ArchiveError`` naming ``key``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    raise ArchiveError(
        f"summary value {key} = {value!r} ({type(value).__name__}) is not a scalar "
        "(bool, int, float, str or None) nor a dict of them"
    )


def flatten(summary: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Scalar]]:
    """``(dotted key, scalar)`` for every leaf of a summary (nested dicts join with ``.``)."""
    for key, value in summary.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, f"{full}.")
        else:
            yield full, scalar(full, value)


def is_missing(value: Any) -> bool:
    """``None`` and NaN are missing values."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def config_sha256(config_yaml: str) -> str:
    """The hash a resumed sweep compares: sha256 of the resolved job config YAML (no ``hydra``)."""
    return hashlib.sha256(config_yaml.encode()).hexdigest()
