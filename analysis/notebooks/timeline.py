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
# # Run timeline
#
# Listeners, people trying, attempts by outcome and nodes up over time, with the run's events.

# %%
import json
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
df = frames.timeline(archive)
ev = frames.events(archive)
summary = frames.summary(archive).iloc[0]

# %%
people = df[df["series"].isin(["concurrent", "trying"])]
outcomes = df[df["series"].isin(["attempts", "joining"]) | df["series"].str.startswith("rejected_")]
nodes = df[df["series"] == "nodes_up"]
panels = [
    (n, p) for n, p in (("people", people), ("attempts", outcomes), ("nodes", nodes)) if len(p)
]
fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3 * len(panels)), sharex=True, squeeze=False)
for ax, (_, part) in zip(axes[:, 0], panels, strict=True):
    plots.timeline(part, ax=ax, events=ev)
fig.tight_layout()
figures = []
for ext in ("png", "svg"):
    fig.savefig(out_dir / f"timeline.{ext}", dpi=100)
figures.append("timeline.png")

# %%
peak = float(people.loc[people["series"] == "concurrent", "value"].max())
joined = summary.get("joined", float("nan"))
findings = (
    f"The run peaked at {peak:.0f} listeners in the room, {float(joined):.0f} people joined, "
    f"with {len(ev)} events ({', '.join(sorted(set(ev['kind']))) or 'none'})."
)
sidecar = {"section": "timeline", "title": "Run timeline", "findings": findings, "figures": figures}
(out_dir / "timeline.findings.json").write_text(json.dumps(sidecar, indent=2))
print(findings)
