"""The resource guard (``sim.guard``): the estimate against measured peak memory, the refusal of a
run too large for this machine (in seconds, before anything is written), ``--dry-run`` and the
override ``engine.guard=false``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim import guard
from sim.hydra_app import check_overrides
from tests.conftest import typed_config
from tests.test_cli import spacesim

BENCH = ["experiment=bench_surge", "engine.progress=false"]
ABSURD = {
    "arrivals": "scenario.expected_arrivals=1e12",
    "workers": "platform.join_workers=10000000000",
}
FEW = "scenario.expected_arrivals=1e4"

_PEAK = """\
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True)
assert done.returncode == 0, done.stderr.decode()[-2000:]
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def _peak_rss(args: list[str], cwd: Path) -> int:
    """Peak resident bytes of ``spacesim ARGS``, run in a fresh process of its own."""
    exe = str(Path(sys.executable).with_name("spacesim"))
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, exe, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


# The estimate is the fixed cost of the loaded interpreter (~250 MB, measured) plus what grows
# with the run; small runs are dominated by the former, so a factor of 2 either way is loose for
# them, yet it catches a wrong unit or a lost term. Larger runs (1e6, 1e7 arrivals) agree within
# 10 % (docs/robustness.md); they take too long for the test suite.
@pytest.mark.parametrize(
    "overrides",
    [
        [*BENCH, "scenario.expected_arrivals=1e5"],
        [*BENCH, FEW, "engine=reference"],
    ],
    ids=["batched-1e5", "reference-1e4"],
)
def test_the_estimate_is_within_a_factor_2_of_the_measured_peak(
    overrides: list[str], tmp_path: Path
) -> None:
    est = guard.estimate(typed_config(overrides))
    measured = _peak_rss(["run", *overrides, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert 0.5 <= est.peak_bytes / measured <= 2.0, (est.describe(), measured)


def test_the_estimate_is_closed_form_for_any_size() -> None:
    cfg = typed_config([*BENCH, ABSURD["arrivals"]])
    huge = typed_config([*BENCH, FEW, "platform.join_workers=1000000000"])
    start = time.perf_counter()
    big, wide = guard.estimate(cfg), guard.estimate(huge)
    assert time.perf_counter() - start < 0.1
    assert big.peak_bytes > 1e13 and big.parts["listeners"] > 0.9 * big.peak_bytes
    assert wide.peak_bytes > 4e10 and wide.drivers()[:3] == [
        "platform.nodes",
        "platform.join_workers",
        "platform.join_queue_cap",
    ]
    assert "peak memory" in big.describe() and "GB" in guard.estimate(huge).describe()
    assert guard.available_bytes() > 0


@pytest.mark.parametrize("what", sorted(ABSURD))
def test_a_run_too_large_is_refused_in_seconds_and_writes_nothing(
    what: str, tmp_path: Path
) -> None:
    start = time.monotonic()
    done = spacesim("run", *BENCH, ABSURD[what], cwd=tmp_path)
    assert time.monotonic() - start < 30  # start-up included; the estimate itself takes µs
    assert done.returncode == 2, done.stderr[-2000:]
    assert "peak memory" in done.stderr and "available" in done.stderr
    assert "engine.guard=false" in done.stderr and "nothing was run" in done.stderr
    key = ABSURD[what].split("=")[0]
    assert f"{key} = " in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []  # no run dir, no archive


def test_a_sweep_with_one_point_too_large_runs_no_point(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    done = spacesim(
        "run", "-m", *BENCH, FEW, "platform.join_workers=2,3,10000000000",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "platform.join_workers = 10000000000" in done.stderr
    assert "engine.guard=false" in done.stderr
    assert not sweep.exists() and list(tmp_path.iterdir()) == []


def test_dry_run_prints_the_config_and_the_estimate_and_runs_nothing(tmp_path: Path) -> None:
    done = spacesim("run", "--dry-run", *BENCH, FEW, "seed=7", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "expected_arrivals: 10000.0" in done.stdout and "seed: 7" in done.stdout
    assert "# estimate: about" in done.stdout and "peak memory" in done.stdout
    assert "nothing was run" in done.stdout
    assert list(tmp_path.iterdir()) == []
    refused = spacesim("run", "--dry-run", *BENCH, ABSURD["workers"], cwd=tmp_path)
    assert refused.returncode == 2 and "engine.guard=false" in refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_guard_false_lets_the_check_pass() -> None:
    on = typed_config([*BENCH, FEW, ABSURD["workers"]])
    off = typed_config([*BENCH, FEW, ABSURD["workers"], "engine.guard=false"])
    assert guard.problems(on) and "engine.guard=false" in guard.problems(on)[-1]
    assert guard.problems(off) == []
    assert check_overrides([*BENCH, FEW, ABSURD["workers"], "engine.guard=false"]) == []
    fine = typed_config([*BENCH, FEW])
    assert guard.problems(fine) == []
    assert guard.problems(fine, available=10**6)  # what it refuses depends on what is free


@pytest.mark.parametrize("value", ["maybe", "5", "[true]"])
def test_a_bad_guard_value_is_refused_naming_the_key(value: str) -> None:
    problems = check_overrides([f"engine.guard={value}"])
    assert problems and all("engine.guard" in p for p in problems), problems
