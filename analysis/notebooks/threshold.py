# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Failure threshold
#
# The fitted failure probability of each searched cell with its estimate and interval, and the
# capacity curve (estimates against a second parameter) when the search has several cells.

# %%
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt

from analysis import frames, plots, theme

# %% tags=["parameters"]
archive = ""
out = ""

# %%
plt.switch_backend("agg")  # files only, no inline output
theme.apply()
out_dir = Path(out)
out_dir.mkdir(parents=True, exist_ok=True)
cells, runs = frames.threshold(archive)
figures = []

# %%
fig, ax = plt.subplots(figsize=(7, 4))
first = cells.iloc[0]
plots.failure_curve(runs, first, ax=ax)
fig.tight_layout()
for ext in ("png", "svg"):
    fig.savefig(out_dir / f"failure_curve.{ext}", dpi=100)
figures.append("failure_curve.png")

# %%
varied = [
    k
    for k in sorted({k for o in cells["overrides"] for k in frames.parse_overrides(o)})
    if k in cells.columns and cells[k].nunique() > 1
]
if len(cells) > 1 and varied:
    fig, ax = plt.subplots(figsize=(7, 4))
    plots.capacity_curve(cells, varied[0], ax=ax)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out_dir / f"capacity_curve.{ext}", dpi=100)
    figures.append("capacity_curve.png")


# %%
def interval(cell):
    est, lo, hi = (float(cell[k]) for k in ("estimate", "ci_low", "ci_high"))
    if not math.isfinite(est):
        return f"no estimate (stop: {cell['stop_reason']})"
    return f"{plots.number(est)} [{plots.number(lo)}, {plots.number(hi)}]"


head = f"{first['parameter']} at P(failure) = {float(first['target']):g}"
conf = f"{float(first['confidence']):.0%}"
if len(cells) == 1:
    findings = (
        f"{head}: {interval(first)} ({conf} interval), from {int(first['runs'])} runs "
        f"({int(first['failures'])} failed)."
    )
else:
    key = varied[0] if varied else "cell"
    parts = [f"{key}={c[key]}: {interval(c)}" for _, c in cells.iterrows()]
    findings = f"{head}: {'; '.join(parts)} ({conf} intervals, {int(cells['runs'].sum())} runs)."
sidecar = {"section": "threshold", "title": "Failure threshold", "findings": findings}
sidecar["figures"] = figures
(out_dir / "threshold.findings.json").write_text(json.dumps(sidecar, indent=2))
print(findings)
