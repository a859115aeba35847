"""Tidy pandas frames from run and sweep archives, for the report notebooks.

Everything is loaded through ``sim.archive`` (``read_timeseries``, ``read_events``,
``read_summary``); ``threshold`` reads a search's ``threshold.json`` (``docs/sweeps.md``):

- ``timeline(path, run=None, series=None)``: long format ``run, t_s, series, value, units``;
- ``events(path, run=None)``: ``run, t_s, kind, target, detail`` (autoscaler, operator, crashes);
- ``summary(path)``: one row per run, parameters and metrics (``attrs``: units, parameters);
- ``threshold(path)``: ``(cells, runs)``, one row per searched cell and one per observed run.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sim.archive import read_events, read_summary, read_timeseries

log = logging.getLogger(__name__)

THRESHOLD_JSON = "threshold.json"  # sim.sweep.THRESHOLD_JSON (not imported: it pulls in Hydra)

DEFAULT_SERIES = (
    "concurrent",
    "trying",
    "arrivals",
    "attempts",
    "joining",
    "joined",
    "abandoned",
    "nodes_up",
    "goodput_per_s",
    "attempt_rate_per_s",
    "join_capacity_per_s",
    "join_latency_p99_s",
)
"""The series ``timeline`` keeps by default (those the archive has), plus every ``rejected_*``
column with a rejection in it (the attempts by outcome)."""

TIMELINE_COLUMNS = ["run", "t_s", "series", "value", "units"]


def _pick(ts: pd.DataFrame, series: Sequence[str] | str | None) -> list[str]:
    metrics = [c for c in ts.columns if c not in ("run", "t_s")]
    if series == "all":
        return metrics
    if series is None:
        rejected = [c for c in metrics if c.startswith("rejected_") and ts[c].fillna(0).any()]
        return [c for c in DEFAULT_SERIES if c in metrics] + rejected
    wanted = [series] if isinstance(series, str) else list(series)
    missing = [c for c in wanted if c not in metrics]
    if missing:
        raise KeyError(f"no series {missing} in the archive (it has: {', '.join(metrics)})")
    return wanted


def timeline(
    path: str | Path, run: int | str | None = None, series: Sequence[str] | str | None = None
) -> pd.DataFrame:
    """The per-tick series in long format: ``run, t_s, series, value, units``.

    ``series``: names of columns, ``"all"``, or ``None`` for ``DEFAULT_SERIES`` (those present)
    and the ``rejected_*`` columns that are not all zero. ``units`` are the archive's. A run
    without time series (failed early, or ``output.timeseries=false``) contributes no rows.
    """
    ts = read_timeseries(path, run)
    units: dict[str, str] = ts.attrs.get("units", {})
    keep = _pick(ts, series) if len(ts) else []
    if not keep:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TIMELINE_COLUMNS})
    long = ts.melt(id_vars=["run", "t_s"], value_vars=keep, var_name="series", value_name="value")
    long["value"] = long["value"].astype(np.float64)
    long["units"] = long["series"].map(lambda c: units.get(c, ""))
    long.attrs["units"] = {c: units.get(c, "") for c in ["t_s", *keep]}
    return long[TIMELINE_COLUMNS]


def events(path: str | Path, run: int | str | None = None) -> pd.DataFrame:
    """The runs' events (``scale``, ``operator``, ``crash``, ``restart``, ``failure``, ...):
    ``run, t_s, kind, target, detail``, sorted by run and time; no rows when there were none."""
    ev = read_events(path, run)
    return ev.sort_values(["run", "t_s"], kind="stable").reset_index(drop=True)


def summary(path: str | Path) -> pd.DataFrame:
    """One row per run: ``run``, ``status``, its parameters, its metrics (``read_summary``).

    ``failed`` is made boolean (a run without a verdict: False); ``attrs`` keeps ``units`` and
    ``parameters``.
    """
    df = read_summary(path)
    if "failed" in df.columns:
        df["failed"] = df["failed"].map(lambda v: bool(v) if v is not None and v == v else False)
    return df


def _value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["workers=5", "experiment=x"]`` -> ``{"workers": 5, "experiment": "x"}``."""
    out: dict[str, Any] = {}
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep:
            out[key.lstrip("+~")] = _value(value)
    return out


def _nan(v: Any) -> Any:
    return math.nan if v is None else v


def _sweeper_settings(sweep_dir: Path) -> dict[str, Any]:
    """``hydra.sweeper`` of the search, from its ``multirun.yaml`` (empty when absent)."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return {}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        log.warning("%s: unreadable (%s); log_scale and increasing are inferred", path, exc)
        return {}
    sweeper = (doc.get("hydra") or {}).get("sweeper") or {}
    return sweeper if isinstance(sweeper, dict) else {}


def _inferred(cell: dict[str, Any]) -> tuple[bool, bool]:
    """(log_scale, increasing) from the stored curve: a geometric grid is log scale."""
    cx = np.asarray(cell.get("curve_x") or [], dtype=np.float64)
    cp = np.asarray(cell.get("curve_p") or [], dtype=np.float64)
    log_scale = bool(cx.size > 2 and (cx > 0).all() and np.ptp(np.diff(np.log(cx))) < 1e-9)
    increasing = bool(cp.size < 2 or cp[-1] >= cp[0])
    return log_scale, increasing


def threshold(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A threshold search's ``threshold.json`` (a sweep dir or the file) as ``(cells, runs)``.

    ``cells``: one row per searched cell: ``cell`` (its index), ``parameter``, ``overrides``
    (a tuple), one column per override key (typed: ``workers`` -> 5), ``estimate``, ``ci_low``,
    ``ci_high`` (NaN where the JSON has null), ``confidence``, ``target``, ``runs``, ``failures``,
    ``stop_reason``, ``slope``, ``separated``, ``curve_x``/``curve_p`` (lists), ``error``, and
    ``log_scale``/``increasing`` (the sweeper's, from ``multirun.yaml``, else inferred from the
    curve). ``runs``: one row per observation: ``cell``, ``order`` (run order in the cell),
    ``parameter``, ``x``, ``failed``. The document's top level is in ``cells.attrs["search"]``.
    """
    p = Path(path)
    file = p / THRESHOLD_JSON if p.is_dir() else p
    doc = json.loads(file.read_text())
    sweeper = _sweeper_settings(file.parent)
    rows: list[dict[str, Any]] = []
    obs: list[dict[str, Any]] = []
    for i, c in enumerate(doc.get("cells") or []):
        overrides = tuple(c.get("overrides") or [])
        guess_log, guess_inc = _inferred(c)
        row: dict[str, Any] = {
            "cell": i,
            "parameter": c.get("parameter", doc.get("parameter")),
            "overrides": overrides,
            **parse_overrides(overrides),
        }
        for k in ("estimate", "ci_low", "ci_high", "confidence", "target", "slope"):
            row[k] = float(_nan(c.get(k)))
        row |= {
            "runs": int(c.get("runs") or 0),
            "failures": int(c.get("failures") or 0),
            "stop_reason": c.get("stop_reason"),
            "separated": bool(c.get("separated")),
            "curve_x": [float(_nan(v)) for v in c.get("curve_x") or []],
            "curve_p": [float(_nan(v)) for v in c.get("curve_p") or []],
            "error": c.get("error"),
            "log_scale": bool(sweeper.get("log_scale", guess_log)),
            "increasing": bool(sweeper.get("increasing", guess_inc)),
        }
        rows.append(row)
        pairs = zip(c.get("x") or [], c.get("failed") or [], strict=True)
        for order, (x, failed) in enumerate(pairs):
            obs.append(
                {
                    "cell": i,
                    "order": order,
                    "parameter": row["parameter"],
                    "x": float(x),
                    "failed": bool(failed),
                }
            )
    cells = pd.DataFrame(rows)
    runs = pd.DataFrame(obs, columns=["cell", "order", "parameter", "x", "failed"])
    cells.attrs["search"] = {k: v for k, v in doc.items() if k != "cells"}
    return cells, runs


def tick_s(df: pd.DataFrame) -> float:
    """The tick length of a ``timeline`` frame (s): the median step of ``t_s`` within a run."""
    steps = [np.diff(np.unique(part["t_s"].to_numpy(np.float64))) for _, part in df.groupby("run")]
    flat = np.concatenate(steps) if steps else np.array([])
    flat = flat[flat > 0]
    if not flat.size:
        raise ValueError("cannot tell the tick length: fewer than two ticks")
    return float(np.median(flat))


def per_second(df: pd.DataFrame) -> pd.DataFrame:
    """Per-tick counts of a ``timeline`` frame (``attempts``, ``rejected_*``, ...) as rates: each
    value divided by the tick length (``tick_s``), the series renamed ``<name>_per_s`` with units
    ``1/s`` (``analysis.theme`` words them ``attempts/s``): runs of different ticks compare."""
    out = df.copy()
    out["value"] = out["value"] / tick_s(df)
    out["series"] = out["series"].astype(str) + "_per_s"
    out["units"] = "1/s"
    out.attrs["units"] = {f"{c}_per_s": "1/s" for c in df["series"].unique()} | {"t_s": "s"}
    return out


NOUNS = {"crash": "node crash", "restart": "node restart", "scale": "scaling step"}
"""Event kinds in words, for ``event_marks``."""


def event_marks(ev: pd.DataFrame, limit: int = 40) -> pd.DataFrame:
    """One row per time with events (``events``): ``t_s, kinds, label``, the label in words
    (``room capped at 250000 connections``; ``130 node crashes``). The label is at most ``limit``
    characters; an operator's own words are kept, other events are counted by kind."""
    rows = []
    for _, part in ev.dropna(subset=["t_s"]).groupby("t_s", sort=True):
        words = []
        for kind, same in part.groupby("kind", sort=False):
            if kind == "operator":
                words += [str(d).split(":", 1)[0].split(",", 1)[0] for d in same["detail"]]
            else:
                noun = NOUNS.get(str(kind), str(kind))
                n = len(same)
                plural = noun + ("es" if noun.endswith(("sh", "s")) else "s")
                words.append(f"{n} {noun if n == 1 else plural}")
        text = re.sub(r"\d{4,}", lambda m: f"{int(m.group()):,}", "; ".join(dict.fromkeys(words)))
        if len(text) > limit:
            text = text[: limit - 1].rstrip() + "…"
        t_s = float(part["t_s"].iloc[0])
        rows.append({"t_s": t_s, "kinds": ", ".join(sorted(set(part["kind"]))), "label": text})
    return pd.DataFrame(rows, columns=["t_s", "kinds", "label"])
