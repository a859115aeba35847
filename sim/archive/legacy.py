"""The reader of schema 0.1.0, the first layout of ``run.h5`` (kept readable forever).

0.1.0 stored the summary as attributes of ``/summary`` (rejections as attributes of
``/summary/rejected``), ``None`` as ``""``, the overrides and the events as JSON strings (the only
event was the runner's ``{"kind": "failure", "traceback": ...}``), the provenance as flat
attributes, and no status, hash, seeds group or creation time. ``LegacyRun`` presents such a file
through the same methods as a 1.x run (``sim.archive.reader.RunView``): the status is ``failed``
or ``ok`` from the ``failed`` flag, ``""`` becomes ``None`` again, a failure event gets
``t_s = NaN`` and its traceback as ``detail``, and what 0.1.0 did not record is empty.
"""

from __future__ import annotations

import json
import math
from typing import Any

import h5py
import numpy as np

from sim.archive.schema import STATUS_FAILED, STATUS_OK, Scalar, flatten, scalar, units_of
from sim.archive.v1 import attrs_of, checked

VERSION_PREFIX = (0, 1)
LIBRARIES = ("numpy", "numba", "simpy", "scipy", "h5py", "hydra-core", "omegaconf")


def _attr(value: Any, key: str) -> Scalar:
    if isinstance(value, bytes):
        value = value.decode()
    v = scalar(key, value)
    return None if v == "" else v


class LegacyRun:
    """A ``run.h5`` of schema 0.1.x."""

    def __init__(self, f: h5py.File, run_id: int = 0) -> None:
        self.group = f
        self.run_id = run_id
        self.schema_version = str(attrs_of(f)["schema_version"])

    def summary(self) -> dict[str, Any]:
        g = self.group["summary"]
        out: dict[str, Any] = {k: _attr(v, k) for k, v in attrs_of(g).items()}
        for name, sub in g.items():
            out[name] = {k: _attr(v, f"{name}.{k}") for k, v in attrs_of(sub).items()}
        return out

    def summary_units(self) -> dict[str, str]:
        return {k: units_of(k, v) for k, v in flatten(self.summary())}

    def status(self) -> str:
        return STATUS_FAILED if self.summary().get("failed") else STATUS_OK

    def error(self) -> str:
        s = self.summary()
        return str(s.get("failure_reason") or "") if s.get("failed") else ""

    def job_num(self) -> int | None:
        return None

    def created(self) -> str:
        return ""

    def software_version(self) -> str:
        return str(attrs_of(self.group["provenance"]).get("spacesim", ""))

    def config_yaml(self) -> str:
        return str(attrs_of(self.group["config"])["yaml"])

    def config_sha256(self) -> str:
        return ""  # not recorded in 0.1.0

    def overrides(self) -> list[str]:
        return [str(o) for o in json.loads(attrs_of(self.group["config"])["overrides"])]

    def parameters(self) -> dict[str, Scalar]:
        from omegaconf import DictConfig, OmegaConf

        from sim.archive.table import parameters_from

        cfg = OmegaConf.create(self.config_yaml())
        assert isinstance(cfg, DictConfig)
        return parameters_from(cfg, self.overrides())

    def provenance(self) -> dict[str, Any]:
        attrs = {k: str(v) for k, v in attrs_of(self.group["provenance"]).items()}
        libs = {k: attrs.pop(k) for k in LIBRARIES if k in attrs}
        attrs.pop("spacesim", None)
        return attrs | {"libraries": libs}

    def seeds(self) -> dict[str, Any]:
        seed = self.summary().get("seed")
        return {} if seed is None else {"seed": seed}

    def time_base(self) -> dict[str, Any]:
        from omegaconf import OmegaConf

        tick = OmegaConf.select(OmegaConf.create(self.config_yaml()), "engine.tick_s")
        return {
            "time": "t_s",
            "tick_s": math.nan if tick is None else float(tick),
            "time_base": "t_s is the end of each tick, in s from the start of the simulation",
        }

    def timeseries(self) -> dict[str, np.ndarray]:
        g = self.group["timeseries"]
        out = {"t_s": checked(g["t_s"])[:]} if "t_s" in g else {}
        return out | {k: checked(d)[:] for k, d in g.items() if k != "t_s"}

    def timeseries_units(self) -> dict[str, str]:
        return {k: str(attrs_of(d).get("units", "")) for k, d in self.group["timeseries"].items()}

    def events(self) -> list[dict[str, Any]]:
        raw = json.loads(attrs_of(self.group["events"]).get("json", '{"events": []}'))["events"]
        out = []
        for e in raw:
            t = e.get("t_s")
            out.append(
                {
                    "t_s": math.nan if t is None else float(t),
                    "kind": str(e.get("kind") or ""),
                    "target": str(e.get("target") or ""),
                    "detail": str(e.get("detail") or e.get("traceback") or ""),
                }
            )
        return out
