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
# # Policy comparison
#
# The searched threshold with its interval and the time to stable of the runs, per admission
# and client policy combination of a threshold search over a policy grid.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from analysis import frames, notebook, plots, policy

# %% tags=["parameters"]
archive = ""
out = ""

# %%
out_dir = notebook.start(out)
cells, _ = frames.threshold(archive)
keys = [k for k in policy.POLICY_KEYS if k in cells.columns]
thr = policy.thresholds(cells, keys)
figures = []
height = 2.4 + 0.45 * len(thr)  # room for the y label beside two rows

# %%
fig, ax = plt.subplots(figsize=(8, height))
plots.policy_comparison(thr, ax=ax, by="policy")
ax.lines[0].set_gid("thresholds")
if bool(cells["log_scale"].any()):
    ax.set_xscale("log")
    plots.thousands(ax.xaxis)  # 10,000 and 100,000, not 10^4
ax.set_title(f"threshold estimate and {thr.attrs['confidence']:.0%} interval", fontsize="small")
figures.append(notebook.save(fig, out_dir, "policy_thresholds"))

# %%
folder = Path(archive) if Path(archive).is_dir() else Path(archive).parent
has_runs = (folder / "sweep.h5").is_file()  # the runs' time to stable; else thresholds only
tts = policy.time_to_stable(frames.summary(folder), keys, list(thr["policy"])) if has_runs else None
if tts is not None and tts["mean"].notna().any():
    fig, ax = plt.subplots(figsize=(8, height))
    plots.policy_comparison(tts, ax=ax, by="policy")
    ax.lines[0].set_gid("time_to_stable")
    never = tts["never"].to_numpy()
    if never.any():  # the mean leaves them out: say so where the policy is named
        ax.set_yticks(
            ax.get_yticks(),
            [f"{p}\n({n} of {n + k} runs never stable)" if n else p
             for p, n, k in zip(tts["policy"], never, tts["n"], strict=True)],
        )  # fmt: skip
    lo = np.nanmin(tts[["mean", "ci_low"]].to_numpy(dtype=float))
    if lo >= 0:  # no negative times on the axis; all stable at once still shows a span
        right = max(ax.get_xlim()[1], 1.0)
        ax.set_xlim(left=-0.03 * right, right=right)  # a point at 0 s drawn whole
    if np.nanmax(tts["mean"].to_numpy(dtype=float)) == 0:
        ax.set_title("mean over the runs: every policy stable at 0 s", fontsize="small")
    figures.append(notebook.save(fig, out_dir, "policy_time_to_stable"))

# %%
findings = policy.findings(thr, tts)
notebook.finish(out_dir, "policy", "Policy comparison", findings, figures)
