"""The runner: one job of ``spacesim run``, from a composed config to files in the run dir.

It turns the composed config into typed dataclasses (refusing bad values), runs the engine with a
progress bar on a terminal, and hands every result to the writer (``sim.archive``) as one
``RunRecord``. A run that raises still writes ``summary.json`` and ``run.h5`` with
``status = "failed"``, the reason, and a ``failure`` event holding the traceback. A run stopped by
Ctrl-C (``KeyboardInterrupt``) writes them with ``status = "interrupted"`` and the simulated time
it had reached, then raises ``KeyboardInterrupt`` again for the command line to exit with 130.

A job of a sweep that is run again into the same sweep dir is not simulated again when its
``run.h5`` is complete and was made from the same config (``completed_run``): rerunning a sweep
that was cut off runs only what is missing.
"""

from __future__ import annotations

import logging
import math
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from sim import archive, interrupt
from sim.archive.schema import STATUS_INTERRUPTED
from sim.config import Config, to_config
from sim.engine import RunResult, simulate
from sim.kernels.pipeline import REASONS
from sim.streams import NAMES as STREAM_NAMES

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
        "engine_failed": True,
        "failure_reason": reason,
    }


def run_simulation(cfg: Config, reached: list[float] | None = None) -> RunResult:
    """Run ``cfg`` with a progress bar in simulated seconds (none when not on a terminal);
    ``reached[0]``, when given, follows the simulated time (what an interrupted run got to)."""
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
            if reached is not None:
                reached[0] = t
            interrupt.check()  # a tick boundary: Ctrl-C is raised here, not inside a kernel

        with interrupt.deferred():
            return simulate(cfg, progress)


def job_config_yaml(cfg: DictConfig) -> str:
    """The resolved job config as YAML, without Hydra's own ``hydra`` node."""
    if "hydra" in cfg:
        cfg = cfg.copy()
        with open_dict(cfg):
            del cfg["hydra"]
    return OmegaConf.to_yaml(cfg, resolve=True)


def completed_run(run_dir: Path, config_sha256: str) -> dict[str, Any] | None:
    """The summary of the run in ``run_dir`` if it is finished and made from this config.

    Finished means: ``run.h5`` under its final name, readable, of the current schema, status
    ``ok`` or ``failed`` (a failure of a seeded run is deterministic: running it again would fail
    the same way), and the same config hash. Otherwise its files are removed, so that a job killed
    while it runs again can never leave the old, stale record behind under the final name, and
    ``None`` is returned. A missing ``summary.json`` is written again from the archive.
    """
    path = run_dir / archive.RUN_H5
    if not path.exists():
        return None
    try:
        record = archive.read_record(path)
    except archive.ArchiveError as exc:
        reason = str(exc)
    else:
        if record["schema_version"].split(".")[0] != archive.SCHEMA_VERSION.split(".")[0]:
            reason = f"schema {record['schema_version']}"
        elif record["status"] not in ("ok", "failed"):
            reason = f"status {record['status']}"
        elif record["config_sha256"] != config_sha256:
            reason = "the config changed"
        else:
            summary: dict[str, Any] = record["summary"]
            if not (run_dir / archive.SUMMARY_JSON).exists():
                archive.write_summary(run_dir, summary, record["status"])
            log.debug("%s: complete (%s), not run again", run_dir, record["status"])
            return summary
    log.warning("%s: running again (%s)", path, reason)
    for name in (archive.RUN_H5, archive.SUMMARY_JSON):
        (run_dir / name).unlink(missing_ok=True)
    return None


def run_job(
    cfg: DictConfig,
    run_dir: Path,
    overrides: list[str],
    *,
    job_num: int | None = None,
    command_line: str = "",
    config_yaml: str | None = None,
) -> dict[str, Any]:
    """Validate, simulate and write one run; return its summary (written even on failure).

    ``config_yaml`` is ``job_config_yaml(cfg)`` when the caller has it already."""
    if config_yaml is None:
        config_yaml = job_config_yaml(cfg)
    typed = to_config(cfg)
    reached = [0.0]
    status: str | None = None
    try:
        result = run_simulation(typed, reached)
    except KeyboardInterrupt:  # Ctrl-C: a record that says so, then the interrupt goes on
        t_s = reached[0] + typed.scenario.origin_s()  # on the scenario clock, as every event
        reason = f"interrupted (SIGINT) at t = {t_s:.0f} s"
        log.warning("run %s", reason)
        result = RunResult(failed_summary(typed.seed, reason) | {"interrupted": True})
        result.events.append({"t_s": t_s, "kind": "interrupted", "target": "run", "detail": reason})
        status = STATUS_INTERRUPTED
    except Exception as exc:  # a failed run still leaves a record that says why
        log.exception("run failed")
        reason = f"{type(exc).__name__}: {exc}"
        result = RunResult(failed_summary(typed.seed, reason))
        result.events.append(
            {
                "t_s": math.nan,
                "kind": "failure",
                "target": "run",
                "detail": traceback.format_exc(),
            }
        )
    record = archive.RunRecord(
        summary=result.summary,
        timeseries=result.timeseries if typed.output.timeseries else {},
        events=result.events,
        config_yaml=config_yaml,
        overrides=overrides,
        parameters=archive.parameters_from(cfg, overrides),
        seeds={
            "seed": typed.seed,
            "streams": list(STREAM_NAMES),
            "derivation": "SeedSequence([seed, crc32(stream name)]) per stream (sim.streams)",
        },
        job_num=job_num,
        tick_s=typed.engine.tick_s,
        command_line=command_line,
        status=status,
    )
    archive.write_run(run_dir, record, archive=typed.output.archive)
    if status == STATUS_INTERRUPTED:
        raise KeyboardInterrupt(str(run_dir))
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
