"""Public data points of the replayed events as calibration bands, and how a run measures them.

The replay scenarios (the DeSantis launch on Twitter Spaces, 24 May 2023; the Musk–Trump
conversation on X Spaces, 12 Aug 2024) are calibrated against what the press reported. Those
reports disagree: the first DeSantis room held "~668,000" (Fortune), "~678,000" (IANS/WION),
">500,000" (The Hill) or "more than 700k" (the campaign). So a data point is not a number to hit but
a **band** the run must land in: ``value`` is the best single reading, ``[low, high]`` the range the
sources allow, and the ``note`` of each row says how the band was derived. Sources and their
wording: ``events.md`` of the design notes; the data: ``sim/data/events/<event>.csv``, one row per
data point, columns ``COLUMNS``.

**The scenario clock.** Times are seconds from the event's *scheduled* start (t = 0 at 18:00 ET on
24 May 2023 and at 20:00 ET on 12 Aug 2024), negative before it. ``t_s`` is when the data point was
observed; ``t_to_s`` closes the window of a peak.

**Roles.** ``fit``: the calibration fits it (its ``band_residual`` enters the loss). ``input``: a
fact the scenario takes as given (the first DeSantis room was ended at ~21 min; Trump shared the
Space at ~-900 s); it is recorded, and can be measured to check that the scenario used it, but it
is not fitted. ``context``: recorded, not fitted, because it is not what a run simulates (3.2 M
cumulative listeners next morning, which includes recording plays; 73 M post views) or is an
unverified claim (an 8 M-listener load test). ``weak`` marks partisan or aggregator sources, which
a calibration may down-weight.

**Quantities, and how each is measured from a run** (``measure``). A run gives a per-tick time
series (``t_s`` is each tick's *end* on the scenario clock; row k covers
``[t_s[k] - tick_s, t_s[k])``) and a summary of scalars.

- ``listeners``: concurrent listeners at ``t_s`` = ``concurrent`` at the last tick end <= ``t_s``.
- ``trying``: people trying to get in but not in, at ``t_s`` = ``trying`` at that tick end.
- ``demand``: in the room + trying, at ``t_s`` = ``concurrent + trying`` at that tick end.
- ``peak_listeners``: the largest ``concurrent`` over the tick ends in ``[t_s, t_to_s]``.
- ``cumulative_listeners``: everyone who ever got in, by ``t_s`` = the sum of ``joining`` (the joins
  completed in each tick) over the ticks ending at or before ``t_s``.
- ``start_delay_s``: how late the conversation started = ``summary["start_delay_s"]``.
- ``room_end_s``: when the first room ended, on the scenario clock = ``summary["room_end_s"]``.
- ``event_s``: when something happened (the scheduled start, the share of the Space, the relaunch),
  on the scenario clock = ``summary[<the data point's id>]``.
- ``claimed_capacity``: a capacity the platform claimed = ``summary["claimed_capacity"]``.
- ``views``: post views, which are not listeners; no run simulates them, so always NaN.

The state outside the run: before the first tick end nobody is in the room yet (0); after the last
one the run is over and everyone has left (0). ``measure`` returns NaN, never raises, when the run
lacks what a data point needs (a column, a summary key, any rows at all).

**The residual** (``band_residual``) is 0 inside the band and, outside it, the distance to the
nearest edge in units of the band's half width, signed (negative below, positive above). The
calibration squares and sums it over the ``fit`` data points: a run inside every band costs
nothing, and a figure the press disagreed about widely (a wide band) is pulled on less.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

COLUMNS = (
    "id",
    "quantity",
    "t_s",
    "t_to_s",
    "value",
    "low",
    "high",
    "unit",
    "role",
    "weak",
    "source",
    "note",
)
"""The CSV header, in this order."""

UNITS: dict[str, str] = {
    "listeners": "listeners",
    "trying": "people",
    "demand": "people",
    "peak_listeners": "listeners",
    "cumulative_listeners": "listeners",
    "views": "views",
    "start_delay_s": "s",
    "room_end_s": "s",
    "event_s": "s",
    "claimed_capacity": "listeners",
}
"""The unit each quantity is given in."""

QUANTITIES = tuple(UNITS)
"""Every quantity a data point can be of (see the module docstring for how each is measured)."""

TIMED = ("listeners", "trying", "demand", "peak_listeners", "cumulative_listeners", "views")
"""Quantities observed at a time ``t_s`` (the others are scalars of a whole run: no ``t_s``)."""

WINDOWED = ("peak_listeners",)
"""Quantities over a window ``[t_s, t_to_s]``: only these have a ``t_to_s``."""

ROLES = ("fit", "input", "context")
"""What the calibration does with a data point: fits it, takes it as given, or only records it."""

STATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "listeners": ("concurrent",),
    "trying": ("trying",),
    "demand": ("concurrent", "trying"),
}
"""Point-in-time quantities: the time-series columns summed at the last tick end <= ``t_s``."""

SUMMARY_KEYS = {
    "start_delay_s": "start_delay_s",
    "room_end_s": "room_end_s",
    "claimed_capacity": "claimed_capacity",
}
"""Scalar quantities read from the run's summary (``event_s`` reads the data point's id)."""

EVENTS_DIR: Traversable = files("sim.data") / "events"
"""Where the event files live (inside the installed package)."""

_ID = re.compile(r"[a-z][a-z0-9_]*\Z")
_BOOLS = {"true": True, "false": False}


class ObservationError(ValueError):
    """A data-point file that breaks the rules; the message names file, row, column and value."""


@dataclass(frozen=True)
class Observation:
    """One public data point: a quantity observed at a time, as a value within a band."""

    id: str
    quantity: str
    t_s: float | None
    t_to_s: float | None
    value: float
    low: float
    high: float
    unit: str
    role: str
    weak: bool
    source: str
    note: str


def events() -> list[str]:
    """The names of the events with a data-point file (``desantis_2023``, ``trump_2024``...)."""
    return sorted(
        p.name.removesuffix(".csv")
        for p in EVENTS_DIR.iterdir()
        if p.is_file() and p.name.endswith(".csv")
    )


def is_event(event: str) -> bool:
    """``event`` names a shipped event (``events()``) or an existing ``.csv`` file of data
    points (your own event, or synthetic data made by the model: ``tests/test_calibration.py``)."""
    if event in events():
        return True
    return event.endswith(".csv") and Path(event).is_file()


def load(event: str) -> list[Observation]:
    """The validated data points of ``event`` (a name from ``events()``, or the path of a
    ``.csv`` file of the same columns), in file order."""
    if event in events():
        return list(_shipped(event))
    if event.endswith(".csv") and Path(event).is_file():
        return load_file(Path(event))
    known = ", ".join(events())
    raise ObservationError(f"unknown event {event!r}; known events: {known}, or a .csv file")


@functools.cache
def _shipped(event: str) -> tuple[Observation, ...]:
    """A shipped event's data points, read once per process (every replay run measures them)."""
    return tuple(load_file(EVENTS_DIR / f"{event}.csv"))


def load_file(path: Traversable) -> list[Observation]:
    """The validated data points of one CSV file (a ``Path`` or a package resource)."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    if not rows or tuple(rows[0]) != COLUMNS:
        got = ",".join(rows[0]) if rows else "(empty file)"
        raise ObservationError(f"{path.name}: header is {got!r}; expected {','.join(COLUMNS)!r}")
    out: list[Observation] = []
    seen: set[str] = set()
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        obs = _parse_row(_Where(path.name, line, row[0] if row else ""), row)
        if obs.id in seen:
            _Where(path.name, line, obs.id).fail("id", obs.id, "a unique id (this one repeats)")
        seen.add(obs.id)
        out.append(obs)
    return out


@dataclass(frozen=True)
class _Where:
    """Where a row is, for error messages: file, line number and the row's id."""

    file: str
    line: int
    id: str

    def fail(self, column: str, value: object, allowed: str) -> NoReturn:
        """Raise ``ObservationError`` naming the file, row, column, value and what is allowed."""
        raise ObservationError(
            f"{self.file} line {self.line}, id {self.id!r}: column {column!r} = {value!r}; "
            f"allowed: {allowed}"
        )


def _parse_row(where: _Where, row: list[str]) -> Observation:
    """One row as an ``Observation``, every column checked."""
    if len(row) != len(COLUMNS):
        where.fail("(row)", ",".join(row), f"{len(COLUMNS)} fields, got {len(row)}")
    cell = dict(zip(COLUMNS, (c.strip() for c in row), strict=True))
    if not _ID.match(cell["id"]):
        where.fail("id", cell["id"], "snake_case: a lowercase letter, then [a-z0-9_]")
    quantity = _choice(where, cell, "quantity", QUANTITIES)
    obs = Observation(
        id=cell["id"],
        quantity=quantity,
        t_s=_optional_number(where, cell, "t_s"),
        t_to_s=_optional_number(where, cell, "t_to_s"),
        value=_number(where, cell, "value"),
        low=_number(where, cell, "low"),
        high=_number(where, cell, "high"),
        unit=_choice(where, cell, "unit", (UNITS[quantity],)),
        role=_choice(where, cell, "role", ROLES),
        weak=_BOOLS[_choice(where, cell, "weak", tuple(_BOOLS))],
        source=cell["source"],
        note=cell["note"],
    )
    _check_times(where, obs)
    _check_band(where, obs)
    if not obs.source:
        where.fail("source", obs.source, "the outlet(s) the figure comes from, not empty")
    return obs


def _choice(where: _Where, cell: Mapping[str, str], column: str, allowed: tuple[str, ...]) -> str:
    """``cell[column]`` if it is one of ``allowed``."""
    if cell[column] not in allowed:
        where.fail(column, cell[column], "one of " + ", ".join(allowed))
    return cell[column]


def _number(where: _Where, cell: Mapping[str, str], column: str) -> float:
    """``cell[column]`` as a finite float."""
    raw = cell[column]
    try:
        x = float(raw)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        where.fail(column, raw, "a finite number")
    return x


def _optional_number(where: _Where, cell: Mapping[str, str], column: str) -> float | None:
    """``cell[column]`` as a finite float, or None when empty."""
    return None if cell[column] == "" else _number(where, cell, column)


def _check_times(where: _Where, obs: Observation) -> None:
    """``t_s`` exactly for timed quantities; ``t_to_s > t_s`` exactly for windowed ones."""
    if obs.quantity in TIMED and obs.t_s is None:
        where.fail("t_s", "", f"a time in seconds: {obs.quantity} is observed at a time")
    if obs.quantity not in TIMED and obs.t_s is not None:
        where.fail("t_s", obs.t_s, f"empty: {obs.quantity} is a scalar of the whole run")
    if obs.quantity in WINDOWED:
        if obs.t_to_s is None or obs.t_s is None or obs.t_to_s <= obs.t_s:
            where.fail("t_to_s", obs.t_to_s, f"a time > t_s = {obs.t_s} (the window's end)")
    elif obs.t_to_s is not None:
        where.fail("t_to_s", obs.t_to_s, "empty: only " + ", ".join(WINDOWED) + " have a window")


def _check_band(where: _Where, obs: Observation) -> None:
    """``low <= value <= high``."""
    if obs.low > obs.value:
        where.fail("low", obs.low, f"<= value = {obs.value}")
    if obs.value > obs.high:
        where.fail("high", obs.high, f">= value = {obs.value}")


def measure(obs: Observation, ts: Mapping[str, np.ndarray], summary: Mapping[str, Any]) -> float:
    """The simulated value of ``obs`` in a run: ``ts`` its per-tick time series, ``summary`` its
    scalars. NaN when the run lacks what is needed (see the module docstring for each quantity)."""
    if obs.quantity in SUMMARY_KEYS:
        return _scalar(summary, SUMMARY_KEYS[obs.quantity])
    if obs.quantity == "event_s":
        return _scalar(summary, obs.id)
    if obs.quantity == "views" or obs.t_s is None or "t_s" not in ts or len(ts["t_s"]) == 0:
        return math.nan
    t = np.asarray(ts["t_s"], dtype=np.float64)
    if obs.quantity in STATE_COLUMNS:
        return _state(t, ts, STATE_COLUMNS[obs.quantity], obs.t_s)
    if obs.quantity == "peak_listeners" and obs.t_to_s is not None:
        return _peak(t, ts, obs.t_s, obs.t_to_s)
    if obs.quantity == "cumulative_listeners" and "joining" in ts:
        return float(np.sum(np.asarray(ts["joining"])[t <= obs.t_s]))
    return math.nan


def measure_all(
    observations: Iterable[Observation], ts: Mapping[str, np.ndarray], summary: Mapping[str, Any]
) -> dict[str, float]:
    """``measure`` of every data point, keyed by id."""
    return {obs.id: measure(obs, ts, summary) for obs in observations}


def _scalar(summary: Mapping[str, Any], key: str) -> float:
    """``summary[key]`` as a float; NaN when it is missing or None."""
    x = summary.get(key)
    return math.nan if x is None else float(x)


def _state(
    t: np.ndarray, ts: Mapping[str, np.ndarray], columns: tuple[str, ...], at: float
) -> float:
    """The sum of ``columns`` at the last tick end <= ``at``; 0 outside the run; NaN if missing."""
    if any(c not in ts for c in columns):
        return math.nan
    k = int(np.searchsorted(t, at, side="right")) - 1
    if k < 0 or at > t[-1]:
        return 0.0
    return float(sum(np.asarray(ts[c])[k] for c in columns))


def _peak(t: np.ndarray, ts: Mapping[str, np.ndarray], start: float, end: float) -> float:
    """The largest ``concurrent`` at the tick ends in ``[start, end]``; a window holding no tick end
    takes the state at ``start`` (held until the next tick end)."""
    if "concurrent" not in ts:
        return math.nan
    inside = (t >= start) & (t <= end)
    if not inside.any():
        return _state(t, ts, ("concurrent",), start)
    return float(np.max(np.asarray(ts["concurrent"])[inside]))


def band_residual(obs: Observation, simulated: float) -> float:
    """How far ``simulated`` falls outside ``obs``'s band, in half widths; what calibration squares.

    0 inside ``[low, high]``; outside, the distance to the nearest edge divided by the half width
    ``(high - low) / 2`` (``max(|value| · 0.05, 1)`` for a zero-width band), negative below the band
    and positive above. NaN for a NaN ``simulated``. Example: band 500k–720k (half width 110k) and a
    run at 830k → +1.0; at 445k → -0.5.
    """
    if math.isnan(simulated):
        return math.nan
    half = (obs.high - obs.low) / 2 or max(abs(obs.value) * 0.05, 1.0)
    if simulated < obs.low:
        return (simulated - obs.low) / half
    if simulated > obs.high:
        return (simulated - obs.high) / half
    return 0.0
