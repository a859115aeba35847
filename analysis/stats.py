"""Replication statistics for the report: mean intervals, failure shares, the fitted curve.

- ``mean_ci(values)``: mean and Student-t interval of independent replications;
- ``grouped_ci(df, by, value)``: the same per group of a summary frame;
- ``wilson(k, n)`` and ``failure_share(df, by)``: the share of failed runs with its Wilson interval;
- ``failure_probability(cell, x)``: a threshold cell's fitted logistic curve p(x), evaluated by
  ``sim.threshold.Fit.p`` (the search's own model, not a re-derivation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as sps

from sim.threshold import Fit


class CI(NamedTuple):
    """A point estimate with its interval and the number of values behind it."""

    mean: float
    low: float
    high: float
    n: int


def mean_ci(values: ArrayLike, confidence: float = 0.95) -> CI:
    """Mean and two-sided Student-t interval of the finite ``values`` (NaN dropped).

    With one value the interval is NaN (no spread to judge), with none the mean is too.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    a = np.asarray(values, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    n = int(a.size)
    if n == 0:
        return CI(math.nan, math.nan, math.nan, 0)
    m = float(a.mean())
    if n == 1:
        return CI(m, math.nan, math.nan, 1)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * float(a.std(ddof=1)) / math.sqrt(n)
    return CI(m, m - half, m + half, n)


def _by(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def grouped_ci(
    df: pd.DataFrame, by: str | Sequence[str], value: str, confidence: float = 0.95
) -> pd.DataFrame:
    """Per group of ``by``: ``mean``, ``ci_low``, ``ci_high``, ``n`` of column ``value``.

    ``attrs`` carries ``value``, its ``units`` (from ``df.attrs["units"]``) and ``confidence``.
    """
    keys = _by(by)
    rows = []
    for group, part in df.groupby(keys, sort=True, dropna=False):
        ci = mean_ci(part[value].to_numpy(dtype=np.float64), confidence)
        rows.append({**dict(zip(keys, group, strict=True)), **_ci_row(ci)})
    out = pd.DataFrame(rows, columns=[*keys, "mean", "ci_low", "ci_high", "n"])
    out.attrs |= {
        "value": value,
        "units": df.attrs.get("units", {}).get(value),
        "confidence": confidence,
    }
    return out


def _ci_row(ci: CI) -> dict[str, Any]:
    return {"mean": ci.mean, "ci_low": ci.low, "ci_high": ci.high, "n": ci.n}


def wilson(k: int, n: int, confidence: float = 0.95) -> CI:
    """The share ``k / n`` with its Wilson score interval (``mean`` is the share)."""
    if n <= 0:
        return CI(math.nan, math.nan, math.nan, 0)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, not k={k}, n={n}")
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return CI(p, max(0.0, centre - half), min(1.0, centre + half), n)


def failure_share(
    df: pd.DataFrame,
    by: str | Sequence[str],
    failed: str = "failed",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per group: ``failures``, ``n``, ``share`` and its Wilson ``ci_low``/``ci_high``."""
    keys = _by(by)
    rows = []
    for group, part in df.groupby(keys, sort=True, dropna=False):
        flags = part[failed].fillna(False).astype(bool).to_numpy()
        k, n = int(flags.sum()), int(flags.size)
        ci = wilson(k, n, confidence)
        rows.append(
            {
                **dict(zip(keys, group, strict=True)),
                "failures": k,
                "n": n,
                "share": ci.mean,
                "ci_low": ci.low,
                "ci_high": ci.high,
            }
        )
    out = pd.DataFrame(rows, columns=[*keys, "failures", "n", "share", "ci_low", "ci_high"])
    out.attrs |= {"value": failed, "units": "share of runs", "confidence": confidence}
    return out


def cell_fit(cell: Mapping[str, Any] | pd.Series) -> Fit:
    """The ``sim.threshold.Fit`` a threshold cell reports (``analysis.frames.threshold`` row)."""
    theta, slope = float(cell["estimate"]), float(cell["slope"])
    if not (math.isfinite(theta) and math.isfinite(slope)):
        raise ValueError(f"the cell has no fit (stop_reason {cell.get('stop_reason')!r})")
    return Fit(
        theta=theta,
        slope=slope,
        loglik=math.nan,
        separated=bool(cell.get("separated", False)),
        target=float(cell.get("target", 0.5)),
        log_scale=bool(cell.get("log_scale", False)),
        increasing=bool(cell.get("increasing", True)),
    )


def failure_probability(
    cell: Mapping[str, Any] | pd.Series, x: ArrayLike | None = None, points: int = 201
) -> pd.DataFrame:
    """The fitted P(failure) of a threshold cell at ``x`` (default: ``points`` values spanning
    the stored curve, geometric on a log scale): a frame ``x, p``."""
    fit = cell_fit(cell)
    if x is None:
        cx = np.asarray(cell["curve_x"], dtype=np.float64)
        lo, hi = float(np.nanmin(cx)), float(np.nanmax(cx))
        grid = np.geomspace(lo, hi, points) if fit.log_scale else np.linspace(lo, hi, points)
    else:
        grid = np.asarray(x, dtype=np.float64).ravel()
    return pd.DataFrame({"x": grid, "p": fit.p(grid)})
