"""The policy comparison of a threshold search over a grid of admission and client policies
(``experiment=policy_comparison``, ``docs/policies.md``): per policy combination, the searched
threshold with its interval (``threshold.json``) and the time to stable of its runs
(``sweep.h5``), for ``analysis/notebooks/policy.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis import plots, stats

POLICY_KEYS = ("admission", "client")
"""The override keys that name a policy (``conf/admission``, ``conf/client``)."""


def policy_keys(cells: pd.DataFrame) -> list[str]:
    """The policy keys (``POLICY_KEYS``) that the cells of a ``frames.threshold`` frame vary."""
    return [k for k in POLICY_KEYS if k in cells.columns and cells[k].nunique(dropna=False) > 1]


def label(row: pd.Series | dict[str, object], keys: Sequence[str]) -> str:
    """``"admission=none, client=immediate"``: the policies of a cell or a run."""
    return ", ".join(f"{k}={row[k]}" for k in keys)


def thresholds(cells: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per cell: ``policy``, ``mean`` (the estimate), ``ci_low``, ``ci_high``, ``runs``,
    ``failures``, in the cells' order; ``attrs`` are what ``plots.policy_comparison`` reads."""
    out = pd.DataFrame(
        {
            "policy": [label(c, keys) for _, c in cells.iterrows()],
            "mean": cells["estimate"].astype(np.float64).to_numpy(),
            "ci_low": cells["ci_low"].astype(np.float64).to_numpy(),
            "ci_high": cells["ci_high"].astype(np.float64).to_numpy(),
            "runs": cells["runs"].to_numpy(),
            "failures": cells["failures"].to_numpy(),
        }
    )
    conf = float(cells["confidence"].iloc[0]) if len(cells) else math.nan
    out.attrs |= {"value": str(cells["parameter"].iloc[0]), "units": None, "confidence": conf}
    out.attrs["keys"] = list(keys)
    return out


def time_to_stable(
    summary: pd.DataFrame, keys: Sequence[str], order: Sequence[str]
) -> pd.DataFrame:
    """Per policy (in ``order``): mean time to stable of its runs with a Student-t interval
    (``stats.grouped_ci``; runs never stable are left out of the mean) and ``never``, how many
    runs never became stable."""
    s = summary.assign(policy=[label(r, keys) for _, r in summary.iterrows()])
    g = stats.grouped_ci(s, "policy", "time_to_stable_s")
    never = s.groupby("policy")["time_to_stable_s"].apply(lambda v: int(v.isna().sum()))
    g["never"] = g["policy"].map(never).fillna(0).astype(int)
    rank = {p: i for i, p in enumerate(order)}
    g = g.sort_values("policy", key=lambda c: c.map(lambda p: rank.get(p, len(rank))))
    g.attrs["keys"] = list(keys)
    return g.reset_index(drop=True).pipe(lambda d: _keep_attrs(d, g))


def _keep_attrs(d: pd.DataFrame, src: pd.DataFrame) -> pd.DataFrame:
    d.attrs |= src.attrs
    return d


def findings(thr: pd.DataFrame, tts: pd.DataFrame | None) -> str:
    """The best and worst thresholds, each policy's estimate and interval, and the mean time to
    stable of its runs (``tts``: None when the search left no ``sweep.h5``)."""
    param = str(thr.attrs.get("value", "threshold"))
    conf = float(thr.attrs.get("confidence", math.nan))
    parts = []
    for _, r in thr.iterrows():
        est = (
            f"{plots.number(r['mean'])} [{plots.number(r['ci_low'])}, {plots.number(r['ci_high'])}]"
            if math.isfinite(r["mean"])
            else "no estimate"
        )
        t = tts[tts["policy"] == r["policy"]] if tts is not None else thr.iloc[:0]
        stable = (
            f", stable after {t['mean'].iloc[0]:.3g} s on average"
            if len(t) and math.isfinite(float(t["mean"].iloc[0]))
            else ""
        )
        parts.append(f"{r['policy']}: {est}{stable}")
    finite = thr[np.isfinite(thr["mean"])]
    head = f"{param} at the threshold for {len(thr)} policy combinations ({conf:.0%} intervals)"
    if len(finite) > 1 and finite["mean"].max() > finite["mean"].min():
        hi, lo = finite.loc[finite["mean"].idxmax()], finite.loc[finite["mean"].idxmin()]
        head += f", highest under {hi['policy']}, lowest under {lo['policy']}"
    return f"{head}: {'; '.join(parts)}."
