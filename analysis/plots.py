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


LABEL_PREFIX = "label/"
"""Gid prefix of the labels of vertical lines (``time_label``), which ``unclutter`` stacks."""

_PAD_PX = 2.0  # the gap kept between two labels' boxes


def thousands(axis: Any) -> None:
    """Tick labels of ``axis`` (``ax.xaxis``/``ax.yaxis``) as 29,000, not 29000 or 2.9e4."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
    if axis.get_scale() == "log":
        axis.set_minor_formatter(NullFormatter())  # 2..9 x 10^k labels overlap


def legend_outside(ax: Axes, **kwargs: Any) -> Any:
    """The legend to the right of ``ax``, never over the data (``tight_layout`` makes room)."""
    kwargs.setdefault("fontsize", "x-small")
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def time_label(ax: Axes, t: float, text: str, gid: str, color: Any = "0.2") -> Any:
    """A label for the vertical line at ``t`` (data units), at the top of ``ax``, gid
    ``label/<gid>``; ``unclutter`` (``analysis.notebook.save`` calls it) stacks the labels so
    that none overlaps another, whatever the times."""
    txt = ax.text(
        t,
        0.98,
        text,
        transform=ax.get_xaxis_transform(),
        va="top",
        ha="left",
        fontsize="x-small",
        color=color,
        gid=f"{LABEL_PREFIX}{gid}",
        zorder=6,
        bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
    )
    txt.line_t = float(t)  # type: ignore[attr-defined]  # where its line is (unclutter moves it)
    txt.full_text = text  # type: ignore[attr-defined]  # what unclutter may shorten
    return txt


def label_boxes(ax: Axes) -> list[Any]:
    """The window extents (``Bbox``, pixels) of the visible ``time_label`` texts of ``ax``."""
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    return [t.get_window_extent(renderer) for t in _labels(ax)]


def _labels(ax: Axes) -> list[Any]:
    lo, hi = sorted(ax.get_xlim())
    found = [t for t in ax.texts if str(t.get_gid() or "").startswith(LABEL_PREFIX)]
    for t in found:
        t.set_visible(lo <= _line_t(t) <= hi)  # a label off the axis: none
    return sorted((t for t in found if t.get_visible()), key=_line_t)


def _line_t(txt: Any) -> float:
    return float(getattr(txt, "line_t", txt.get_position()[0]))


def unclutter(ax: Axes, top: float = 0.98) -> None:
    """Stack the ``time_label`` texts of ``ax`` in rows from the top so that no two boxes overlap
    (measured by the renderer at the axes' current size: call it after the layout). A label is
    hung on the left of its line when it would run out of the axes on the right (pushed inside
    them when it runs out on both sides), and shortened with "…" when it is wider than the axes.
    Calling it again (a new layout) starts from the labels' full words and lines."""
    labels = _labels(ax)
    if not labels:
        return
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    rows: list[list[Any]] = []
    for txt in labels:
        txt.set_text(str(getattr(txt, "full_text", txt.get_text())).strip())
        txt.set_x(_line_t(txt))
        txt.set_ha("left")
        txt.set_y(top)
        box = txt.get_window_extent(renderer)
        full = txt.get_text()
        while box.width > frame.width - 2 * _PAD_PX and len(txt.get_text()) > 2:
            txt.set_text(full[: len(txt.get_text()) - 2].rstrip() + "…")  # wider than the axes
            box = txt.get_window_extent(renderer)
        if box.x1 > frame.x1:  # hung on the left of its line, or else pushed inside the axes
            txt.set_ha("right")
            box = txt.get_window_extent(renderer)
            if box.x0 < frame.x0:
                txt.set_ha("left")
                left = max(frame.x0, frame.x1 - (box.x1 - box.x0) - _PAD_PX)
                txt.set_x(float(ax.transData.inverted().transform((left, 0.0))[0]))
                box = txt.get_window_extent(renderer)
        step = (box.height + 2 * _PAD_PX) / max(frame.height, 1.0)
        for row in range(len(labels)):
            txt.set_y(top - row * step)
            box = txt.get_window_extent(renderer).padded(_PAD_PX / 2)
            if row == len(rows):
                rows.append([])
            if not any(box.overlaps(other) for other in rows[row]):
                rows[row].append(box)
                break


def timeline(
    df: pd.DataFrame,
    ax: Axes | None = None,
    events: pd.DataFrame | None = None,
    ylabel: str | None = None,
) -> Axes:
    """One line per series and run of a ``frames.timeline`` frame, over time.

    Lines carry ``gid = "<series>/<run>"`` and the series' label. The y label is ``ylabel``, else
    the series' (one series) or the display units they share; series of different units are
    refused: draw them on separate axes. ``events`` (``frames.events``) are drawn as dotted
    vertical lines (gid ``event``, one legend entry naming their kinds; ``label_events`` words
    them). The legend is to the right of the axes.
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
    marked = events is not None and not events.empty
    if events is not None and marked:
        kinds = ", ".join(sorted(set(events["kind"].astype(str))))
        for i, t in enumerate(events["t_s"].dropna().unique()):
            label = f"events ({kinds})" if i == 0 else None
            ax.axvline(float(t), color="0.4", ls=":", lw=0.8, gid="event", label=label)
    if ylabel is None and len(names) == 1:
        ylabel = theme.label(names[0], str(df["units"].iloc[0]))
    elif ylabel is None:
        ylabel = f"Value ({shown.pop()})"
    theme.label_axes(ax, theme.label("t_s"), ylabel)
    thousands(ax.yaxis)
    thousands(ax.xaxis)
    if len(names) * len(runs) > 1 or marked:
        legend_outside(ax)
    return ax


def label_events(ax: Axes, marks: pd.DataFrame) -> list[Any]:
    """A ``time_label`` per row of ``frames.event_marks`` (gid ``label/event/<t_s>``)."""
    return [
        time_label(ax, float(r["t_s"]), str(r["label"]), f"event/{float(r['t_s']):g}", "0.3")
        for _, r in marks.iterrows()
    ]


def minutes_above(ax: Axes, longer_than_s: float = 1800.0) -> Any:
    """A second time axis in minutes along the top of ``ax`` when its time span is longer than
    ``longer_than_s`` (a replay's "44 min late" reads off it); the seconds stay below. Returns
    the secondary axis, or ``None``."""
    lo, hi = ax.get_xlim()
    if hi - lo <= longer_than_s:
        return None
    top = ax.secondary_xaxis("top", functions=(lambda s: s / 60.0, lambda m: m * 60.0))
    top.set_xlabel("Time (min)", fontsize="small")
    top.tick_params(labelsize="small")
    thousands(top.xaxis)
    return top


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
        label = f"{conf:.0%} interval {number(lo)}–{number(hi)}"
        ax.axvspan(lo, hi, color=c_fit, alpha=0.15, gid="interval", label=label)
    if math.isfinite(est):
        label = f"threshold {number(est)}"
        ax.axvline(est, color="k", ls="--", lw=1.0, gid="estimate", label=label)
    target = float(cell.get("target", math.nan))
    if math.isfinite(target):
        label = f"target P(failure) = {target:g}"
        ax.axhline(target, color="0.5", ls=":", lw=0.8, gid="target", label=label)
    if bool(cell.get("log_scale", False)):
        from matplotlib.ticker import LogLocator

        ax.set_xscale("log")
        xs = mine["x"].to_numpy(dtype=np.float64)
        xs = xs[np.isfinite(xs) & (xs > 0)]
        decades = math.log10(xs.max() / xs.min()) if xs.size else 2.0
        if decades <= 1.2:  # ticks within a decade; over more, 2 and 5 x 10^k labels collide
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    thousands(ax.xaxis)
    ax.set_ylim(-0.05, 1.05)
    param = str(cell.get("parameter", "x"))
    theme.label_axes(ax, theme.label(param), theme.label("failed"))
    legend_outside(ax, fontsize="small")
    return ax


def capacity_curve(
    cells_df: pd.DataFrame, x: str, ax: Axes | None = None, hue: str | None = None
) -> Axes:
    """Threshold estimates (with their intervals as error bars) against a second parameter
    ``x`` (an override column of ``frames.threshold`` cells); one line per ``hue`` value."""
    ax = _axes(ax)
    groups = [(None, cells_df)] if hue is None else list(cells_df.groupby(hue, sort=True))
    colors = theme.colors(len(groups))
    conf = (
        float(cells_df["confidence"].iloc[0])
        if "confidence" in cells_df and len(cells_df)
        else 0.95
    )
    what = f"threshold, with its {conf:.0%} interval"
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
            label=what if key is None else f"{theme.quantity(str(hue))[0]} = {key!s}",
        )
        bars.lines[0].set_gid("thresholds" if key is None else f"thresholds/{key!s}")
    if len(cells_df) and all(float(v).is_integer() for v in cells_df[x]):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no 4.25 workers
    thousands(ax.xaxis)
    thousands(ax.yaxis)
    param = str(cells_df["parameter"].iloc[0]) if len(cells_df) else "threshold"
    words, units = theme.quantity(param)
    theme.label_axes(ax, theme.label(x), f"{words} at threshold ({units})")
    ax.legend(fontsize="small")  # what the points and bars are (and the hue's values)
    target = float(cells_df["target"].iloc[0]) if "target" in cells_df and len(cells_df) else None
    if target is not None and math.isfinite(target):
        ax.set_title(f"threshold: where P(failure) = {target:g}", fontsize="small")
    lo, hi = ax.get_ylim()
    ax.set_ylim(bottom=max(lo, 0.0) if lo < 0 <= np.nanmin(cells_df["ci_low"]) else lo, top=hi)
    return ax


def _tick(v: Any) -> str:
    """A parameter value as a tick label: a number by ``number`` (whole ones without ".0")."""
    if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
        f = float(v)
        return f"{f:,.0f}" if f.is_integer() else number(f)
    return str(v)


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
    words = table.map(lambda v: number(float(v)) if math.isfinite(v) else "") if annot else False
    sns.heatmap(
        table,
        ax=ax,
        annot=words.to_numpy() if annot else False,  # 21,430, not 2.143e+04
        fmt="",
        cmap="viridis",
        cbar_kws={"label": vlabel},
        xticklabels=[_tick(v) for v in table.columns],  # 50,000, not 50000.0
        yticklabels=[_tick(v) for v in table.index],
    )
    ax.tick_params(axis="y", rotation=0)
    ax.grid(False)  # the theme's grid lines would cross the cells and their numbers
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
        what = "share of runs" if centre == "share" else "mean over the runs"
        ax.set_title(f"{what}, with its {float(conf):.0%} interval", fontsize="small")
    if ax.get_xscale() != "log":
        thousands(ax.xaxis)
    words, by_units = theme.quantity(by)
    keys = df.attrs.get("keys")
    if keys:  # "admission=none, client=immediate": say what the combinations are of
        kinds = [theme.quantity(str(k))[0].lower().removesuffix(" policy") for k in keys]
        ylabel = f"{words} ({', '.join(kinds)})"  # "Policy (admission, client retry)"
    else:
        ylabel = f"{words} ({'name' if by_units == 'value' else by_units})"
    theme.label_axes(ax, xlabel, ylabel)
    return ax
