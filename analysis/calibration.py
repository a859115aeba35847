"""The report's calibration section (``analysis/notebooks/calibration.py``): a sweep dir's
``calibration.json`` (``spacesim calibrate``, ``sim.calibration.calibration_doc``).

- ``residuals(doc)``: one row per fitted data point: its band, the simulated value at the fit
  (the mean over the best point's runs, and each run's), and ``z``, the simulated value
  normalised to the band: ``(simulated - centre) / half width``, so the band is ``[-1, 1]``;
- ``parameters(doc)``: one row per fitted parameter: estimate, 95% interval, search range,
  identified or not, and the estimate and interval as positions in the search range (0 = ``lo``,
  1 = ``hi``; on a log scale for a log parameter), so parameters of any size share one axis;
- ``plot_residuals`` and ``plot_parameters`` draw them; ``findings`` says it in one sentence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis import plots, theme

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CALIBRATION_JSON = "calibration.json"  # sim.calibration.CALIBRATION_JSON (not imported: Hydra)

RESIDUAL_COLUMNS = [
    "id",
    "quantity",
    "weak",
    "value",
    "low",
    "high",
    "simulated",
    "runs",
    "z",
    "z_runs",
    "z_value",
    "band_residual",
    "inside",
]
PARAMETER_COLUMNS = [
    "name",
    "estimate",
    "ci_low",
    "ci_high",
    "lo",
    "hi",
    "log",
    "identified",
    "position",
    "position_low",
    "position_high",
]


def load(path: str | Path) -> dict[str, Any]:
    """The ``calibration.json`` of a sweep dir (or the file itself)."""
    p = Path(path)
    file = p / CALIBRATION_JSON if p.is_dir() else p
    doc: dict[str, Any] = json.loads(file.read_text())
    return doc


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def z_score(x: float, low: float, high: float) -> float:
    """``x`` normalised to the band ``[low, high]``: ``(x - centre) / half width``; the band is
    ``[-1, 1]`` (a zero-width band: half width ``max(|centre| * 0.05, 1)``, as
    ``sim.observations.band_residual``)."""
    centre = (low + high) / 2
    half = (high - low) / 2 or max(abs(centre) * 0.05, 1.0)
    return (x - centre) / half


def residuals(doc: Mapping[str, Any]) -> pd.DataFrame:
    """One row per data point of the fit (``RESIDUAL_COLUMNS``), in the document's order."""
    rows = []
    for r in doc.get("data_points") or []:
        low, high = float(r["low"]), float(r["high"])
        sim = _f(r.get("simulated"))
        runs = [_f(v) for v in r.get("simulated_runs") or []]
        rows.append(
            {
                "id": str(r["id"]),
                "quantity": str(r.get("quantity", "")),
                "weak": bool(r.get("weak", False)),
                "value": float(r["value"]),
                "low": low,
                "high": high,
                "simulated": sim,
                "runs": runs,
                "z": z_score(sim, low, high),
                "z_runs": [z_score(v, low, high) for v in runs],
                "z_value": z_score(float(r["value"]), low, high),
                "band_residual": _f(r.get("band_residual")),
                "inside": bool(r.get("inside", False)),
            }
        )
    return pd.DataFrame(rows, columns=RESIDUAL_COLUMNS)


def _position(x: float, lo: float, hi: float, log: bool) -> float:
    """Where ``x`` is in ``[lo, hi]``: 0 at ``lo``, 1 at ``hi`` (log scale when ``log``)."""
    if not math.isfinite(x):
        return math.copysign(math.inf, x) if math.isinf(x) else math.nan
    if log:
        if x <= 0:
            return -math.inf
        return (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (x - lo) / (hi - lo)


def parameters(doc: Mapping[str, Any]) -> pd.DataFrame:
    """One row per fitted parameter (``PARAMETER_COLUMNS``), in the document's order. A missing
    interval end (infinite in the fit) is -inf/+inf."""
    rows = []
    space = doc.get("parameters") or {}
    for name, est in (doc.get("best") or {}).items():
        spec = space.get(name) or {}
        lo, hi = float(spec.get("lo", math.nan)), float(spec.get("hi", math.nan))
        log = bool(spec.get("log", False))
        ci = doc.get("ci", {}).get(name) or [None, None]
        c_lo = -math.inf if ci[0] is None else float(ci[0])
        c_hi = math.inf if ci[1] is None else float(ci[1])
        rows.append(
            {
                "name": name,
                "estimate": float(est),
                "ci_low": c_lo,
                "ci_high": c_hi,
                "lo": lo,
                "hi": hi,
                "log": log,
                "identified": bool(doc.get("identified", {}).get(name, False)),
                "position": _position(float(est), lo, hi, log),
                "position_low": _position(c_lo, lo, hi, log),
                "position_high": _position(c_hi, lo, hi, log),
            }
        )
    return pd.DataFrame(rows, columns=PARAMETER_COLUMNS)


def plot_residuals(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Each data point's ``z`` at the fit (``gid="z"``; each run's, ``gid="z_runs"``; the quoted
    value's, ``gid="value"``), one row per data point, with the band ``[-1, 1]`` shaded
    (``gid="band"``). Outside the band is outside the public range."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 0.5 * len(df) + 1.5))
    c_in, c_out, c_run, c_val = theme.colors(4)
    pos = np.arange(len(df), dtype=np.float64)
    ax.axvspan(-1.0, 1.0, color="0.85", alpha=0.6, gid="band", label="public band")
    ax.axvline(0.0, color="0.5", lw=0.8, ls=":")
    xs = [z for zs in df["z_runs"] for z in zs]
    ys = [p for p, zs in zip(pos, df["z_runs"], strict=True) for _ in zs]
    ax.plot(xs, ys, "|", color=c_run, ms=10, gid="z_runs", label="each run")
    ax.plot(df["z_value"], pos, "x", color=c_val, gid="value", label="quoted value")
    z = df["z"].to_numpy(dtype=np.float64)
    inside = df["inside"].to_numpy(dtype=bool)
    for mask, color, text in ((inside, c_in, "inside"), (~inside, c_out, "outside")):
        if mask.any():
            ax.scatter(z[mask], pos[mask], color=color, zorder=3, label=f"simulated, {text}")
    ax.plot(z, pos, "o", mfc="none", mec="k", ms=8, ls="none", zorder=4, gid="z")
    names = [f"{i} (weak)" if w else str(i) for i, w in zip(df["id"], df["weak"], strict=True)]
    ax.set_yticks(pos, names)
    ax.set_ylim(len(df) - 0.5, -0.5)
    finite = np.abs(z[np.isfinite(z)])
    if finite.size and finite.max() > 20:
        ax.set_xscale("symlog", linthresh=2.0)
    theme.label_axes(
        ax,
        "Simulated vs band: (simulated − centre) / half width (band half widths)",
        "Public data point (id)",
    )
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_parameters(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Each parameter's estimate (``gid="estimate"``) and 95% interval (``gid="interval"``, the
    error bars, clipped to the axis) as positions in its search range, one row per parameter,
    labelled with the values; a parameter that is not identified is ringed
    (``gid="not_identified"``) and flagged in its label."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 0.7 * len(df) + 1.5))
    c_ok, c_not = theme.colors(2)
    pos = np.arange(len(df), dtype=np.float64)
    est = df["position"].to_numpy(dtype=np.float64)
    lo = np.clip(df["position_low"].to_numpy(dtype=np.float64), -0.5, 1.5)
    hi = np.clip(df["position_high"].to_numpy(dtype=np.float64), -0.5, 1.5)
    ax.axvspan(0.0, 1.0, color="0.92", gid="range", label="search range")
    bars = ax.errorbar(
        est,
        pos,
        xerr=np.vstack([est - lo, hi - est]),
        fmt="none",
        ecolor="0.3",
        capsize=4,
        label="95% interval",
    )
    bars.lines[2][0].set_gid("interval")
    ax.plot(est, pos, "o", color=c_ok, ls="none", zorder=3, gid="estimate", label="estimate")
    ok = df["identified"].to_numpy(dtype=bool)
    if (~ok).any():
        ax.scatter(
            est[~ok],
            pos[~ok],
            s=160,
            facecolors="none",
            edgecolors=c_not,
            linewidths=1.5,
            zorder=4,
            gid="not_identified",
            label="not identified",
        )
    labels = []
    for _, r in df.iterrows():
        units = theme.quantity(str(r["name"]))[1]
        unit = "" if units in ("value", "ratio", "share", "") else f" {units}"
        scale = ", log scale" if r["log"] else ""
        text = (
            f"{r['name']} = {plots.number(r['estimate'])}{unit}\n"
            f"95% [{plots.number(r['ci_low'])}, {plots.number(r['ci_high'])}]; searched "
            f"{plots.number(r['lo'])}–{plots.number(r['hi'])}{scale}"
        )
        labels.append(text + ("\nnot identified" if not r["identified"] else ""))
    ax.set_yticks(pos, labels, fontsize="small")
    ax.set_ylim(len(df) - 0.5, -0.5)
    ax.set_xlim(-0.55, 1.55)
    theme.label_axes(
        ax, "Position in the search range (0 = its low end, 1 = its high end)", "Parameter (units)"
    )
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def findings(doc: Mapping[str, Any], res: pd.DataFrame, par: pd.DataFrame) -> str:
    """``"Calibration of trump_2024: loss 21.3 (band loss 21), 2 of 6 data points inside their
    bands: not all bands met. Fit: x = 1.98e+06 95% [...]; y = 37 [...] (not identified)."``"""
    inside = int(res["inside"].sum())
    met = "all bands met" if doc.get("inside_all_bands") else "not all bands met"
    fit = "; ".join(
        f"{r['name']} = {plots.number(r['estimate'])} 95% [{plots.number(r['ci_low'])}, "
        f"{plots.number(r['ci_high'])}]" + ("" if r["identified"] else " (not identified)")
        for _, r in par.iterrows()
    )
    return (
        f"Calibration of {doc.get('event')}: loss {plots.number(_f(doc.get('loss')))} "
        f"(band loss {plots.number(_f(doc.get('band_loss')))}), {inside} of {len(res)} data "
        f"points inside their bands: {met}, in {doc.get('runs')} runs. Fit: {fit}."
    )
