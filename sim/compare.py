"""Model comparison of calibrated fits (``spacesim compare``): which explanation the data favour.

Each ``spacesim calibrate`` writes ``calibration.json``: the fit's band loss, the parameters it
fitted, and the residual of every data point (``sim.calibration``). Fits of the same event to the
same data points, with different mechanisms (organic load alone, the claimed attack, an operator
cap), are compared by an information criterion on the likelihood the fit maximised:

- the band loss ``L = sum max(|z| - 1, 0)^2`` is ``-2 log`` of a density that is flat inside each
  data point's band and Gaussian outside it (scale: the band's half width), up to a constant that is
  the same for every model of the same data, so
- ``AIC = L + 2k`` and ``BIC = L + k ln n``, for ``k`` fitted parameters and ``n`` data points;
  the Akaike weight of model ``i`` is ``exp(-dAIC_i / 2) / sum_j exp(-dAIC_j / 2)``.

The weights say how much better one explanation fits the *public figures*, not whether an
event happened: with six to seven figures per event and four to six parameters, a difference of
a few AIC units is the most the data can give (``docs/calibration.md``).

``python -m sim.compare DIR_OR_JSON ...`` (``spacesim compare``) prints the table and the
one-line answer, and ``--json PATH`` writes it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CALIBRATION_JSON = "calibration.json"  # sim.calibration.CALIBRATION_JSON (that module pulls Hydra)


@dataclass(frozen=True)
class FitScore:
    """One calibrated fit, scored."""

    name: str
    path: str
    event: str
    k: int  # fitted parameters
    n: int  # fitted data points
    band_loss: float
    aic: float
    bic: float
    delta_aic: float
    weight: float  # Akaike weight among the fits compared
    inside_all_bands: bool
    outside: tuple[str, ...]  # the data points whose band the fit misses


def load_fit(path: Path) -> tuple[Path, dict[str, Any]]:
    """The ``calibration.json`` at ``path`` (the file or its sweep dir) and its content."""
    file = path / CALIBRATION_JSON if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{path}: no {CALIBRATION_JSON} (the output of spacesim calibrate)")
    try:
        doc = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: not a calibration document ({exc})") from exc
    missing = [k for k in ("event", "band_loss", "parameters", "data_points") if k not in doc]
    if not isinstance(doc, dict) or missing:
        raise ValueError(f"{file}: not a calibration document (missing {', '.join(missing)})")
    return file, doc


def name_of(file: Path, doc: Mapping[str, Any]) -> str:
    """The fit's name: its ``experiment=`` override, else its sweep dir's name."""
    for o in doc.get("overrides") or []:
        key, _, value = str(o).partition("=")
        if key.lstrip("+~") == "experiment" and value:
            return value
    return file.parent.name


def compare(fits: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[FitScore]:
    """Score ``(name, path, calibration doc)`` fits of one event; ``ValueError`` if they differ
    in event or data points (their likelihoods would not be comparable)."""
    if len(fits) < 2:
        raise ValueError(f"compare needs at least 2 fits, got {len(fits)}")
    events = {doc["event"] for _, _, doc in fits}
    if len(events) > 1:
        raise ValueError(f"the fits are of different events ({', '.join(sorted(events))})")
    ids = [tuple(r["id"] for r in doc["data_points"]) for _, _, doc in fits]
    if len(set(ids)) > 1:
        raise ValueError("the fits were fitted to different data points: not comparable")
    n = len(ids[0])
    raw = []
    for name, path, doc in fits:
        k = len(doc["parameters"])
        loss = float(doc["band_loss"])
        raw.append((name, path, doc, k, loss, loss + 2 * k, loss + k * math.log(max(n, 1))))
    best = min(r[5] for r in raw)
    rel = [math.exp(-(r[5] - best) / 2) for r in raw]
    total = sum(rel)
    return [
        FitScore(
            name=name,
            path=path,
            event=str(doc["event"]),
            k=k,
            n=n,
            band_loss=loss,
            aic=aic,
            bic=bic,
            delta_aic=aic - best,
            weight=w / total,
            inside_all_bands=bool(doc.get("inside_all_bands")),
            outside=tuple(r["id"] for r in doc["data_points"] if not r.get("inside")),
        )
        for (name, path, doc, k, loss, aic, bic), w in zip(raw, rel, strict=True)
    ]


def answer(scores: Sequence[FitScore]) -> str:
    """The comparison in one line: the favoured fit, by how much, and what it still misses."""
    ranked = sorted(scores, key=lambda s: s.aic)
    top, second = ranked[0], ranked[1]
    gap = second.aic - top.aic
    if gap < 2:
        verdict = "the public data cannot tell these explanations apart"
    elif gap < 6:
        verdict = f"the data favour {top.name}, but not strongly"
    else:
        verdict = f"the data clearly favour {top.name}"
    misses = "inside every band" if top.inside_all_bands else f"misses {', '.join(top.outside)}"
    others = "; ".join(f"{s.name} dAIC {s.delta_aic:.1f}" for s in ranked[1:])
    out = [s.name for s in ranked if s.delta_aic >= 10]
    ruled = f"; ruled out (dAIC >= 10): {', '.join(out)}" if out else ""
    return (
        f"{top.event}: {verdict}{ruled} (best {top.name}, AIC {top.aic:.1f},"
        f" weight {top.weight:.2f}, {misses}; {others})."
    )


def format_table(scores: Sequence[FitScore]) -> str:
    head = (
        f"  {'fit':<34} {'k':>2} {'band loss':>10} {'AIC':>8} {'dAIC':>7} {'BIC':>8} {'weight':>7}"
    )
    rows = [head]
    for s in sorted(scores, key=lambda s: s.aic):
        rows.append(
            f"  {s.name:<34} {s.k:>2} {s.band_loss:>10.3f} {s.aic:>8.2f} {s.delta_aic:>7.2f}"
            f" {s.bic:>8.2f} {s.weight:>7.3f}"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spacesim compare",
        description="Compare calibrated fits of one event by AIC/BIC on their band likelihood.",
    )
    parser.add_argument("fits", nargs="+", type=Path, help="sweep dirs (or calibration.json files)")
    parser.add_argument("--json", type=Path, default=None, help="write the comparison here")
    ns = parser.parse_args(argv)
    try:
        loaded = [load_fit(p) for p in ns.fits]
        scores = compare([(name_of(f, d), str(f), d) for f, d in loaded])
    except ValueError as exc:
        print(f"spacesim compare: {exc}", file=sys.stderr)
        return 2
    print(format_table(scores))
    line = answer(scores)
    print(line)
    if ns.json is not None:
        doc = {"answer": line, "fits": [asdict(s) for s in scores]}
        ns.json.write_text(json.dumps(doc, indent=2) + "\n")
        log.info("comparison written to %s", ns.json)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
