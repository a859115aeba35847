"""Space-filling designs: which points of a parameter space a sweep runs, and with which seeds.

A grid (Hydra's ``a=1,2,3 b=10,20``) spends its runs on a lattice: with ``d`` parameters and ``k``
levels each it needs ``k**d`` runs, and every run repeats the levels of the others. A
*space-filling* design spreads ``n`` points over the box of declared ranges so that every
parameter takes ``n`` distinct values and the points cover the box evenly:

- **Sobol** (``design: sobol``): a scrambled Sobol low-discrepancy sequence
  (``scipy.stats.qmc.Sobol``). Its balance properties hold for ``n`` a power of 2 (8, 16, 32 ...);
  other ``n`` are allowed and logged.
- **Latin hypercube** (``design: lhs``): each parameter's range cut into ``n`` equal strata, one
  point per stratum, the strata paired at random (``scipy.stats.qmc.LatinHypercube``).

Both are drawn from the unit cube with the design's own ``seed`` (the same seed gives the same
points, whatever launcher runs them) and mapped onto each ``Range``: linearly, or in log space
(``log: true``, for sizes spanning decades such as an audience of 10^4 to 10^7), then rounded down
to integers when ``integer: true`` (each of the ``high - low + 1`` integers equally likely).

**Replications with common random numbers.** Each point runs ``R`` times, replication ``r`` with
``seed = base_seed + r`` *at every point*. The named random streams of a run derive from its seed
(``sim.streams``), so replication ``r`` of two points sees the same arrival times, service draws
and retry draws wherever the parameters do not change what is drawn: the difference between two
points is then mostly the parameters' effect and not noise (Law, *Simulation Modeling and
Analysis*, §11.2).

``job_overrides`` turns points into the override lists of Hydra jobs, crossed with any discrete
grid of the sweep; ``sim.sweep.DesignSweeper`` launches them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import qmc

log = logging.getLogger(__name__)

DESIGNS = ("sobol", "lhs")
Problem = tuple[str, Any, str]


@dataclass(frozen=True)
class Range:
    """One parameter of a design: the config ``key`` it overrides and the interval it spans."""

    key: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        where = f"ranges.{self.key}"
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            out.append((f"{where}.high", self.high, f"a finite number > low ({self.low})"))
        if self.log and not self.low > 0:
            out.append((f"{where}.low", self.low, "a number > 0 (log: true)"))
        if self.integer and not (float(self.low).is_integer() and float(self.high).is_integer()):
            out.append((f"{where}.low", self.low, "integers low and high (integer: true)"))
        return out

    def scale(self, u: np.ndarray) -> list[float] | list[int]:
        """Map unit-interval draws ``u`` onto this range."""
        if self.integer:
            lo, hi = int(self.low), int(self.high)
            if self.log:
                v = np.exp(np.log(lo) + u * (np.log(hi + 1) - np.log(lo)))
            else:
                v = lo + u * (hi - lo + 1)
            return [int(x) for x in np.clip(np.floor(v), lo, hi)]
        if self.log:
            v = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return [float(x) for x in np.clip(v, self.low, self.high)]


def parse_ranges(spec: Mapping[str, Any]) -> tuple[list[Range], list[Problem]]:
    """``{key: {low, high, log?, integer?}}`` as ``Range``s, and every problem found."""
    ranges: list[Range] = []
    problems: list[Problem] = []
    for key, item in spec.items():
        if not isinstance(item, Mapping) or "low" not in item or "high" not in item:
            problems.append((f"ranges.{key}", item, "a mapping {low: L, high: H, log?, integer?}"))
            continue
        extra = set(item) - {"low", "high", "log", "integer"}
        if extra:
            problems.append((f"ranges.{key}", sorted(extra), "only low, high, log, integer"))
            continue
        try:
            r = Range(
                str(key),
                float(item["low"]),
                float(item["high"]),
                bool(item.get("log", False)),
                bool(item.get("integer", False)),
            )
        except (TypeError, ValueError):
            problems.append((f"ranges.{key}", dict(item), "numbers low < high"))
            continue
        problems += r.problems()
        ranges.append(r)
    if not spec:
        problems.append(("ranges", {}, "at least one parameter range"))
    return ranges, problems


def unit_points(design: str, n: int, d: int, seed: int) -> np.ndarray:
    """``n`` points of the ``d``-dimensional unit cube from ``design`` (``DESIGNS``)."""
    if design == "sobol":
        if n & (n - 1):
            log.info("a Sobol design of %d points: balanced only for a power of 2", n)
        sampler = qmc.Sobol(d, scramble=True, rng=seed)
        if n & (n - 1) == 0:
            return sampler.random_base2(int(math.log2(n)))
        import warnings

        with warnings.catch_warnings():  # scipy warns that n is not a power of 2: logged above
            warnings.simplefilter("ignore", UserWarning)
            return sampler.random(n)
    if design == "lhs":
        return qmc.LatinHypercube(d, rng=seed).random(n)
    raise ValueError(f"design = {design!r}; allowed: one of {', '.join(DESIGNS)}")


def design_points(
    ranges: Sequence[Range], design: str, n: int, seed: int
) -> list[dict[str, float | int]]:
    """The ``n`` points of the design over ``ranges``, as ``{key: value}`` in design order."""
    u = unit_points(design, n, len(ranges), seed)
    columns = [r.scale(u[:, j]) for j, r in enumerate(ranges)]
    return [{r.key: columns[j][i] for j, r in enumerate(ranges)} for i in range(n)]


def format_value(value: float | int) -> str:
    """A value as a Hydra override accepts it back unchanged (``repr`` of floats)."""
    return repr(int(value)) if isinstance(value, int | np.integer) else repr(float(value))


def job_overrides(
    points: Sequence[Mapping[str, float | int]],
    replications: int,
    base_seed: int,
    grid: Sequence[Sequence[str]] = ((),),
    seed_key: str = "seed",
) -> list[list[str]]:
    """Override lists of every job: each grid cell × point × replication, in that order.

    Replication ``r`` runs with ``seed_key = base_seed + r`` at every point (common random
    numbers).
    """
    jobs: list[list[str]] = []
    for cell in grid:
        for point in points:
            values = [f"{k}={format_value(v)}" for k, v in point.items()]
            for r in range(replications):
                jobs.append([*cell, *values, f"{seed_key}={base_seed + r}"])
    return jobs
