"""The scenario clock: t = 0 s is the scheduled start of the room; earlier times are negative.

A replay is told on the clock of its event: Trump's account shared the Space 15 minutes before the
scheduled start (t = -900 s), the conversation began 42 minutes after it (t = 2520 s). Scenario
files, operator actions, attack profiles and the criterion's times are all written on that clock,
and everything a run reports (the time series' ``t_s``, events, the summary's times) is on it too.

The engines run on their own clock, which starts at 0 at the scenario's first instant
(``ScenarioConfig.origin_s``, the first profile point when it is negative, else 0): their kernels
and queues never see a negative time. ``engine_config`` moves a config onto that clock,
``to_scenario_clock`` moves a run's results back and judges the run (``sim.criteria``) on the
scenario clock, so a failure reason names the times a user wrote. A scenario that starts at
t = 0 (every synthetic one) needs neither: both are then the identity.

Two numbers a replay is judged by come from that clock: ``start_delay_s``, when the room became
stable after the surge began (``surge_start_s + time_to_stable_s``, 0 if that is before the
scheduled start: the conversation could begin; ``nan``: never),
and ``room_end_s``, when the operator ended the first room (an ``end_room`` action; ``nan``: it
was not ended). With ``scenario.event`` set, the summary's ``data`` holds the simulated value of
each of the event's public data points that a calibration fits (``sim.observations``, role
``fit``), keyed by the data point's id.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np

from sim import criteria, observations
from sim.config import Config

TIME_KEYS = ("peak_time_s", "surge_start_s", "sim_end_s")
"""Summary keys that are times (shifted back); the criterion's are recomputed."""


_DOWN_UNTIL = re.compile(r"down until (\S+) s")


def _moved(points: list[Any], dt: float) -> list[Any]:
    return [dataclasses.replace(p, t_s=p.t_s + dt) for p in points]


def engine_config(cfg: Config) -> Config:
    """``cfg`` with every time on the engines' clock (``t - origin``)."""
    origin = cfg.scenario.origin_s()
    if origin == 0:
        return cfg
    dt = -origin
    s, a, c = cfg.scenario, cfg.attack, cfg.criterion
    scenario = dataclasses.replace(
        s, profile=_moved(s.profile, dt), pushes=_moved(s.pushes, dt), actions=_moved(s.actions, dt)
    )
    attack = dataclasses.replace(
        a, join_flood=_moved(a.join_flood, dt), volumetric=_moved(a.volumetric, dt)
    )
    criterion = dataclasses.replace(
        c,
        trigger_end_s=None if c.trigger_end_s is None else c.trigger_end_s + dt,
        reject_share_from_s=c.reject_share_from_s + dt,
    )
    return dataclasses.replace(cfg, scenario=scenario, attack=attack, criterion=criterion)


def to_scenario_clock(
    cfg: Config,
    summary: dict[str, Any],
    timeseries: dict[str, np.ndarray],
    events: list[dict[str, Any]],
) -> None:
    """Move a run's results from the engines' clock to the scenario clock, in place, and add
    ``start_delay_s`` and ``room_end_s`` (module docstring). ``cfg`` is the run's own config."""
    origin = cfg.scenario.origin_s()
    if origin != 0:
        if "t_s" in timeseries:
            timeseries["t_s"] = timeseries["t_s"] + origin
        for e in events:
            e["t_s"] = e["t_s"] + origin
            if e.get("kind") == "crash":  # "...; down until T s": T is a time on the engine clock
                e["detail"] = _DOWN_UNTIL.sub(
                    lambda m: f"down until {float(m[1]) + origin:g} s", e["detail"]
                )
        for key in TIME_KEYS:
            if key in summary:
                summary[key] = summary[key] + origin
        if "t_s" in timeseries and timeseries["t_s"].size:
            summary |= _verdict(cfg, summary, timeseries)
    summary["start_delay_s"] = start_delay(summary)
    ends = [e["t_s"] for e in events if e.get("kind") == "operator" and e["target"] == "end_room"]
    summary["room_end_s"] = float(min(ends)) if ends else math.nan
    if cfg.scenario.event is not None:
        points = observations.load(cfg.scenario.event)
        fitted = [o for o in points if o.role == "fit"]
        summary["data"] = observations.measure_all(fitted, timeseries, summary)


def _verdict(cfg: Config, summary: dict[str, Any], ts: dict[str, np.ndarray]) -> dict[str, Any]:
    """The criterion's verdict, judged again on the scenario clock (same numbers, its times)."""
    tick = cfg.engine.tick_s
    start = float(summary["surge_start_s"])
    end = max(cfg.scenario.profile[-1].t_s, start + tick)
    failure = summary.get("failure_reason") if summary.get("engine_failed") else None
    return criteria.assess(ts, tick, cfg.criterion, start, end, engine_failure=failure)


def start_delay(summary: dict[str, Any]) -> float:
    """How late the room started: when it became stable after the surge began (the criterion's
    ``time_to_stable_s`` from ``surge_start_s``), on the scenario clock, 0 if before t = 0."""
    stable_at = summary.get("surge_start_s", math.nan) + summary.get("time_to_stable_s", math.nan)
    return max(0.0, float(stable_at)) if math.isfinite(stable_at) else math.nan
