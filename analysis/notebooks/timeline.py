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
# A replay (``scenario.event`` set) also shows the event's public data points on the listeners
# axis, with the scheduled and the actual start (``analysis.replay``).

# %%

import matplotlib.pyplot as plt

from analysis import frames, notebook, plots, replay

MAX_EVENT_LABELS = 8

# %% tags=["parameters"]
archive = ""
out = ""

# %%
out_dir = notebook.start(out)
df = frames.timeline(archive)
ev = frames.events(archive)
summary = frames.summary(archive).iloc[0]
event = replay.event(archive)

# %%
people = df[df["series"].isin(["concurrent", "trying"])]
outcomes = df[df["series"].isin(["attempts", "joining"]) | df["series"].str.startswith("rejected_")]
if len(outcomes):
    outcomes = frames.per_second(outcomes)  # per second: runs of any tick length read alike
nodes = df[df["series"] == "nodes_up"]
panels = [
    (n, p)
    for n, p in (
        ("In the room or trying (people)", people),
        ("Attempts (attempts/s)", outcomes),
        ("Edge nodes up (count)", nodes),
    )
    if len(p)
]
fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3 * len(panels)), sharex=True, squeeze=False)
for ax, (ylabel, part) in zip(axes[:, 0], panels, strict=True):
    plots.timeline(part, ax=ax, events=ev, ylabel=ylabel)
for ax in axes[:-1, 0]:  # one time axis, under the last panel (and in minutes above the first)
    ax.set_xlabel("")
plots.minutes_above(axes[0, 0])
marks = frames.event_marks(ev)
if 0 < len(marks) <= MAX_EVENT_LABELS:  # more: the legend names their kinds, no words each
    plots.label_events(axes[0, 0], marks)
start_delay_s = replay.as_float(summary.get("start_delay_s"))
if event is not None:
    replay.overlay(axes[0, 0], replay.points(event), start_delay_s, tuple(axes[1:, 0]))
figures = [notebook.save(fig, out_dir, "timeline")]

# %%
peak = float(people.loc[people["series"] == "concurrent", "value"].max())
joined = summary.get("joined", float("nan"))
findings = (
    f"The run peaked at {plots.number(peak)} listeners in the room, "
    f"{plots.number(float(joined))} people joined, "
    f"with {len(ev)} events ({', '.join(sorted(set(ev['kind']))) or 'none'})."
)
if event is not None:
    findings += " " + replay.findings(event, replay.check(event, summary), start_delay_s)
notebook.finish(out_dir, "timeline", "Run timeline", findings, figures)
