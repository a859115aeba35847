"""The figure of the metastable retry storm: goodput and attempts over time, one line per run.

Reads the runs of a multirun of ``experiment=metastable_retry_storm`` (``docs/metastability.md``)
from their archives and draws, for each, the joins completed per second (goodput) and the join
attempts per second, with the capacity dip shaded::

    spacesim run -m experiment=metastable_retry_storm 'client.retry_budget=null,0.1' \\
        'client.throttle_k=null,2' hydra.sweep.dir=results/metastable
    python -m analysis.metastability results/metastable --out docs/figures/metastable.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import pandas as pd
import yaml

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLUMNS = ("t_s", "joined", "attempts", "arrivals")


def load(run_dir: Path) -> dict[str, np.ndarray]:
    """The per-tick columns of one run's ``run.h5`` that the figure needs."""
    with h5py.File(run_dir / "run.h5", "r") as f:
        return {c: np.asarray(f["timeseries"][c][()]) for c in COLUMNS}


def label(run_dir: Path) -> str:
    """What the run changed, from its Hydra overrides (without the experiment)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(path.read_text()) if path.is_file() else []
    kept = [o for o in overrides if not o.startswith(("experiment=", "hydra"))]
    nulls = ("client.retry_budget=null", "client.throttle_k=null")
    kept = [o for o in kept if o not in nulls]
    return ", ".join(kept) or "aggressive retries (0.5 s, no budget, no throttle)"


def smooth(x: np.ndarray, ticks: int) -> np.ndarray:
    return np.convolve(x, np.ones(ticks) / ticks, mode="same")


def plot(runs: dict[str, dict[str, np.ndarray]], out: Path, dip: tuple[float, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for name, ts in runs.items():
        t = ts["t_s"]
        dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
        top.plot(t, smooth(ts["joined"] / dt, 10), label=name, lw=1.4)
        bottom.plot(t, smooth(ts["attempts"] / dt, 10), label=name, lw=1.4)
    first = next(iter(runs.values()))
    dt = float(np.median(np.diff(first["t_s"])))
    top.plot(first["t_s"], smooth(first["arrivals"] / dt, 10), "k:", lw=1, label="new listeners")
    busy = first["t_s"][first["arrivals"] > 0]
    for ax in (top, bottom):
        ax.axvspan(*dip, color="0.85", zorder=0)
        ax.set_xlim(0, float(busy[-1]) + 120 if busy.size else None)
        ax.grid(alpha=0.3)
    top.set_ylabel("joins completed (1/s)")
    bottom.set_ylabel("join attempts (1/s)")
    bottom.set_yscale("log")
    bottom.set_xlabel("time (s); shaded: 5 of 8 nodes drained")
    top.legend(fontsize=8, loc="upper right")
    top.set_title("A 30 s capacity dip: metastable under aggressive retries, not under a budget")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep_dir", type=Path, help="the multirun's sweep dir (one job dir each)")
    p.add_argument("--out", type=Path, default=Path("docs/figures/metastable.png"))
    p.add_argument("--dip", type=float, nargs=2, default=(300.0, 330.0), metavar=("FROM", "TO"))
    a = p.parse_args(argv)
    jobs = sorted(d for d in a.sweep_dir.iterdir() if (d / "run.h5").is_file())
    if not jobs:
        print(f"no run.h5 under {a.sweep_dir}", file=sys.stderr)
        return 2
    plot({label(d): load(d) for d in jobs}, a.out, tuple(a.dip))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --- the report section (analysis/notebooks/metastability.py, sim.report) -------------------

REQUIRED = ("arrivals", "attempts", "joined")
"""The per-tick series the report's metastability section needs."""

WINDOW_S = 10.0
"""The report's averaging window: per-second rates over consecutive 10 s blocks of ticks."""


def windows(ts: pd.DataFrame, window_s: float = WINDOW_S) -> pd.DataFrame:
    """Per run and consecutive block of ``window_s`` of ticks (``read_timeseries`` frame): ``run,
    t_s`` (the block's last tick end), ``new_per_s`` (arrivals), ``offered_per_s`` (join
    attempts: new ones and retries), ``goodput_per_s`` (joins completed), each the block's sum
    over its length in seconds. The last, partial block is left out."""
    rows = []
    for run, one in ts.groupby("run", sort=True):
        t = one["t_s"].to_numpy(dtype=np.float64)
        if t.size < 2:
            continue
        tick = float(np.median(np.diff(t)))
        k = max(1, round(window_s / tick))
        n = t.size // k
        if n == 0:
            continue
        block = {c: one[c].to_numpy(dtype=np.float64)[: n * k].reshape(n, k) for c in REQUIRED}
        rows.append(
            pd.DataFrame(
                {
                    "run": run,
                    "t_s": t[k - 1 : n * k : k],
                    "new_per_s": block["arrivals"].sum(axis=1) / (k * tick),
                    "offered_per_s": block["attempts"].sum(axis=1) / (k * tick),
                    "goodput_per_s": block["joined"].sum(axis=1) / (k * tick),
                }
            )
        )
    cols = ["run", "t_s", "new_per_s", "offered_per_s", "goodput_per_s"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


def run_names(summary: pd.DataFrame) -> dict[Any, str]:
    """A legend entry per run: its varied parameters (not the seed alone) or ``run N``."""
    params = [p for p in summary.attrs.get("parameters", []) if summary[p].nunique() > 1]
    params = [p for p in params if p != "seed"] or params
    from analysis import theme

    names = {}
    for _, row in summary.iterrows():
        text = ", ".join(theme.setting(p, row[p]) for p in params)
        names[row["run"]] = text or f"run {row['run']}"
    return names


def hysteresis(
    win: pd.DataFrame,
    names: dict[Any, str],
    trigger_end_s: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Offered load (attempts/s, log scale) against goodput (joins/s), one path per run through
    its ``windows``, gid ``loop/<run>``; the windows after ``trigger_end_s`` are marked (gid
    ``after/<run>``): a loop that does not close is the metastable state."""
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D

    from analysis import plots, theme

    if ax is None:
        _, ax = plt.subplots()
    runs = list(dict.fromkeys(win["run"]))
    for run, color in zip(runs, theme.colors(len(runs)), strict=True):
        one = win[win["run"] == run]
        x, y = one["offered_per_s"].to_numpy(), one["goodput_per_s"].to_numpy()
        name = names.get(run, str(run))
        if len(runs) == 1:
            name = f"{name}: {WINDOW_S:g} s windows in time order"
        ax.plot(x, y, color=color, lw=1.0, alpha=0.8, label=name)
        ax.lines[-1].set_gid(f"loop/{run}")
        if trigger_end_s is not None:
            late = (one["t_s"] > trigger_end_s).to_numpy()
            ax.plot(x[late], y[late], "o", ms=3, color=color, gid=f"after/{run}")
        shown = np.flatnonzero(x > 0)  # the first and last window the log axis can show
        if shown.size:
            first, last = int(shown[0]), int(shown[-1])
            ax.plot(x[first], y[first], "^", ms=8, color=color, mec="k", gid=f"start/{run}")
            ax.plot(x[last], y[last], "s", ms=7, color=color, mec="k", gid=f"end/{run}")
    ax.set_xscale("log", nonpositive="mask")  # no attempts (the room empty): not drawn
    plots.thousands(ax.xaxis)
    theme.label_axes(ax, "Offered load: join attempts (1/s)", "Goodput: joins completed (1/s)")
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    handles: list[Any] = [h for h in ax.get_lines() if str(h.get_gid()).startswith("loop/")]
    key = {"color": "0.3", "mec": "k", "ls": "none"}
    if trigger_end_s is not None:
        handles.append(
            Line2D([], [], marker="o", ms=3, label=f"after the trigger ended ({trigger_end_s:g} s)",
                   **key)
        )  # fmt: skip
    handles += [
        Line2D([], [], marker="^", ms=8, label="first window", **key),
        Line2D([], [], marker="s", ms=7, label="last window", **key),
    ]
    plots.legend_outside(ax, handles=handles, fontsize="small")
    ax.set_title(
        "back to the top left after the trigger: recovered; stuck at the bottom right: metastable",
        fontsize="small",
    )
    return ax


def over_time(
    win: pd.DataFrame,
    names: dict[Any, str],
    events: pd.DataFrame | None = None,
    axes: Any = None,
) -> Any:
    """Two panels over time: goodput per run (top, gid ``goodput/<run>``, with the new load of
    the first run dotted, gid ``new``) and offered load per run (bottom, log scale, gid
    ``offered/<run>``); events (drains, nodes back) as vertical lines."""
    from matplotlib import pyplot as plt

    from analysis import theme

    if axes is None:
        _, axes = plt.subplots(2, 1, sharex=True)
    top, bottom = axes
    runs = list(dict.fromkeys(win["run"]))
    for run, color in zip(runs, theme.colors(len(runs)), strict=True):
        one = win[win["run"] == run]
        name = names.get(run, str(run))
        t = one["t_s"].to_numpy()
        top.plot(t, one["goodput_per_s"], color=color, lw=1.3, label=name, gid=f"goodput/{run}")
        bottom.plot(t, one["offered_per_s"], color=color, lw=1.3, gid=f"offered/{run}")
    if runs:
        first = win[win["run"] == runs[0]]
        top.plot(first["t_s"], first["new_per_s"], "k:", lw=1, label="new listeners", gid="new")
    if events is not None and not events.empty:
        kinds = ", ".join(sorted(set(events["kind"].astype(str))))
        for i, t in enumerate(events["t_s"].dropna().unique()):
            for ax in axes:
                label = f"events ({kinds})" if i == 0 and ax is top else None
                ax.axvline(float(t), color="0.6", ls="--", lw=0.8, gid="event", label=label)
    from analysis import frames, plots

    if events is not None and not events.empty:
        plots.label_events(top, frames.event_marks(events))
    bottom.set_yscale("log", nonpositive="mask")  # no attempts (the room empty): not drawn
    plots.thousands(bottom.yaxis)
    plots.thousands(bottom.xaxis)
    theme.label_axes(top, theme.label("t_s"), "Goodput (joins/s)")
    theme.label_axes(bottom, theme.label("t_s"), "Offered load (attempts/s)")
    top.set_xlabel("")
    top.set_ylim(top=top.get_ylim()[1] * 1.25)  # room for the events' labels above the lines
    plots.legend_outside(top, fontsize="small")
    return axes


def findings(summary: pd.DataFrame, win: pd.DataFrame, names: dict[Any, str]) -> str:
    """A sentence per run: metastable (since when) or not, and the peak retry amplification."""
    parts = []
    for _, row in summary.iterrows():
        one = win[win["run"] == row["run"]]
        peak = float(one["offered_per_s"].max()) if len(one) else float("nan")
        since = row.get("metastable_since_s", float("nan"))
        state = (
            f"metastable from {float(since):g} s"
            if bool(row.get("metastable", False)) and since == since
            else "recovered"
        )
        amp = float(row.get("retry_amplification", float("nan")))
        parts.append(
            f"{names.get(row['run'], row['run'])}: {state}, offered load peaked at "
            f"{peak:,.0f} attempts/s, {amp:.3g} attempts per arrival"
        )
    return f"Retry storm ({len(summary)} runs): " + "; ".join(parts) + "."
