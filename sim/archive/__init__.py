"""Run and sweep archives (HDF5): one writer, one reader, one merge; schema in docs/archive.md.

A run leaves its results through ``write_run`` (``sim.archive.writer``): ``summary.json`` and
``run.h5``, each written to a temporary name and renamed when whole. A sweep's parent merges the
job files into one ``sweep.h5`` (``sim.archive.merge``, called by the Hydra callback in
``sim.callbacks``). Everything is read back through ``sim.archive.reader`` as pandas objects,
whatever the file's schema version (0.1.0 through ``sim.archive.legacy``)::

    from sim.archive import read_summary, read_timeseries
    df = read_summary("results/sweeps/2026-12-02/10-00-00_surge/sweep.h5")

Importing this package does not import pandas (the workers of a sweep only write).
"""

from sim.archive.merge import MergeReport, merge_sweep
from sim.archive.reader import (
    Archive,
    open_archive,
    read_config,
    read_events,
    read_record,
    read_summary,
    read_timeseries,
)
from sim.archive.schema import (
    RUN_H5,
    SCHEMA_VERSION,
    STATUSES,
    SUMMARY_JSON,
    SWEEP_H5,
    ArchiveError,
    config_sha256,
    units_of,
)
from sim.archive.table import parameters_from
from sim.archive.writer import RunRecord, write_run, write_summary

__all__ = [
    "RUN_H5",
    "SCHEMA_VERSION",
    "STATUSES",
    "SUMMARY_JSON",
    "SWEEP_H5",
    "Archive",
    "ArchiveError",
    "MergeReport",
    "RunRecord",
    "config_sha256",
    "merge_sweep",
    "open_archive",
    "parameters_from",
    "read_config",
    "read_events",
    "read_record",
    "read_summary",
    "read_timeseries",
    "units_of",
    "write_run",
    "write_summary",
]
