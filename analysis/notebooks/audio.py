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
# # Audio
#
# The share of the audio segments delivered on time and the stall time over the run, and the
# peak egress asked and served at each tier of the fan-out.

# %%

import matplotlib.pyplot as plt

from analysis import audio, frames, notebook
from sim.archive import read_timeseries

# %% tags=["parameters"]
archive = ""
out = ""

# %%
out_dir = notebook.start(out)
summary = frames.summary(archive)
summary = summary[summary["audio_delivered_ratio"].notna()].reset_index(drop=True)
ts = read_timeseries(archive)
ts = ts[ts["run"].isin(summary["run"])]
names = audio.run_names(summary)
figures = []

# %%
fig, axes = plt.subplots(2, 1, figsize=(9.5, 6), sharex=True)
audio.plot_delivery(audio.delivery(ts), names, axes)
figures.append(notebook.save(fig, out_dir, "audio_delivery"))

# %%
tr = audio.tiers(summary)
fig, ax = plt.subplots(figsize=(9, 4.2))
audio.plot_tiers(tr, ax=ax)
figures.append(notebook.save(fig, out_dir, "audio_tiers"))

# %%
findings = audio.findings(summary, tr, names)
notebook.finish(out_dir, "audio", "Audio", findings, figures)
