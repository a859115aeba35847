"""Failure criteria: from a run's per-tick time series to "did the room start, and did it recover".

A run produces one row per tick (``sim.model.metrics``): counts of what happened in the tick
``[t_s - tick_s, t_s)`` and the state at its end ``t_s``. This module turns those rows into the
numbers a capacity plan is judged by. It is pure: numpy in, numpy and Python scalars out, no model,
no SimPy, no Hydra; the same function judges a live run and an archived one.

**People still trying.** A person who arrived (or reconnected after a crash dropped them) and has
neither made the attempt that will join nor abandoned is *trying*. ``connected_share`` is
``concurrent / (concurrent + trying)``: of the people who want to be in the room, the share who are.
People whose successful attempt is still being served count in neither (they are on their way in).

**Stable.** A tick is *stable* when ``connected_share >= stable_share`` and the join p99 of the
tick's joining attempts is ``< stable_p99_s`` (a tick with no joins meets the latency bound only
when nobody is trying). The room *is stable* once that holds for ``stable_hold_s`` without a break:
a flicker shorter than the hold does not count. ``time_to_stable_s`` runs from the surge start to
the start of the first tick of the first such stretch. A room can fall out of it again (a second
wave, a crash): ``stability_lost_s`` says when it was unstable for as long as the hold afterwards.

**Goodput and amplification.** Goodput is joins completed per second; ``retry_amplification`` is
attempts per person who came (``attempts / (arrivals + reconnects)``): 1 means nobody had to retry.

**Metastability** (Bronson et al., HotOS 2021; Huang et al., OSDI 2022). A trigger (a surge, a
crash) pushes the system into overload; a *sustaining effect*, most often retries, keeps goodput low
after the trigger is gone. Once the trigger is over, a healthy system drains its backlog: it joins
people at about its capacity while attempts exceed capacity, or at about the attempt rate once
clients back off. A metastable one stays busy with work that does not turn into joins. So, after the
trigger end, a tick is *metastable* when the new load is under capacity
(``offered_per_s < join_capacity_per_s``), people are still trying, and
``goodput_per_s < metastable_goodput_share · min(join_capacity_per_s, attempt_rate_per_s)``; the
run is metastable when that holds for ``metastable_hold_s`` without a break.

**Failure.** A run fails when the engine says so (it takes precedence), or when a criterion of
``CriterionConfig`` is violated, judged in this order: ``deadline_s`` (not stable in time),
``max_abandoned_share`` (too many gave up), ``metastable`` (when ``metastable_fails``).

Definitions, units and a worked example: ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Problem = tuple[str, Any, str]
"""A configuration problem: (key relative to the criterion, value, what is allowed)."""

REQUIRED = (
    "t_s",
    "arrivals",
    "attempts",
    "joining",
    "joined",
    "abandoned",
    "concurrent",
    "join_latency_p99_s",
)
"""Columns ``series`` and ``assess`` need; ``reconnects``, ``dropped``, ``trying`` and
``join_capacity_per_s`` are optional (see ``docs/metrics.md``)."""

# the order in which violated criteria are reported; the first one is the failure reason
CRITERIA = ("deadline", "abandoned", "rejected", "metastable")


@dataclass
class CriterionConfig:
    """When a run counts as failed: by default, "the room did not start on time".

    Times ending in ``_s`` are seconds; ``deadline_s`` counts from the surge start,
    ``trigger_end_s`` and ``reject_share_from_s`` are times on the scenario clock. Shares are
    fractions in [0, 1].
    """

    name: str = "room_start"
    stable_share: float = 0.95
    stable_p99_s: float = 10.0
    stable_hold_s: float = 30.0
    deadline_s: float | None = 120.0
    max_abandoned_share: float | None = 0.05
    metastable_goodput_share: float = 0.5
    metastable_hold_s: float = 60.0
    trigger_end_s: float | None = None
    metastable_fails: bool = True
    # a loss criterion: more than this share of the attempts made from reject_share_from_s on
    # were rejected (for any reason); null: none (the Erlang B study, experiment=threshold_erlang_b)
    max_reject_share: float | None = None
    reject_share_from_s: float = 0.0

    def problems(self) -> Iterator[Problem]:
        if not isinstance(self.name, str) or not self.name:
            yield "name", self.name, "a non-empty name"
        for key in ("stable_share", "metastable_goodput_share"):
            yield from _share(key, getattr(self, key))
        for key in ("stable_p99_s", "stable_hold_s", "metastable_hold_s"):
            yield from _positive(key, getattr(self, key))
        if self.deadline_s is not None:
            yield from _positive("deadline_s", self.deadline_s, ", or null (no deadline)")
        if self.max_abandoned_share is not None and not 0 <= self.max_abandoned_share < 1:
            allowed = "a share in [0, 1) (0: nobody may give up), or null (no limit)"
            yield "max_abandoned_share", self.max_abandoned_share, allowed
        if self.trigger_end_s is not None and not math.isfinite(self.trigger_end_s):
            allowed = "a time (seconds, scenario clock), or null (the end of the arrivals profile)"
            yield "trigger_end_s", self.trigger_end_s, allowed
        if self.max_reject_share is not None and not 0 <= self.max_reject_share < 1:
            allowed = "a share in [0, 1) of the attempts, or null (no limit)"
            yield "max_reject_share", self.max_reject_share, allowed
        if not math.isfinite(self.reject_share_from_s):
            allowed = "a time (seconds, scenario clock): attempts from then on count"
            yield "reject_share_from_s", self.reject_share_from_s, allowed
        if not isinstance(self.metastable_fails, bool):
            yield "metastable_fails", self.metastable_fails, "true or false"


def _share(key: str, value: float) -> Iterator[Problem]:
    if not 0 < value <= 1:
        yield key, value, "a share in (0, 1]"


def _positive(key: str, value: float, more: str = "") -> Iterator[Problem]:
    if not value > 0:
        yield key, value, f"a number > 0 (seconds){more}"


def _columns(ts: Mapping[str, np.ndarray], tick_s: float) -> dict[str, np.ndarray]:
    """The columns as float arrays of one length, optional counts filled with zeros."""
    if not tick_s > 0:
        raise ValueError(f"tick_s = {tick_s!r}; allowed: a number > 0 (seconds)")
    missing = [k for k in REQUIRED if k not in ts]
    if missing:
        raise KeyError(f"time series lacks the column(s) {', '.join(missing)}")
    n = np.asarray(ts["t_s"]).size
    cols: dict[str, np.ndarray] = {}
    for key in (*REQUIRED, "reconnects", "dropped", "trying", "join_capacity_per_s"):
        if key in ts:
            cols[key] = np.asarray(ts[key], dtype=np.float64).reshape(-1)
            if cols[key].size != n:
                raise ValueError(f"column {key} has {cols[key].size} values, t_s has {n}")
    for key in ("reconnects", "dropped"):
        cols.setdefault(key, np.zeros(n))
    return cols


def derive_trying(ts: Mapping[str, np.ndarray]) -> np.ndarray:
    """People trying at each tick's end: ``cumsum(arrivals + reconnects - joining - abandoned)``."""
    reconnects = np.asarray(ts.get("reconnects", 0), dtype=np.int64)
    inflow = np.asarray(ts["arrivals"], dtype=np.int64) + reconnects
    outflow = np.asarray(ts["joining"], dtype=np.int64) + np.asarray(ts["abandoned"], np.int64)
    return np.cumsum(inflow - outflow)


def series(
    ts: Mapping[str, np.ndarray], tick_s: float, criterion: CriterionConfig | None = None
) -> dict[str, np.ndarray]:
    """Derived per-tick columns (the thresholds of ``stable`` come from ``criterion``).

    ``goodput_per_s``, ``offered_per_s``, ``attempt_rate_per_s`` (1/s), ``connected_share``,
    ``stable`` and ``metastable_condition`` (0/1, before any hold; the latter all 0 without
    ``join_capacity_per_s``), and ``trying`` when ``ts`` lacks it (derived, see ``derive_trying``).
    """
    crit = CriterionConfig() if criterion is None else criterion
    c = _columns(ts, tick_s)
    out: dict[str, np.ndarray] = {}
    if "trying" in c:
        trying = c["trying"]
    else:
        out["trying"] = derive_trying(ts)
        trying = out["trying"].astype(np.float64)
    goodput = c["joined"] / tick_s
    offered = (c["arrivals"] + c["reconnects"]) / tick_s
    attempt_rate = c["attempts"] / tick_s
    wanting = c["concurrent"] + trying
    share = np.divide(c["concurrent"], wanting, out=np.ones_like(wanting), where=wanting > 0)
    p99 = c["join_latency_p99_s"]
    fast = np.where(np.isnan(p99), trying == 0, p99 < crit.stable_p99_s)
    stable = (share >= crit.stable_share) & fast
    if "join_capacity_per_s" in c:
        cap = c["join_capacity_per_s"]
        floor = crit.metastable_goodput_share * np.minimum(cap, attempt_rate)
        stuck = (offered < cap) & (trying > 0) & (goodput < floor)
    else:
        stuck = np.zeros(goodput.size, dtype=bool)
    out |= {
        "goodput_per_s": goodput,
        "offered_per_s": offered,
        "attempt_rate_per_s": attempt_rate,
        "connected_share": share,
        "stable": stable.astype(np.int8),
        "metastable_condition": stuck.astype(np.int8),
    }
    return out


def hold_ticks(hold_s: float, tick_s: float) -> int:
    """Consecutive ticks that cover ``hold_s``: ``ceil(hold_s / tick_s)``, at least 1."""
    return max(1, math.ceil(hold_s / tick_s - 1e-9))


def first_held(cond: np.ndarray, start: int, k: int, *, to_end: bool = False) -> int | None:
    """The first index ``i >= start`` with ``cond[i : i + k]`` all true, or None.

    With ``to_end``, a true stretch shorter than ``k`` that reaches the last tick counts too.
    """
    c = np.asarray(cond[start:], dtype=bool)
    if c.size >= k:
        ones = np.concatenate([[0], np.cumsum(c, dtype=np.int64)])
        full = np.flatnonzero(ones[k:] - ones[:-k] == k)
        if full.size:
            return start + int(full[0])
    if to_end and c.size and c[-1]:
        breaks = np.flatnonzero(~c)
        return start + (int(breaks[-1]) + 1 if breaks.size else 0)
    return None


def _surge_joins(t_s: np.ndarray, joined: np.ndarray, tick_s: float, a: float, b: float) -> float:
    """Joins completed in ``[a, b)``, a tick that straddles a bound counted pro rata."""
    overlap = np.clip(np.minimum(t_s, b) - np.maximum(t_s - tick_s, a), 0.0, tick_s)
    return float(np.sum(joined * overlap / tick_s))


def _reject_share(
    ts: Mapping[str, np.ndarray], t_s: np.ndarray, tick_s: float, criterion: CriterionConfig
) -> tuple[float, float]:
    """``(share, when)``: rejected / attempts over the ticks that start at or after
    ``reject_share_from_s``, and the end of the first tick after which the rejections so far
    exceed ``max_reject_share`` of all those attempts (nan when they never do, or no limit)."""
    nan = float("nan")
    rejected = sum(
        (np.asarray(v, dtype=np.float64) for k, v in ts.items() if k.startswith("rejected_")),
        np.zeros(t_s.size),
    )
    first = int(np.searchsorted(t_s - tick_s, criterion.reject_share_from_s - 1e-9 * tick_s))
    attempts = float(np.sum(np.asarray(ts["attempts"], dtype=np.float64)[first:]))
    if not attempts > 0:
        return nan, nan
    counted = rejected[first:]
    share = float(counted.sum()) / attempts
    limit = criterion.max_reject_share
    if limit is None or not share > limit:
        return share, nan
    return share, float(t_s[first + int(np.argmax(np.cumsum(counted) > limit * attempts))])


def assess(
    ts: Mapping[str, np.ndarray],
    tick_s: float,
    criterion: CriterionConfig,
    surge_start_s: float,
    surge_end_s: float,
    engine_failure: str | None = None,
) -> dict[str, Any]:
    """The run's failure verdict and metrics (summary scalars; definitions in docs/metrics.md).

    ``surge_start_s``/``surge_end_s`` bound the surge window (simulation times); ``surge_end_s``
    is also the trigger end when ``criterion.trigger_end_s`` is null. ``engine_failure`` is the
    engine's own failure reason, if any: it takes precedence over every criterion.
    """
    if not surge_end_s > surge_start_s:
        raise ValueError(f"surge window [{surge_start_s}, {surge_end_s}) is empty")
    c = _columns(ts, tick_s)
    per_tick = series(ts, tick_s, criterion)
    t_s = c["t_s"]
    eps = 1e-9 * max(1.0, tick_s)
    nan = float("nan")

    # stability: the first stretch, starting in a tick that ends after the surge start
    first = int(np.searchsorted(t_s, surge_start_s + eps, side="right"))
    # a run that is over by the surge start (no arrivals came, none is left trying): its last
    # tick is the room's state at the surge start, so judge that one (not "never stable")
    first = min(first, max(t_s.size - 1, 0))
    k = hold_ticks(criterion.stable_hold_s, tick_s)
    i = first_held(per_tick["stable"], first, k, to_end=True)
    time_to_stable = nan if i is None else max(0.0, t_s[i] - tick_s - surge_start_s)
    # informational: the room fell out of stability again for as long as the hold
    lost = None if i is None else first_held(per_tick["stable"] == 0, i, k)
    stability_lost = nan if lost is None else float(t_s[lost] - tick_s)

    came = float(c["arrivals"].sum() + c["reconnects"].sum())
    abandoned = float(c["abandoned"].sum())
    attempts = float(c["attempts"].sum())

    # metastability: in ticks that start at or after the trigger end
    trigger_end = surge_end_s if criterion.trigger_end_s is None else criterion.trigger_end_s
    after = int(np.searchsorted(t_s - tick_s, trigger_end - eps, side="left"))
    m = hold_ticks(criterion.metastable_hold_s, tick_s)
    j = first_held(per_tick["metastable_condition"], after, m)
    metastable_since = nan if j is None else float(t_s[j] - tick_s)

    violated: dict[str, tuple[float, str]] = {}
    if criterion.deadline_s is not None and not time_to_stable <= criterion.deadline_s:
        when = f"{time_to_stable:g} s" if i is not None else "never"
        violated["deadline"] = (
            surge_start_s + criterion.deadline_s,
            f"not stable within deadline_s = {criterion.deadline_s:g} s of the surge start"
            f" (stable after: {when})",
        )
    limit = criterion.max_abandoned_share
    if limit is not None and came > 0 and abandoned / came > limit:
        over = np.cumsum(c["abandoned"]) > limit * came
        violated["abandoned"] = (
            float(t_s[np.argmax(over)]),
            f"abandoned share {abandoned / came:.4g} > max_abandoned_share = {limit:g}",
        )
    share, over_at = _reject_share(ts, t_s, tick_s, criterion)
    if criterion.max_reject_share is not None and share > criterion.max_reject_share:
        violated["rejected"] = (
            over_at,
            f"rejected share {share:.4g} of the attempts from"
            f" {criterion.reject_share_from_s:g} s > max_reject_share ="
            f" {criterion.max_reject_share:g}",
        )
    if j is not None and criterion.metastable_fails:
        violated["metastable"] = (
            metastable_since,
            f"metastable since {metastable_since:g} s: goodput below"
            f" {criterion.metastable_goodput_share:g} x min(capacity, attempt rate) for"
            f" metastable_hold_s = {criterion.metastable_hold_s:g} s after the trigger",
        )
    if engine_failure is not None:
        criterion_name: str | None = "engine"
        reason: str | None = engine_failure
        failure_time = float(t_s[-1]) if t_s.size else nan
    elif violated:
        criterion_name = next(name for name in CRITERIA if name in violated)
        failure_time, reason = violated[criterion_name]
    else:
        criterion_name, reason, failure_time = None, None, nan

    length = surge_end_s - surge_start_s
    return {
        "failed": reason is not None,
        "failure_reason": reason,
        "failure_criterion": criterion_name,
        "failure_time_s": failure_time,
        "time_to_stable_s": float(time_to_stable),
        "stability_lost_s": stability_lost,
        "goodput_joins_per_s": _surge_joins(t_s, c["joined"], tick_s, surge_start_s, surge_end_s)
        / length,
        "retry_amplification": attempts / came if came > 0 else nan,
        "dropped": int(c["dropped"].sum()),
        "abandoned_share": abandoned / came if came > 0 else nan,
        "reject_share": share,
        "metastable": j is not None,
        "metastable_since_s": metastable_since,
    }
