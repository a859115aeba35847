"""What every report notebook does around its figures (``analysis/notebooks``, ``sim.report``):
set up the output dir and the theme, save a figure as PNG and SVG, write the findings sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from analysis import theme

DPI = 100


def start(out: str | Path) -> Path:
    """Files only (the Agg backend, no inline output), the report theme; the output dir."""
    plt.switch_backend("agg")
    theme.apply()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def save(fig: Figure, out_dir: Path, name: str) -> str:
    """``name.png`` and ``name.svg`` in ``out_dir``; the PNG's name (what the report embeds)."""
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out_dir / f"{name}.{ext}", dpi=DPI)
    return f"{name}.png"


def finish(out_dir: Path, section: str, title: str, findings: str, figures: list[str]) -> None:
    """``SECTION.findings.json``: what ``sim.report`` puts at the top of the report."""
    sidecar = {"section": section, "title": title, "findings": findings, "figures": figures}
    (out_dir / f"{section}.findings.json").write_text(json.dumps(sidecar, indent=2))
