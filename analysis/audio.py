"""The figure of the fan-out saturation: listeners, audio on time and reconnects, one line per run.

Reads a sweep archive (``sweep.h5``) of ``experiment=fanout_saturation`` over the edge egress
(``docs/fanout.md``) through ``sim.archive`` and draws, per run, the listeners in the room, the
share of the segments due that arrived on time and the listeners dropped for stalling per second
(both per segment)::

    spacesim run -m experiment=fanout_saturation \\
        platform.fanout.edge.egress_gbps=0.03,0.045,0.065 hydra.sweep.dir=results/fanout
    python -m analysis.audio results/fanout/sweep.h5 --out docs/figures/fanout_saturation.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sim.archive import ArchiveError, read_summary, read_timeseries

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PARAMETER = "platform.fanout.edge.egress_gbps"


def frames(archive: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(summary, timeseries)`` of the archive's runs (long format, ``run`` in both)."""
    return read_summary(archive), read_timeseries(archive)


def on_time_share(ts: pd.DataFrame) -> pd.DataFrame:
    """The ticks in which a segment was computed, with its on-time share."""
    rows = ts[ts["audio_due"] > 0]
    return rows.assign(on_time_share=rows["audio_on_time"] / rows["audio_due"])


def plot(summary: pd.DataFrame, ts: pd.DataFrame, out: Path | None = None) -> Any:
    """Three panels over time; returns the figure (saved to ``out`` when given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    top, mid, bottom = axes
    for run, one in ts.groupby("run", sort=False):
        row = summary[summary["run"] == run].iloc[0]
        egress = row.get(PARAMETER, np.nan)
        name = f"edge egress {egress:g} Gb/s/node" if np.isfinite(egress) else str(run)
        name += f": {row['audio_delivered_ratio']:.1%} on time"
        t = one["t_s"].to_numpy()
        top.plot(t, one["concurrent"].to_numpy(), lw=1.3, label=name)
        seg = on_time_share(one)
        mid.plot(seg["t_s"].to_numpy(), seg["on_time_share"].to_numpy(), lw=1.1)
        st = seg["t_s"].to_numpy()
        every = float(np.median(np.diff(st))) if st.size > 1 else 1.0  # the segment length
        bottom.plot(st, seg["audio_dropped"].to_numpy() / every, lw=1.0)
    top.set_ylabel("listeners in the room")
    mid.set_ylabel("segments on time (share)")
    mid.set_ylim(0, 1.05)
    bottom.set_ylabel("dropped for stalling\n(listeners/s)")
    bottom.set_xlabel("time (s)")
    busy = ts[ts["concurrent"] > 0]["t_s"]
    for ax in axes:
        ax.grid(alpha=0.3)
        if busy.size:
            ax.set_xlim(0, min(float(busy.max()), 1200.0))
    top.legend(fontsize=8, loc="upper right")
    top.set_title("Edge egress short of the audio: stalls, reconnects, a slower start")
    fig.tight_layout()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("archive", type=Path, help="a sweep.h5 (or run.h5) of fanout_saturation")
    p.add_argument("--out", type=Path, default=Path("docs/figures/fanout_saturation.png"))
    a = p.parse_args(argv)
    try:
        summary, ts = frames(a.archive)
    except (ArchiveError, OSError) as exc:
        print(f"{a.archive}: {exc}", file=sys.stderr)
        return 2
    if "audio_due" not in ts:
        print(f"{a.archive}: no fan-out time series (fan-out off?)", file=sys.stderr)
        return 2
    plot(summary, ts, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --- the report section (analysis/notebooks/audio.py, sim.report) ---------------------------

TIERS = ("sfu", "origin", "relay", "edge")
"""The fan-out tiers, from the speakers to the listeners (``docs/fanout.md``)."""

REQUIRED = ("audio_delivered_ratio", "stall_s_per_listener_min")
"""The summary metrics the report's audio section needs (NaN: the fan-out was off)."""


def delivery(ts: pd.DataFrame) -> pd.DataFrame:
    """Per run and segment interval (the ticks with segments due): ``run, t_s``,
    ``on_time_share`` (segments on time / due) and ``stall_s_per_listener_min`` (stall seconds
    per listener-minute of audio due, ``60 · stall_s / listen_s``)."""
    seg = on_time_share(ts)
    listen = seg["listen_s"].to_numpy(dtype=np.float64)
    stall = 60.0 * seg["stall_s"].to_numpy(dtype=np.float64) / np.where(listen > 0, listen, np.nan)
    out = seg[["run", "t_s", "on_time_share"]].assign(stall_s_per_listener_min=stall)
    return out.reset_index(drop=True)


def tiers(summary: pd.DataFrame) -> pd.DataFrame:
    """Per tier (``TIERS`` order, those in the summary): the peak egress asked and served as a
    share of the tier's capacity (``egress_demand_peak.<tier>``, ``egress_utilisation_peak.
    <tier>``), the mean over the runs."""
    rows = []
    for t in TIERS:
        d, u = f"egress_demand_peak.{t}", f"egress_utilisation_peak.{t}"
        if d in summary.columns and u in summary.columns:
            dv, uv = summary[d].astype(np.float64), summary[u].astype(np.float64)
            rows.append(
                {
                    "tier": t,
                    "demand": float(dv.mean()),
                    "served": float(uv.mean()),
                    "demand_min": float(dv.min()),
                    "demand_max": float(dv.max()),
                    "served_min": float(uv.min()),
                    "served_max": float(uv.max()),
                    "runs": int(dv.notna().sum()),
                }
            )
    cols = ["tier", "demand", "served", "demand_min", "demand_max", "served_min", "served_max"]
    return pd.DataFrame(rows, columns=[*cols, "runs"])


def run_names(summary: pd.DataFrame) -> dict[Any, str]:
    """A legend entry per run: its varied parameters (not the seed alone), else ``run N``."""
    params = [p for p in summary.attrs.get("parameters", []) if summary[p].nunique() > 1]
    params = [p for p in params if p != "seed"] or params
    from analysis import theme

    return {
        row["run"]: ", ".join(theme.setting(p, row[p]) for p in params) or f"run {row['run']}"
        for _, row in summary.iterrows()
    }


STYLES = ("-", "--", ":", "-.")
"""Line styles per run, in turn: runs that draw the same line (all on time) stay visible."""


def plot_delivery(d: pd.DataFrame, names: dict[Any, str], axes: Any = None) -> Any:
    """Two panels over time, one line per run: segments on time (share, gid ``on_time/<run>``)
    and stall time (s per listener-minute, gid ``stall/<run>``)."""
    import matplotlib.pyplot as plt

    from analysis import theme

    if axes is None:
        _, axes = plt.subplots(2, 1, sharex=True)
    top, bottom = axes
    runs = list(dict.fromkeys(d["run"]))
    from analysis import plots

    for i, (run, color) in enumerate(zip(runs, theme.colors(len(runs)), strict=True)):
        one = d[d["run"] == run]
        t = one["t_s"].to_numpy()
        name = names.get(run, str(run))
        style = {"color": color, "ls": STYLES[i % len(STYLES)], "lw": 1.6 if i == 0 else 1.3}
        top.plot(t, one["on_time_share"].to_numpy(), label=name, **style)
        top.lines[-1].set_gid(f"on_time/{run}")
        bottom.plot(t, one["stall_s_per_listener_min"].to_numpy(), **style)
        bottom.lines[-1].set_gid(f"stall/{run}")
    top.set_ylim(-0.02, 1.05)
    from matplotlib.ticker import PercentFormatter

    top.yaxis.set_major_formatter(PercentFormatter(1.0))
    theme.label_axes(top, theme.label("t_s"), "Segments on time (% of due)")
    theme.label_axes(bottom, theme.label("t_s"), "Stall (s per listener-minute)")
    top.set_xlabel("")
    plots.thousands(bottom.xaxis)
    if len(runs) > 1:
        plots.legend_outside(top, fontsize="small")
    return axes


def plot_tiers(tr: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Per tier, the peak egress asked and served as a share of capacity (bars, gids
    ``demand/<tier>`` and ``served/<tier>``); the dashed line at 1 is the capacity."""
    import matplotlib.pyplot as plt

    from analysis import theme

    if ax is None:
        _, ax = plt.subplots()
    pos = np.arange(len(tr))
    c_d, c_s = theme.colors(2)
    width = 0.38
    asked = ax.bar(pos - width / 2, tr["demand"], width, color=c_d, label="asked (peak)")
    served = ax.bar(pos + width / 2, tr["served"], width, color=c_s, label="served (peak)")
    for tier, a, s in zip(tr["tier"], asked.patches, served.patches, strict=True):
        a.set_gid(f"demand/{tier}")
        s.set_gid(f"served/{tier}")
    runs = int(tr["runs"].max()) if "runs" in tr and len(tr) else 1
    if runs > 1 and "demand_min" in tr:  # the runs' spread around the mean of their peaks
        for off, key in ((-width / 2, "demand"), (width / 2, "served")):
            mid = tr[key].to_numpy(dtype=np.float64)
            err = np.vstack(
                [
                    mid - tr[f"{key}_min"].to_numpy(dtype=np.float64),
                    tr[f"{key}_max"].to_numpy(dtype=np.float64) - mid,
                ]
            )
            bars = ax.errorbar(pos + off, mid, yerr=err, fmt="none", ecolor="0.2", capsize=3)
            bars.lines[2][0].set_gid(f"range/{key}")
        bars.lines[2][0].set_label(f"lowest to highest of the {runs} runs")
    ax.axhline(1.0, color="0.3", ls="--", lw=0.9, gid="capacity", label="tier capacity (100%)")
    ax.set_xticks(pos, [str(t) for t in tr["tier"]])
    ax.set_yscale("log")  # the tiers' shares span orders of magnitude
    vals = [tr["demand"], tr["served"]]
    if "demand_min" in tr:
        vals += [tr["demand_min"], tr["served_min"]]
    if "demand_max" in tr:
        vals += [tr["demand_max"], tr["served_max"]]
    low = np.nanmin(np.concatenate(vals)) if len(tr) else 1.0
    high = np.nanmax(np.concatenate(vals)) if len(tr) else 1.0
    top = max(2.0, 2.0 * float(high)) if np.isfinite(high) else 2.0  # the capacity line in view
    ax.set_ylim(bottom=max(1e-6, 0.5 * float(low)) if low > 0 else 1e-6, top=top)
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.10g}%"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    theme.label_axes(
        ax, "Fan-out tier (from speakers to listeners)", "Peak egress (% of the tier's capacity)"
    )
    if runs > 1:
        ax.set_title(f"bars: mean over {runs} runs of each run's peak", fontsize="small")
    from analysis import plots

    plots.legend_outside(ax, fontsize="small")
    return ax


def findings(summary: pd.DataFrame, tr: pd.DataFrame, names: dict[Any, str]) -> str:
    """Per run the delivered ratio and stall time; the tier with the highest peak demand."""
    parts = [
        f"{names.get(r['run'], r['run'])}: {float(r['audio_delivered_ratio']):.1%} of segments on "
        f"time, {float(r['stall_s_per_listener_min']):.3g} s stalled per listener-minute"
        for _, r in summary.iterrows()
    ]
    text = f"Audio fan-out ({len(summary)} runs): " + "; ".join(parts)
    if len(tr):
        worst = tr.iloc[int(tr["demand"].fillna(-float("inf")).to_numpy().argmax())]
        text += (
            f". The {worst['tier']} tier is the busiest: peak demand {worst['demand']:.3g} of its "
            f"capacity, {worst['served']:.3g} served"
        )
    return text + "."
