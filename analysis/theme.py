"""One look for every report figure, and axis labels that always carry units.

``apply()`` sets the seaborn theme (a fixed context, style and palette) and never touches the
backend, so it is safe under Agg (tests, batch jobs) and in notebooks alike. ``label(name, units)``
turns an archive column or parameter into ``"Listeners in the room (people)"``: a known name gets
its words and display units from ``QUANTITIES``, any other name its archive units
(``sim.archive.units_of``: ``s``, ``1/s``, ``count``, ``1``, ...).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Literal

import seaborn as sns

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Context = Literal["paper", "notebook", "talk", "poster"]
CONTEXT: Context = "notebook"
STYLE: Literal["whitegrid"] = "whitegrid"
PALETTE = "colorblind"

QUANTITIES: dict[str, tuple[str, str]] = {
    # time
    "t_s": ("Time", "s"),
    # states at the end of a tick
    "concurrent": ("Listeners in the room", "people"),
    "trying": ("People trying", "people"),
    "waiting": ("In waiting rooms", "people"),
    "connections": ("Connections held", "connections"),
    "nodes_up": ("Edge nodes up", "count"),
    "retries_pending": ("Retries pending", "attempts"),
    "held": ("Held", "people"),
    # counts of events in a tick
    "arrivals": ("New listeners", "people/tick"),
    "attempts": ("Join attempts", "attempts/tick"),
    "admitted": ("Admitted attempts", "attempts/tick"),
    "joining": ("Attempts that will join", "attempts/tick"),
    "joined": ("Joins completed", "people/tick"),
    "abandoned": ("Gave up", "people/tick"),
    "left": ("Left", "people/tick"),
    "reconnects": ("Reconnects", "people/tick"),
    "dropped": ("Dropped", "people/tick"),
    # rates and latencies
    "join_capacity_per_s": ("Join capacity", "1/s"),
    "goodput_per_s": ("Joins completed", "1/s"),
    "offered_per_s": ("Offered load", "1/s"),
    "attempt_rate_per_s": ("Join attempts", "1/s"),
    "join_latency_p50_s": ("Join latency p50", "s"),
    "join_latency_p99_s": ("Join latency p99", "s"),
    "connected_share": ("Connected", "share"),
    # parameters and summary metrics
    "seed": ("Seed", "index"),
    "admission": ("Admission policy", "name"),
    "client": ("Client retry policy", "name"),
    "platform.nodes": ("Edge nodes", "count"),
    "platform.join_workers": ("Join workers per node", "count"),
    "platform.auth_workers": ("Control-plane workers", "count"),
    "platform.fanout.edge.egress_gbps": ("Edge egress per node", "Gb/s"),
    "workers": ("Join workers", "count"),
    "scenario.expected_arrivals": ("Expected arrivals", "people"),
    "expected_arrivals": ("Expected arrivals", "people"),
    "arrival_rate_per_s": ("Arrival rate", "1/s"),
    "service_rate_per_s": ("Service rate", "1/s"),
    "failed": ("Failure probability", "share of runs"),
    "time_to_stable_s": ("Time to stable", "s"),
    "goodput_joins_per_s": ("Goodput", "joins/s"),
    "abandoned_share": ("Gave up", "share"),
    "reject_share": ("Rejected", "share"),
    "retry_amplification": ("Retry amplification", "attempts/arrival"),
    "peak_concurrent": ("Peak listeners", "people"),
}
"""Display words and units of known columns: ``name -> (quantity, units)``."""

REJECTIONS: dict[str, str] = {
    "bucket": "no admission token",
    "full": "node full",
    "queue": "node queue full",
    "timeout": "no worker in time",
    "cap": "room capped",
    "hold_full": "waiting room full",
    "hold_timeout": "waited too long",
    "shed": "load shed",
    "no_credit": "no credit",
    "throttled": "client throttled",
    "auth": "login overloaded",
    "down": "no node up",
    "flooded": "lost in a flood",
    "filtered": "taken for a bot",
    "presence": "presence saturated",
}
"""What each rejection reason (``rejected_<reason>``, ``docs/model.md``) means, in a few words."""

PER_S = "_per_s"
"""Suffix of a per-tick count turned into a rate (``frames.per_second``): ``attempts_per_s``."""

_ARCHIVE_UNITS = {"count": "count", "1": "ratio", "": "value"}


def apply(context: Context = CONTEXT) -> None:
    """Set the report theme (seaborn ``set_theme``); the matplotlib backend is left alone."""
    sns.set_theme(context=context, style=STYLE, palette=PALETTE)


def colors(n: int) -> list[tuple[float, float, float]]:
    """``n`` colours of the report palette."""
    return [tuple(c) for c in sns.color_palette(PALETTE, n)]  # type: ignore[misc]


def quantity(name: str, units: str | None = None, total: bool = False) -> tuple[str, str]:
    """``(words, display units)`` of a column or parameter; ``units`` are the archive's.

    ``total``: the name is a run's summary (``joined``: people in all), not a per-tick count.
    """
    words, u = _quantity(name, units)
    return (words, u.removesuffix("/tick")) if total else (words, u)


def _quantity(name: str, units: str | None) -> tuple[str, str]:
    if name in QUANTITIES:
        return QUANTITIES[name]
    if name.endswith(PER_S):
        words, u = _quantity(name.removesuffix(PER_S), "count")
        if u.endswith("/tick"):
            return words, u.removesuffix("/tick") + "/s"
    if name.startswith("rejected_") or name.startswith("rejected."):
        reason = name.split("_", 1)[-1].split(".", 1)[-1]
        return f"Rejected: {REJECTIONS.get(reason, reason.replace('_', ' '))}", "attempts/tick"
    words = name.rsplit(".", 1)[-1].replace("_", " ")
    words = words[:1].upper() + words[1:]
    u = units if units is not None else ""
    if u == "1" and name.endswith("share"):
        return words, "share"
    return words, _ARCHIVE_UNITS.get(u, u)


def label(name: str, units: str | None = None, total: bool = False) -> str:
    """``"Words (units)"`` for an axis: ``label("t_s") == "Time (s)"`` (``total``: ``quantity``)."""
    words, u = quantity(name, units, total)
    return f"{words} ({u})"


_NO_UNITS = {"", "value", "index", "name", "ratio", "share", "policy", "count"}


def setting(name: str, value: object) -> str:
    """A parameter's value in words, for a legend: ``"Edge egress per node = 0.006 Gb/s"``,
    ``"Edge nodes = 8"`` (no units that repeat the words or that are no units)."""
    words, u = quantity(name)
    if isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float):
        text = f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:.4g}"
    elif isinstance(value, numbers.Integral):
        text = f"{value:,}" if abs(value) >= 1000 else str(value)
    else:
        text = str(value)
    plain = u in _NO_UNITS or u.lower() in words.lower()
    return f"{words} = {text}" if plain else f"{words} = {text} {u}"


def label_axes(ax: Axes, x: str, y: str) -> Axes:
    """Set both axis labels; each must already read ``"Words (units)"``."""
    for text in (x, y):
        if not (text.endswith(")") and "(" in text):
            raise ValueError(f"axis label {text!r} has no units in parentheses")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    return ax
