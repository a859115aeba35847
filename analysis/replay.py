"""A replay's public data points on its timeline (``analysis/notebooks/timeline.py``).

A replay run (``scenario.event`` set in its stored config, ``docs/calibration.md``) is drawn with
the event's ``fit`` and ``input`` data points of ``OVERLAID`` quantities (``sim.observations``)
on the listeners axis: a point-in-time figure as a marker at its ``value`` with its band
``[low, high]`` as an error bar, a peak as a horizontal band over its window ``[t_s, t_to_s]``.
The scheduled start (t = 0 on the scenario clock) and the actual start (``start_delay_s``) are
labelled vertical lines, and the time axis is the event's window (the data points' times, and
both starts) rather than the whole run with its tail of people leaving. ``check`` compares the
run's ``summary["data"]`` (the flattened ``data.<id>`` columns of ``frames.summary``) with the
bands of the ``fit`` data points.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from analysis import plots, theme
from sim import observations
from sim.archive import open_archive

if TYPE_CHECKING:
    from matplotlib.axes import Axes

log = logging.getLogger(__name__)

OVERLAID = ("listeners", "trying", "demand", "peak_listeners")
"""The quantities drawn on the listeners axis."""

ROLES = ("fit", "input")
"""The roles drawn (``context`` rows are not what a run simulates)."""

MARKERS = {"listeners": "o", "trying": "s", "demand": "D"}
WORDS = {
    "listeners": "listeners",
    "trying": "people trying",
    "demand": "demand",
    "peak_listeners": "peak listeners",
}
"""The overlaid quantities in words, for the legend."""
ROLE_WORDS = {"fit": "fit target", "input": "model input"}
"""What a data point's role means, for the legend."""
POINT_COLUMNS = ["id", "quantity", "t_s", "t_to_s", "value", "low", "high", "role", "weak"]


def event(path: str | Path) -> str | None:
    """``scenario.event`` of the (first) run's stored config; None when unset or unreadable."""
    with open_archive(path) as a:
        runs = list(a.runs())
        if not runs:
            return None
        try:
            doc = yaml.safe_load(runs[0].config_yaml()) or {}
        except (KeyError, yaml.YAMLError):
            return None
    scenario = doc.get("scenario") if isinstance(doc, dict) else None
    name = scenario.get("event") if isinstance(scenario, dict) else None
    if not name:
        return None
    if not observations.is_event(str(name)):
        log.warning("%s: its event %r has no data points here; no overlay", path, name)
        return None
    return str(name)


def points(name: str, quantities: tuple[str, ...] = OVERLAID) -> pd.DataFrame:
    """The event's ``ROLES`` data points of ``quantities``: ``POINT_COLUMNS``, in file order."""
    rows = [
        {c: getattr(o, c) for c in POINT_COLUMNS}
        for o in observations.load(name)
        if o.quantity in quantities and o.role in ROLES
    ]
    df = pd.DataFrame(rows, columns=POINT_COLUMNS)
    for c in ("t_s", "t_to_s", "value", "low", "high"):
        df[c] = df[c].astype(np.float64)
    return df


def simulated(summary: Mapping[str, Any] | pd.Series) -> dict[str, float]:
    """The run's ``summary["data"]``: data point id -> simulated value, from a summary row
    (``data.<id>`` columns) or from a ``summary.json`` mapping with a ``data`` dict."""
    nested = summary.get("data")
    if isinstance(nested, Mapping):
        return {str(k): as_float(v) for k, v in nested.items()}
    return {
        str(k).removeprefix("data."): as_float(v)
        for k, v in summary.items()
        if str(k).startswith("data.")
    }


def as_float(v: Any) -> float:
    """``v`` as a float; NaN for None or anything that is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def check(name: str, summary: Mapping[str, Any] | pd.Series) -> pd.DataFrame:
    """The event's ``fit`` data points with the run's value: ``id, quantity, value, low, high,
    simulated, inside`` (``low <= simulated <= high``; a NaN value is not inside). Only the data
    points the run measured (in ``summary["data"]``) when it measured any."""
    data = simulated(summary)
    fit = [o for o in observations.load(name) if o.role == "fit"]
    if data:
        fit = [o for o in fit if o.id in data]
    rows = []
    for o in fit:
        sim = data.get(o.id, math.nan)
        rows.append(
            {
                "id": o.id,
                "quantity": o.quantity,
                "value": o.value,
                "low": o.low,
                "high": o.high,
                "simulated": sim,
                "inside": bool(math.isfinite(sim) and o.low <= sim <= o.high),
            }
        )
    cols = ["id", "quantity", "value", "low", "high", "simulated", "inside"]
    return pd.DataFrame(rows, columns=cols)


def duration(seconds: float) -> str:
    """``14 s`` below two minutes, ``33 min`` above."""
    return f"{seconds:.0f} s" if abs(seconds) < 120 else f"{seconds / 60:.0f} min"


def findings(name: str, checked: pd.DataFrame, start_delay_s: float) -> str:
    """``"Replay of trump_2024: 5 of 6 public data points inside their bands; start 33 min late
    (public: 40-45 min)."``"""
    inside = int(checked["inside"].sum())
    text = f"Replay of {name}: {inside} of {len(checked)} public data points inside their bands"
    public = [o for o in observations.load(name) if o.quantity == "start_delay_s"]
    band = f" (public: {public[0].low / 60:.0f}-{public[0].high / 60:.0f} min)" if public else ""
    if math.isfinite(start_delay_s):
        text += f"; start {duration(start_delay_s)} late{band}"
    else:
        text += f"; the conversation never started{band}"
    return text + "."


def overlay(
    ax: Axes, pts: pd.DataFrame, start_delay_s: float, others: tuple[Axes, ...] = ()
) -> Axes:
    """Draw the data points ``pts`` (``points``) and the two starts on ``ax`` (the listeners
    axis), the starts also on ``others`` (unlabelled there), and redo ``ax``'s legend.

    Gids: ``data/<role>/<quantity>`` (the markers' line, one per role and quantity),
    ``peak/<id>`` (the band, a rectangle) and ``peak_value/<id>`` (the value, a line),
    ``scheduled_start`` and ``actual_start`` (vertical lines; their labels on ``ax``, texts
    ``label/scheduled_start`` and ``label/actual_start``, stacked by ``plots.unclutter`` with any
    other line labels so that none overlaps another).
    """
    from matplotlib.patches import Rectangle

    c_fit, c_input, c_sched, c_start = theme.colors(6)[2:6]
    color = {"fit": c_fit, "input": c_input}
    timed = pts[pts["quantity"] != "peak_listeners"]
    for (role, quantity), part in timed.groupby(["role", "quantity"], sort=False):
        v = part["value"].to_numpy(dtype=np.float64)
        err = np.vstack([v - part["low"].to_numpy(), part["high"].to_numpy() - v])
        bars = ax.errorbar(
            part["t_s"].to_numpy(dtype=np.float64),
            v,
            yerr=err,
            fmt=MARKERS.get(str(quantity), "o"),
            color=color[str(role)],
            capsize=4,
            ms=6,
            label=legend_label(str(quantity), str(role)),
        )
        bars.lines[0].set_gid(f"data/{role}/{quantity}")
    labelled = False
    for _, row in pts[pts["quantity"] == "peak_listeners"].iterrows():
        t0, t1 = float(row["t_s"]), float(row["t_to_s"])
        ax.add_patch(
            Rectangle(
                (t0, float(row["low"])),
                t1 - t0,
                float(row["high"] - row["low"]),
                color=color[str(row["role"])],
                alpha=0.18,
                gid=f"peak/{row['id']}",
                label=None if labelled else legend_label("peak_listeners", str(row["role"])),
            )
        )
        ax.plot(
            [t0, t1],
            [float(row["value"])] * 2,
            color=color[str(row["role"])],
            lw=1.2,
            ls="--",
            gid=f"peak_value/{row['id']}",
        )
        labelled = True
    late = f", {duration(start_delay_s)} late" if math.isfinite(start_delay_s) else ""
    for i, a in enumerate((ax, *others)):
        a.axvline(
            0.0,
            color=c_sched,
            ls="-.",
            lw=1.1,
            gid="scheduled_start",
            label="scheduled start (t = 0 s)" if i == 0 else None,
        )
        if math.isfinite(start_delay_s):
            a.axvline(
                start_delay_s,
                color=c_start,
                ls="-",
                lw=1.3,
                gid="actual_start",
                label=(f"actual start (t = {start_delay_s:.0f} s{late})" if i == 0 else None),
            )
    plots.time_label(ax, 0.0, "scheduled start", "scheduled_start", c_sched)
    if math.isfinite(start_delay_s):
        plots.time_label(ax, start_delay_s, f"actual start{late}", "actual_start", c_start)
    ax.autoscale_view()
    ends = pts[["t_s", "t_to_s"]].to_numpy(dtype=np.float64).ravel()
    ends = ends[np.isfinite(ends)]
    if ends.size:  # the event's window: the run's tail (everyone leaving) is not compared
        right = max(float(ends.max()), start_delay_s if math.isfinite(start_delay_s) else 0.0)
        left = min(float(ax.dataLim.x0), float(ends.min()), 0.0)
        pad = 0.05 * (right - left or 1.0)
        ax.set_xlim(left - pad, right + 2 * pad)
    plots.legend_outside(ax)
    plots.unclutter(ax)
    return ax


def legend_label(quantity: str, role: str) -> str:
    """``"public listeners, range (fit target)"``: a data point's legend entry."""
    what = "range, window" if quantity == "peak_listeners" else "range"
    return f"public {WORDS.get(quantity, quantity)}, {what} ({ROLE_WORDS.get(role, role)})"
