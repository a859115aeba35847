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
import math

import matplotlib.pyplot as plt
import pandas as pd

from analysis import frames, notebook, plots, theme

# %% tags=["parameters"]
archive = ""
out = ""

# %%
out_dir = notebook.start(out)
cells, runs = frames.threshold(archive)
figures = []

# %%
fig, ax = plt.subplots(figsize=(7, 4))
first = cells.iloc[0]
plots.failure_curve(runs, first, ax=ax)
figures.append(notebook.save(fig, out_dir, "failure_curve"))

# %%
varied = [
    k
    for k in sorted({k for o in cells["overrides"] for k in frames.parse_overrides(o)})
    if k in cells.columns and cells[k].nunique() > 1
]
# a capacity curve over a numeric second parameter (a policy grid is the policy section's)
numeric = [k for k in varied if pd.to_numeric(cells[k], errors="coerce").notna().all()]
if len(cells) > 1 and numeric:
    fig, ax = plt.subplots(figsize=(7, 4))
    plots.capacity_curve(cells, numeric[0], ax=ax)
    figures.append(notebook.save(fig, out_dir, "capacity_curve"))


# %%
def interval(cell: pd.Series) -> str:
    est, lo, hi = (float(cell[k]) for k in ("estimate", "ci_low", "ci_high"))
    if not math.isfinite(est):
        return f"no estimate (stop: {cell['stop_reason']})"
    return f"{plots.number(est)} [{plots.number(lo)}, {plots.number(hi)}]"


head = f"{theme.label(str(first['parameter']))} at P(failure) = {float(first['target']):g}"
conf = f"{float(first['confidence']):.0%}"
if len(cells) == 1:
    findings = (
        f"{head}: {interval(first)} ({conf} interval), from {int(first['runs'])} runs "
        f"({int(first['failures'])} failed)."
    )
else:

    def cell_name(c: pd.Series) -> str:  # every varied key: two policies need both
        return ", ".join(f"{theme.quantity(k)[0]} = {c[k]}" for k in varied) or f"cell {c.name}"

    parts = [f"{cell_name(c)}: {interval(c)}" for _, c in cells.iterrows()]
    findings = f"{head}: {'; '.join(parts)} ({conf} intervals, {int(cells['runs'].sum())} runs)."
notebook.finish(out_dir, "threshold", "Failure threshold", findings, figures)
