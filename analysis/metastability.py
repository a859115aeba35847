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

import h5py
import numpy as np
import yaml

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
    plot({label(d): load(d) for d in jobs}, a.out, tuple(a.dip))  # type: ignore[arg-type]
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
