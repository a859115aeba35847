"""What every report notebook does around its figures (``analysis/notebooks``, ``sim.report``):
set up the output dir and the theme, save a figure as PNG and SVG, write the findings sidecar."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.text import Text

from analysis import theme

log = logging.getLogger(__name__)

DPI = 100

_PROBLEMS: dict[str, list[str]] = {}
"""What ``save`` found wrong with each figure (``problems``), for ``finish``'s sidecar."""


def start(out: str | Path) -> Path:
    """Files only (the Agg backend, no inline output), the report theme; the output dir."""
    plt.switch_backend("agg")
    theme.apply()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def save(fig: Figure, out_dir: Path, name: str) -> str:
    """``name.png`` and ``name.svg`` in ``out_dir``; the PNG's name (what the report embeds).
    The line labels of every axes are stacked (``plots.unclutter``) at the final layout."""
    from analysis import plots

    fig.set_dpi(DPI)
    fig.tight_layout()
    for ax in fig.axes:
        plots.unclutter(ax)
    for ext in ("png", "svg"):
        fig.savefig(out_dir / f"{name}.{ext}", dpi=DPI)
    found = problems(fig)
    for p in found:
        log.warning("figure %s: %s", name, p)
    _PROBLEMS[f"{name}.png"] = found
    return f"{name}.png"


def texts(fig: Figure) -> list[Text]:
    """The texts a reader sees in ``fig``: titles, axis labels, the tick labels in view, the
    texts on the axes and the legends' (non-empty and visible)."""
    found: list[Text] = list(fig.texts)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        found += [ax.title, ax._left_title, ax._right_title]  # type: ignore[attr-defined]
        for axis in (ax.xaxis, ax.yaxis):
            found.append(axis.label)
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) * 1e-9
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if lo - span <= tick.get_loc() <= hi + span:
                    found += [tick.label1, tick.label2]
        found += list(ax.texts)
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            found += [*legend.get_texts(), legend.get_title()]
    return [t for t in found if t.get_visible() and t.get_text().strip()]


def problems(fig: Figure) -> list[str]:
    """What a reader would trip over in the drawn ``fig``: two texts that overlap, a text cut
    off by the figure's edge, an axis label without units in parentheses (an empty one is
    fine: a colour bar's or a shared axis's)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = fig.bbox
    boxes: list[tuple[str, Any]] = []
    out: list[str] = []
    for t in texts(fig):
        box = t.get_window_extent(renderer).shrunk(0.98, 0.9)  # touching is not overlapping
        text = t.get_text().strip()
        if box.x0 < frame.x0 - 1 or box.y0 < frame.y0 - 1:
            out.append(f"text {text!r} is cut off by the figure's edge")
        elif box.x1 > frame.x1 + 1 or box.y1 > frame.y1 + 1:
            out.append(f"text {text!r} is cut off by the figure's edge")
        boxes.append((text, box))
    for i, (a, box_a) in enumerate(boxes):
        out += [
            f"texts {a!r} and {b!r} overlap" for b, box_b in boxes[i + 1 :] if box_a.overlaps(box_b)
        ]
    for ax in fig.axes:
        for text in (ax.get_xlabel(), ax.get_ylabel()):
            if text.strip() and not (text.endswith(")") and "(" in text):
                out.append(f"axis label {text!r} has no units")
    return out


def finish(out_dir: Path, section: str, title: str, findings: str, figures: list[str]) -> None:
    """``SECTION.findings.json``: what ``sim.report`` puts at the top of the report."""
    sidecar = {
        "section": section,
        "title": title,
        "findings": findings,
        "figures": figures,
        "problems": {f: _PROBLEMS.get(f, []) for f in figures},  # notebook.problems, per figure
    }
    (out_dir / f"{section}.findings.json").write_text(json.dumps(sidecar, indent=2))
