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
# # Metastability
#
# Offered load (join attempts, new and retried) against goodput (joins completed) over time: a
# loop that does not close after the trigger is a metastable retry storm; then both over time.

# %%

import matplotlib.pyplot as plt

from analysis import frames, metastability, notebook
from sim.archive import read_config, read_timeseries

# %% tags=["parameters"]
archive = ""
out = ""

# %%
out_dir = notebook.start(out)
summary = frames.summary(archive)
ts = read_timeseries(archive)
ev = frames.events(archive)
win = metastability.windows(ts)
names = metastability.run_names(summary)
trigger_end = read_config(archive, summary["run"].iloc[0])["criterion"].get("trigger_end_s")
figures = []

# %%
fig, ax = plt.subplots(figsize=(9, 5))
metastability.hysteresis(win, names, trigger_end, ax=ax)
figures.append(notebook.save(fig, out_dir, "hysteresis"))

# %%
fig, axes = plt.subplots(2, 1, figsize=(9.5, 6), sharex=True)
metastability.over_time(win, names, ev[ev["run"] == summary["run"].iloc[0]], axes)
figures.append(notebook.save(fig, out_dir, "metastability_time"))

# %%
findings = metastability.findings(summary, win, names)
notebook.finish(out_dir, "metastability", "Metastability", findings, figures)
