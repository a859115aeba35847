"""A real SIGINT (Ctrl-C) sent to a running ``spacesim run`` and to a running sweep (issue 23).

Each command runs in its own session, so the signal goes to its whole process group as a
terminal's Ctrl-C does (the sweep's workers included). The tests wait until the run is
simulating (its progress bar, forced on, is in the stderr file) before they send it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sim import archive

EXE = Path(sys.executable).with_name("spacesim")
# a run long enough to be stopped: 3·10^5 s of a trickle of arrivals, one tick per second
LONG = [
    "scenario=steady",
    "scenario.profile=[{t_s:0,rate_per_s:0.01},{t_s:300000,rate_per_s:0.01}]",
    "engine.progress=true",
]
WAIT_S = 120.0  # the longest any step here may take on a loaded machine before the test fails


def _as_from_a_terminal() -> None:
    """SIGINT back to its default in the child, as a terminal's shell gives it.

    A command started in the background of a non-interactive shell (``make test &``, a CI
    runner, ``nohup``) inherits SIGINT ignored, and a Python started that way keeps ignoring
    it; the tests are about a person pressing Ctrl-C, so the child starts as from a terminal.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    err = tmp / "stderr.txt"
    env = os.environ | {"HYDRA_FULL_ERROR": "1"}
    with open(tmp / "stdout.txt", "wb") as out, open(err, "wb") as e:
        proc = subprocess.Popen(
            [str(EXE), *args],
            cwd=tmp,
            stdout=out,
            stderr=e,
            env=env,
            start_new_session=True,
            preexec_fn=_as_from_a_terminal,
        )
    return proc, err


def _wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ready():
        assert proc.poll() is None, f"the command ended (status {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {WAIT_S} s"
        time.sleep(0.1)


def _ctrl_c(proc: subprocess.Popen[bytes]) -> int:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def _session_alive(sid: int) -> list[int]:
    """The processes still running in session ``sid`` (the command's workers, if any)."""
    alive = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getsid(int(d.name)) == sid:
                    alive.append(int(d.name))
            except (ProcessLookupError, PermissionError):
                pass
    return alive


@pytest.mark.parametrize("engine", ["default", "reference"])
def test_sigint_during_a_run_writes_an_interrupted_record(tmp_path: Path, engine: str) -> None:
    run_dir = tmp_path / "run"
    proc, err = _start(
        ["run", *LONG, f"engine={engine}", f"hydra.run.dir={run_dir}"],
        tmp_path,
    )
    _wait_for("progress bar", lambda: b"simulating:" in err.read_bytes(), proc)
    time.sleep(1.0)  # well inside the simulation, between numba calls or in one
    assert _ctrl_c(proc) == 130
    stderr = err.read_text()
    assert "Traceback" not in stderr and "Segmentation" not in stderr, stderr
    assert f"{run_dir} holds a record with status interrupted" in stderr
    record = archive.read_record(run_dir / archive.RUN_H5)
    assert record["status"] == "interrupted"
    summary = record["summary"]
    assert summary["interrupted"] is True and summary["failed"] is True
    events = archive.read_events(run_dir / archive.RUN_H5)
    stop = events[events["kind"] == "interrupted"]
    assert len(stop) == 1 and stop["t_s"].iloc[0] > 0  # the simulated time it got to
    t_s = stop["t_s"].iloc[0]
    assert summary["failure_reason"] == f"interrupted (SIGINT) at t = {t_s:.0f} s"
    assert _session_alive(proc.pid) == []


def test_sigint_during_a_sweep_keeps_finished_runs_and_says_how_to_resume(
    tmp_path: Path,
) -> None:
    sweep = tmp_path / "sweep"
    # two quick jobs (a 60 s profile) and two long ones, two workers
    args = [
        "sweep",
        "--workers",
        "2",
        "scenario=steady",
        "scenario.profile=[{t_s:0,rate_per_s:0.01},{t_s:60,rate_per_s:0.01}],"
        "[{t_s:0,rate_per_s:0.01},{t_s:300000,rate_per_s:0.01}]",
        "seed=1,2",
        f"hydra.sweep.dir={sweep}",
    ]
    proc, err = _start(args, tmp_path)

    def quick_ones_done() -> bool:
        return len(list(sweep.glob(f"*/{archive.SUMMARY_JSON}"))) >= 2

    _wait_for("two finished runs", quick_ones_done, proc)
    time.sleep(1.0)
    assert _ctrl_c(proc) == 130
    stderr = err.read_text()
    assert "Traceback" not in stderr and "Segmentation" not in stderr, stderr
    assert "leaked" not in stderr  # the resource tracker's warning is silenced
    assert f"the finished runs are kept in {sweep}" in stderr
    assert f"`spacesim sweep --resume {sweep}` runs the rest" in stderr
    finished = sorted(p.parent.name for p in sweep.glob(f"*/{archive.RUN_H5}"))
    kept = {name: archive.read_record(sweep / name / archive.RUN_H5)["status"] for name in finished}
    ok = [name for name, status in kept.items() if status == "ok"]
    assert len(ok) == 2, kept
    assert all(status in ("ok", "interrupted") for status in kept.values()), kept
    assert not (sweep / "sweep.h5").exists()  # nothing merged from half a sweep
    deadline = time.monotonic() + 10
    while _session_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)  # the workers are being torn down
    assert _session_alive(proc.pid) == [], "workers left running after Ctrl-C"
