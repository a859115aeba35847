"""The runner: one job of ``spacesim run``, from a composed config to files in the run dir.

It turns the composed config into typed dataclasses (refusing bad values), runs the engine with a
progress bar on a terminal, and hands every result to the writer (``sim.archive``). A run that
raises still writes ``summary.json`` and ``run.h5`` with ``failed = true`` and the reason.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from sim import archive
from sim.config import Config, to_config
from sim.engine import RunResult, simulate
from sim.kernels.pipeline import REASONS

log = logging.getLogger(__name__)


def failed_summary(seed: Any, reason: str) -> dict[str, Any]:
    """The summary of a run that could not finish."""
    return {
        "arrivals": 0,
        "attempts": 0,
        "joined": 0,
        "abandoned": 0,
        "rejected": dict.fromkeys(REASONS, 0),
        "join_latency_p50_s": float("nan"),
        "join_latency_p99_s": float("nan"),
        "peak_concurrent": 0,
        "peak_time_s": float("nan"),
        "wall_s": 0.0,
        "seed": seed,
        "failed": True,
        "failure_reason": reason,
    }


def run_simulation(cfg: Config) -> RunResult:
    """Run ``cfg`` with a progress bar in simulated seconds (none when not on a terminal)."""
    show = cfg.engine.progress
    with (
        logging_redirect_tqdm(),
        tqdm(
            desc="simulating",
            unit=" sim-s",
            disable=None if show is None else not show,
            leave=False,
        ) as bar,
    ):

        def progress(t: float) -> None:
            bar.update(int(t) - bar.n)

        return simulate(cfg, progress)


def run_job(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """Validate, simulate and write one run; return its summary (written even on failure)."""
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    typed = to_config(cfg)
    try:
        result = run_simulation(typed)
    except Exception as exc:  # a failed run still leaves a record that says why
        log.exception("run failed")
        reason = f"{type(exc).__name__}: {exc}"
        result = RunResult(failed_summary(typed.seed, reason))
        result.events.append({"kind": "failure", "traceback": traceback.format_exc()})
    archive.write_run(
        run_dir,
        result.summary,
        result.timeseries if typed.output.timeseries else {},
        result.events,
        config_yaml,
        overrides,
        archive=typed.output.archive,
    )
    return result.summary


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a readable two-column table."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            for k, v in value.items():
                rows.append((f"{key}.{k}", _fmt(v)))
        else:
            rows.append((key, _fmt(value)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
