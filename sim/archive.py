"""Run archives: every result of a run leaves through ``write_run``.

A run directory receives ``summary.json`` (the scalars, for people and scripts) and ``run.h5`` (the
archive): attributes ``schema_version`` (semantic), ``kind = "spacesim.run"``; ``/config`` (the
resolved config as YAML text and the overrides), ``/provenance`` (package and library versions, git
revision, host, Python), ``/summary`` (one attribute per scalar, rejection counts under
``/summary/rejected``), ``/timeseries`` (one dataset per per-tick column, with a ``units``
attribute) and ``/events``. Files are written to a temporary name and renamed when complete, so a
file with the final name is always whole. A failed run writes the same files with ``failed = true``
and its ``failure_reason``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np

SCHEMA_VERSION = "0.1.0"
SUMMARY_JSON = "summary.json"
RUN_H5 = "run.h5"
_LIBRARIES = ("numpy", "numba", "simpy", "scipy", "h5py", "hydra-core", "omegaconf")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def provenance() -> dict[str, str]:
    """Where and with what a run was made."""
    info = {
        "spacesim": _version("spacesim"),
        "git_revision": _git_revision(),
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    info |= {lib: _version(lib) for lib in _LIBRARIES}
    return info


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return None if math.isnan(f) else f
    return value


def _replace(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` atomically; NaN becomes ``null``."""
    path = run_dir / SUMMARY_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(summary), indent=2, sort_keys=True) + "\n")
    _replace(tmp, path)
    return path


def _units(column: str) -> str:
    return "s" if column.endswith("_s") else "count"


def write_archive(
    run_dir: Path,
    summary: dict[str, Any],
    timeseries: dict[str, np.ndarray],
    events: list[dict[str, Any]],
    config_yaml: str,
    overrides: list[str],
) -> Path:
    """Write ``run.h5`` atomically (see the module docstring for the layout)."""
    path = run_dir / RUN_H5
    tmp = path.with_suffix(".h5.tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["kind"] = "spacesim.run"
        cfg = f.create_group("config")
        cfg.attrs["yaml"] = config_yaml
        cfg.attrs["overrides"] = json.dumps(overrides)
        prov = f.create_group("provenance")
        for k, v in provenance().items():
            prov.attrs[k] = v
        summ = f.create_group("summary")
        for k, v in summary.items():
            if isinstance(v, dict):
                sub = summ.create_group(k)
                for kk, vv in v.items():
                    sub.attrs[kk] = vv
            else:
                summ.attrs[k] = "" if v is None else v
        ts = f.create_group("timeseries")
        for k, arr in timeseries.items():
            d = ts.create_dataset(k, data=arr, compression="gzip", compression_opts=4, shuffle=True)
            d.attrs["units"] = _units(k)
        ev = f.create_group("events")
        ev.attrs["count"] = len(events)
        ev.attrs["json"] = json.dumps(_jsonable({"events": events}))
    _replace(tmp, path)
    return path


def write_run(
    run_dir: Path,
    summary: dict[str, Any],
    timeseries: dict[str, np.ndarray],
    events: list[dict[str, Any]],
    config_yaml: str,
    overrides: list[str],
    *,
    archive: bool = True,
) -> None:
    """The one writer of a run's results: ``summary.json`` and, when asked, ``run.h5``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if archive:
        write_archive(run_dir, summary, timeseries, events, config_yaml, overrides)
    write_summary(run_dir, summary)


def read_summary(run_dir: Path) -> dict[str, Any]:
    """Read a run's ``summary.json``."""
    data: dict[str, Any] = json.loads((run_dir / SUMMARY_JSON).read_text())
    return data
