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
from typing import Any

import numpy as np
import pandas as pd

from sim.archive import ArchiveError, read_summary, read_timeseries

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
