"""Hydra callbacks of ``spacesim``: merging a multirun's job files into one ``sweep.h5``.

Hydra calls ``on_multirun_end`` once, in the process that launched the sweep, after every job has
returned: ``Hydra.multirun`` (``hydra/_internal/hydra.py``, hydra-core 1.3.8) runs
``sweeper.sweep(...)`` and then ``callbacks.on_multirun_end(...)``, and the basic sweeper
(``hydra/_internal/core_plugins/basic_sweeper.py``) reads every job's ``return_value`` from what
the launcher returns before it returns itself. So it holds for every launcher, which only decides
where jobs run: the basic launcher in the parent, joblib in loky workers, submitit on SLURM nodes
(``BaseSubmititLauncher.launch`` in hydra-submitit-launcher 1.2.0 ends with
``[j.results()[0] for j in jobs]``, waiting for them), Ray in Ray workers (``launch`` in
hydra-ray-launcher 1.2.2, ``hydra_plugins/hydra_ray_launcher/_core.py``, ends with
``[ray.get(run) for run in runs]``). spacesim's own sweepers (``sim.sweep``) launch several
batches and return after the last. The parent is then the only process that writes ``sweep.h5``, the
single-writer rule of HDF5. With submitit and Ray the sweep dir must be on a file system that the
parent shares with the workers (an absolute ``hydra.sweep.dir``).

``conf/config.yaml`` registers ``MergeSweep`` under ``hydra.callbacks``. Hydra turns an exception
in a callback into a warning, so ``MergeSweep`` catches everything itself, logs it, and leaves the
outcome in ``last_report()`` for the command line to print and to set its exit status.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sim.archive.merge import MergeReport, merge_sweep
from sim.archive.schema import SWEEP_H5

log = logging.getLogger(__name__)

_reports: list[MergeReport] = []
_started: list[Path] = []


def reset() -> None:
    """Forget earlier merges (a process may run several commands, as the tests do)."""
    _reports.clear()
    _started.clear()


def started_sweep() -> Path | None:
    """The sweep dir of the last multirun this process started (``None``: none started), so
    that a sweep cut off by Ctrl-C can say where its finished runs are and how to resume it."""
    return _started[-1] if _started else None


def last_report() -> MergeReport | None:
    """The outcome of the last merge in this process (``None``: no merge ran)."""
    return _reports[-1] if _reports else None


class MergeSweep(Callback):
    """Merge the job files of a multirun into ``<hydra.sweep.dir>/sweep.h5``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _started.append(Path(str(config.hydra.sweep.dir)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        overrides = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        assert isinstance(overrides, list)
        try:
            report = merge_sweep(
                sweep_dir,
                overrides=[str(o) for o in overrides],
                command_line=" ".join([sys.argv[0], shlex.join(sys.argv[1:])]),
            )
        except Exception as exc:  # Hydra would only warn; the CLI reports it and exits 1
            log.exception("merging %s failed", sweep_dir)
            report = MergeReport(
                sweep_dir / SWEEP_H5, problems=[f"merge failed: {type(exc).__name__}: {exc}"]
            )
        _reports.append(report)
