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
# # Calibration
#
# A calibration's ``calibration.json`` (``spacesim calibrate``): each fitted data point's
# simulated value against its public band (normalised: the band is [-1, 1]), and the fitted
# parameters with their 95% intervals in their search ranges (``analysis.calibration``).

# %%

from pathlib import Path

import matplotlib.pyplot as plt

from analysis import calibration, notebook

# %% tags=["parameters"]
archive = ""
out = ""

# %%
out_dir = notebook.start(out)
doc = calibration.load(archive)
res = calibration.residuals(doc)
par = calibration.parameters(doc)

# %%
fig, ax = plt.subplots(figsize=(9, 0.5 * len(res) + 2))
calibration.plot_residuals(res, ax=ax)
event = str(doc.get("event"))
event = Path(event).stem if event.endswith(".csv") else event  # a data file: its name
ax.set_title(f"{event}: simulated at the fit vs the public bands", fontsize="small")
figures = [notebook.save(fig, out_dir, "calibration_residuals")]

# %%
fig, ax = plt.subplots(figsize=(9, 0.8 * len(par) + 2))
calibration.plot_parameters(par, ax=ax)
ax.set_title("fitted parameters and 95% intervals", fontsize="small")
figures.append(notebook.save(fig, out_dir, "calibration_parameters"))

# %%
findings = calibration.findings(doc, res, par)
notebook.finish(out_dir, "calibration", "Calibration", findings, figures)
