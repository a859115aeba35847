"""Shared helpers: composing configs from ``conf/`` the way ``spacesim run`` does, and making
real archives with the ``spacesim`` command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.config import Config
from sim.hydra_app import compose_config, compose_typed

__all__ = ["compose_config", "make_archives", "make_reports", "report_findings", "typed_config"]


def typed_config(overrides: list[str]) -> Config:
    """The typed, validated config of ``conf/config.yaml`` with ``overrides``."""
    return compose_typed(overrides)


def make_archives(root: Path, jobs: Mapping[str, Sequence[str]]) -> dict[str, Path]:
    """Run each ``spacesim`` command of ``jobs`` (name: arguments) at once, as subprocesses,
    into ``root / name`` (the run dir for ``run``, the sweep dir otherwise); their directories."""
    exe = str(Path(sys.executable).with_name("spacesim"))
    env = os.environ | {"HYDRA_FULL_ERROR": "1"}
    dirs = {name: root / name for name in jobs}
    procs = {}
    for name, args in jobs.items():
        where = "hydra.run.dir" if args[0] == "run" else "hydra.sweep.dir"
        procs[name] = subprocess.Popen(
            [exe, *args, f"{where}={dirs[name]}"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, p in procs.items():
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"{name}: {err[-2000:]}"
    return dirs


def make_reports(archives: Mapping[str, Path], out: Path) -> dict[str, Any]:
    """``sim.report.build_report`` of each archive into ``out / name`` (no progress bar)."""
    from sim.report import build_report

    return {name: build_report(path, out / name, progress=False) for name, path in archives.items()}


def report_findings(html: str) -> str:
    """The findings paragraph of a report's HTML."""
    m = re.search(r'<p id="findings">(.*?)</p>', html, re.DOTALL)
    assert m is not None
    return m.group(1)
