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
# # Sweep
#
# A heatmap of a metric over two swept parameters, or its mean and interval per value of the one
# swept parameter.

# %%

import matplotlib.pyplot as plt

from analysis import frames, notebook, plots, stats, theme

# %% tags=["parameters"]
archive = ""
out = ""

# %%
out_dir = notebook.start(out)
s = frames.summary(archive)
for p in s.attrs["parameters"]:  # 4 significant digits: readable axis ticks and findings
    if s[p].dtype.kind == "f":
        s[p] = s[p].map(lambda v: float(f"{v:.4g}"))
varied = [p for p in s.attrs["parameters"] if s[p].nunique() > 1]
params = [p for p in varied if p != "seed"] or varied  # seeds are replications, not a factor
value = next(v for v in ("goodput_joins_per_s", "joined", "failed") if v in s.columns)
# the parameters with few levels (a grid), the seed last
grid = sorted((p for p in params if s[p].nunique() <= 12), key=lambda p: p == "seed")
figures = []

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
pairs = s[grid[:2]].drop_duplicates() if len(grid) >= 2 else s.iloc[:0]
sparse = len(grid) >= 2 and len(pairs) < 0.5 * s[grid[0]].nunique() * s[grid[1]].nunique()
numeric = all(s[p].dtype.kind in "iuf" for p in grid[:2])
if sparse and numeric:  # a search's scattered points (a calibration), not a grid: one dot each
    x, y = grid[0], grid[1]
    dots = ax.scatter(
        s[x].astype(float), s[y].astype(float), c=s[value].astype(float), cmap="viridis",
        edgecolors="0.2", linewidths=0.5, gid="runs",
    )  # fmt: skip
    fig.colorbar(dots, ax=ax, label=theme.label(value, total=True))
    theme.label_axes(ax, theme.label(x), theme.label(y))
    plots.thousands(ax.xaxis)
    plots.thousands(ax.yaxis)
    ax.set_title(f"one dot per run ({len(s)} runs)", fontsize="small")
    what = f"over {theme.quantity(x)[0].lower()} and {theme.quantity(y)[0].lower()}"
elif len(grid) >= 2:
    x, y = grid[0], grid[1]
    plots.heatmap(s, x, y, value, ax=ax)
    what = f"over {theme.quantity(x)[0].lower()} and {theme.quantity(y)[0].lower()}"
    per_cell = s.groupby([x, y]).size()
    runs = (
        f"{per_cell.iloc[0]} runs"
        if per_cell.nunique() == 1
        else f"{per_cell.min()}–{per_cell.max()} runs"
    )
    others = [theme.quantity(p)[0].lower() for p in params if p not in (x, y)]
    title = f"each cell: the mean of its {runs}" if per_cell.max() > 1 else "each cell: one run"
    if others:
        title += f", averaged over the {', '.join(others)} swept"
    cell = s.groupby([x, y])[value].mean().astype(float)
    spread = (cell.max() - cell.min()) / abs(cell.mean()) if cell.mean() else float("nan")
    if 0 < spread < 0.05:  # the colour scale spans a small range: say how small
        title += f"; the cells differ by at most {spread:.1%}"
    ax.set_title(title, fontsize="small")
else:
    x = grid[0] if grid else params[0]
    if s[x].nunique() <= 12:
        g = stats.grouped_ci(s, x, value)
        plots.policy_comparison(g, ax=ax, value=value)
        others = [theme.quantity(p)[0].lower() for p in params if p != x]
        if others:  # what the mean is over besides the replications
            ax.set_title(
                f"{ax.get_title()}, averaged over the {', '.join(others)} swept", fontsize="small"
            )
    else:
        ax.scatter(s[x].astype(float), s[value].astype(float), color=theme.colors(1)[0])
        theme.label_axes(ax, theme.label(x), theme.label(value, total=True))
        plots.thousands(ax.xaxis)
        plots.thousands(ax.yaxis)
        ax.set_title(f"one point per run ({len(s)} runs)", fontsize="small")
    what = f"per {theme.quantity(x)[0].lower()}"
figures.append(notebook.save(fig, out_dir, "sweep"))


# %%
def fmt(x: object) -> str:
    return plots.number(float(x)) if isinstance(x, int | float) else str(x)


v = s[value].astype(float)
best = s.iloc[int(v.fillna(-float("inf")).to_numpy().argmax())]  # idxmax, skipping NaN
words = {p: theme.quantity(p)[0] for p in params}
findings = (
    f"{len(s)} runs swept {', '.join(w.lower() for w in words.values())}; "
    f"{theme.label(value, total=True).lower()} ranges from {plots.number(v.min())} to "
    f"{plots.number(v.max())} (highest at "
    f"{', '.join(f'{words[p].lower()} = {fmt(best[p])}' for p in params)}), shown {what}."
)
notebook.finish(out_dir, "sweep", "Sweep", findings, figures)
