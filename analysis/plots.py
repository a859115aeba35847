"""Report figures from tidy frames (``analysis.frames``, ``analysis.stats``).

Every function takes a frame and an optional ``ax`` (a new figure when None), draws on it and
returns the Axes. Every axis label carries units in parentheses (``analysis.theme.label``), and
there is a legend wherever more than one series is drawn. Call ``analysis.theme.apply()`` first
for the report look; the backend is the caller's (Agg in tests and batch jobs).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import seaborn as sns

from analysis import stats, theme

if TYPE_CHECKING:
    from matplotlib.axes import Axes

log = logging.getLogger(__name__)


def number(v: float) -> str:
    """A value for a label or a sentence: 29,061 for a count-sized value, 4 digits otherwise."""
    return f"{v:,.0f}" if math.isfinite(v) and abs(v) >= 1000 else f"{v:.4g}"


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots()
    return new


def _units(df: pd.DataFrame, column: str) -> str | None:
    units = df.attrs.get("units")
    return units.get(column) if isinstance(units, Mapping) else None


def timeline(df: pd.DataFrame, ax: Axes | None = None, events: pd.DataFrame | None = None) -> Axes:
    """One line per series and run of a ``frames.timeline`` frame, over time.

    Lines carry ``gid = "<series>/<run>"`` and the series' label. The y label is the series'
    (one series) or the display units they share; series of different units are refused: draw
    them on separate axes. ``events`` (``frames.events``) are drawn as dotted vertical lines.
    """
    ax = _axes(ax)
    if df.empty:
        raise ValueError("no rows to draw (does the archive have time series?)")
    names = list(dict.fromkeys(df["series"]))
    shown = {theme.quantity(s, u)[1] for s, u in df[["series", "units"]].drop_duplicates().values}
    if len(shown) > 1:
        raise ValueError(f"series of different units on one axis: {sorted(shown)}")
    palette = dict(zip(names, theme.colors(len(names)), strict=True))
    runs = list(dict.fromkeys(df["run"]))
    styles = ["-", "--", ":", "-."]
    for (name, run), part in df.groupby(["series", "run"], sort=False):
        words = theme.quantity(str(name), str(part["units"].iloc[0]))[0]
        text = words if len(runs) == 1 else f"{words}, run {run}"
        ax.plot(
            part["t_s"].to_numpy(),
            part["value"].to_numpy(),
            color=palette[name],
            ls=styles[runs.index(run) % len(styles)],
            lw=1.3,
            label=text,
            gid=f"{name}/{run}",
        )
    if events is not None and not events.empty:
        for t in events["t_s"].dropna().unique():
            ax.axvline(float(t), color="0.4", ls=":", lw=0.8, gid="event")
    if len(names) == 1:
        ylabel = theme.label(names[0], str(df["units"].iloc[0]))
    else:
        ylabel = f"Value ({shown.pop()})"
    theme.label_axes(ax, theme.label("t_s"), ylabel)
    from matplotlib.ticker import FuncFormatter

    # whole numbers with thousands separators, not "1e6" above the axis
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
    if len(names) * len(runs) > 1:
        ax.legend(fontsize="small")
    return ax


def failure_curve(
    runs_df: pd.DataFrame, cell: Mapping[str, Any] | pd.Series, ax: Axes | None = None
) -> Axes:
    """A threshold cell: its runs at 0 (passed) and 1 (failed), the fitted P(failure), the
    estimate (vertical line, ``gid="estimate"``) and its interval (shaded, ``gid="interval"``).

    ``runs_df`` and ``cell`` are from ``frames.threshold``; runs of other cells are left out.
    """
    ax = _axes(ax)
    mine = runs_df[runs_df["cell"] == cell["cell"]] if "cell" in runs_df else runs_df
    c_ok, c_fail, c_fit = theme.colors(3)
    ok, bad = mine[~mine["failed"]], mine[mine["failed"]]
    ax.scatter(ok["x"], np.zeros(len(ok)), color=c_ok, marker="o", label="run passed", gid="ok")
    ax.scatter(
        bad["x"], np.ones(len(bad)), color=c_fail, marker="x", label="run failed", gid="fail"
    )
    est, lo, hi = (float(cell[k]) for k in ("estimate", "ci_low", "ci_high"))
    if math.isfinite(float(cell.get("slope", math.nan))) and math.isfinite(est):
        curve = stats.failure_probability(cell)
        ax.plot(curve["x"], curve["p"], color=c_fit, lw=1.6, label="fitted P(failure)", gid="fit")
    if math.isfinite(lo) and math.isfinite(hi):
        conf = float(cell.get("confidence", math.nan))
        ax.axvspan(lo, hi, color=c_fit, alpha=0.15, gid="interval", label=f"{conf:.0%} interval")
    if math.isfinite(est):
        label = f"threshold {number(est)}"
        ax.axvline(est, color="k", ls="--", lw=1.0, gid="estimate", label=label)
    target = float(cell.get("target", math.nan))
    if math.isfinite(target):
        ax.axhline(target, color="0.5", ls=":", lw=0.8, gid="target")
    if bool(cell.get("log_scale", False)):
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())  # 2..9 x 10^k labels overlap
    ax.set_ylim(-0.05, 1.05)
    param = str(cell.get("parameter", "x"))
    theme.label_axes(ax, theme.label(param), theme.label("failed"))
    ax.legend(fontsize="small")
    return ax


def capacity_curve(
    cells_df: pd.DataFrame, x: str, ax: Axes | None = None, hue: str | None = None
) -> Axes:
    """Threshold estimates (with their intervals as error bars) against a second parameter
    ``x`` (an override column of ``frames.threshold`` cells); one line per ``hue`` value."""
    ax = _axes(ax)
    groups = [(None, cells_df)] if hue is None else list(cells_df.groupby(hue, sort=True))
    colors = theme.colors(len(groups))
    for (key, part), color in zip(groups, colors, strict=True):
        part = part.sort_values(x)
        est = part["estimate"].to_numpy(dtype=np.float64)
        err = np.vstack(
            [
                est - part["ci_low"].to_numpy(dtype=np.float64),
                part["ci_high"].to_numpy(dtype=np.float64) - est,
            ]
        )
        bars = ax.errorbar(
            part[x].to_numpy(dtype=np.float64),
            est,
            yerr=err,
            marker="o",
            capsize=3,
            color=color,
            label=None if key is None else f"{hue} = {key!s}",
        )
        bars.lines[0].set_gid("thresholds" if key is None else f"thresholds/{key!s}")
    param = str(cells_df["parameter"].iloc[0]) if len(cells_df) else "threshold"
    words, units = theme.quantity(param)
    theme.label_axes(ax, theme.label(x), f"{words} at threshold ({units})")
    if len(groups) > 1:
        ax.legend(fontsize="small")
    return ax


def heatmap(
    summary_df: pd.DataFrame,
    x: str,
    y: str,
    value: str,
    ax: Axes | None = None,
    annot: bool = True,
) -> Axes:
    """The mean of ``value`` over the replications of each (``x``, ``y``) cell of a summary
    frame, as a seaborn heatmap (colour bar labelled with units); ``y`` grows upwards."""
    ax = _axes(ax)
    data = summary_df[[x, y, value]].astype({value: np.float64})
    table = data.pivot_table(index=y, columns=x, values=value, aggfunc="mean").sort_index(
        ascending=False
    )
    vlabel = theme.label(value, _units(summary_df, value), total=True)
    sns.heatmap(table, ax=ax, annot=annot, fmt=".4g", cmap="viridis", cbar_kws={"label": vlabel})
    theme.label_axes(
        ax, theme.label(x, _units(summary_df, x)), theme.label(y, _units(summary_df, y))
    )
    return ax


def policy_comparison(
    df: pd.DataFrame, ax: Axes | None = None, by: str | None = None, value: str | None = None
) -> Axes:
    """Mean and interval per policy: a ``stats.grouped_ci`` frame (``mean``, ``ci_low``,
    ``ci_high``) or a ``stats.failure_share`` frame (``share``), one row per policy.

    ``by`` defaults to the frame's first column, ``value`` (for the label) to ``attrs["value"]``.
    Points with horizontal error bars, one row of the y axis per policy.
    """
    ax = _axes(ax)
    by = by or str(df.columns[0])
    centre = "mean" if "mean" in df.columns else "share"
    value = value or str(df.attrs.get("value", centre))
    units = df.attrs.get("units")
    mid = df[centre].to_numpy(dtype=np.float64)
    err = np.vstack(
        [
            mid - df["ci_low"].to_numpy(dtype=np.float64),
            df["ci_high"].to_numpy(dtype=np.float64) - mid,
        ]
    )
    pos = np.arange(len(df))
    bars = ax.errorbar(mid, pos, xerr=err, fmt="o", capsize=3, color=theme.colors(1)[0])
    bars.lines[0].set_gid("policies")
    ax.set_yticks(pos, [str(v) for v in df[by]])
    ax.set_ylim(len(df) - 0.5, -0.5)  # the first policy on top
    xlabel = theme.label(value, units if isinstance(units, str) else None, total=True)
    if centre == "share":
        xlabel = f"{theme.quantity(value)[0]} (share of runs)"
    conf = df.attrs.get("confidence")
    if conf is not None:
        ax.set_title(f"mean and {float(conf):.0%} interval", fontsize="small")
    words, by_units = theme.quantity(by)
    theme.label_axes(ax, xlabel, f"{words} ({'policy' if by_units == 'value' else by_units})")
    return ax
