"""How ``run-1.0.0.h5`` was made (once, with the 1.0.0 writer; never run it over the frozen file).

A hand-made record that uses every feature of schema 1.0.0: nested summary dict, ``None``, NaN, a
string, a bool, every units suffix, events of several kinds (one with a key beyond the four), a
job number, parameters and seeds, five ticks of time series::

    .venv/bin/python tests/data/make_run_1_0_0.py tests/data/run-1.0.0.h5   # refuses to overwrite
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from sim.archive import RunRecord, write_run

CONFIG = """\
scenario:
  name: fixture
  expected_arrivals: 1000.0
platform:
  nodes: 4
engine:
  tick_s: 0.5
seed: 11
"""


def main(target: Path) -> None:
    if target.exists():
        sys.exit(f"{target} exists: frozen fixtures are never written again")
    t = np.arange(1, 6) * 0.5
    out = Path(tempfile.mkdtemp())
    write_run(
        out,
        RunRecord(
            summary={
                "arrivals": 950,
                "attempts": 1210,
                "joined": 900,
                "abandoned": 50,
                "rejected": {"bucket": 200, "full": 0, "queue": 60, "timeout": 50},
                "join_latency_p50_s": 0.125,
                "join_latency_p99_s": 1.75,
                "peak_concurrent": 870,
                "peak_time_s": math.nan,
                "join_rate_per_s": 40.5,
                "egress_peak_gbps": 2.25,
                "delivered_share": 0.875,
                "retry_amplification": 1.25,
                "wall_s": 0.0625,
                "seed": 11,
                "failed": False,
                "failure_reason": None,
            },
            timeseries={
                "t_s": t,
                "attempts": np.array([10, 400, 500, 250, 50], dtype=np.int64),
                "concurrent": np.array([5, 300, 870, 860, 850], dtype=np.int64),
                "join_latency_p99_s": np.array([math.nan, 0.5, 1.75, 1.0, 0.25]),
                "egress_gbps": np.array([0.0, 0.75, 2.25, 2.0, 1.5]),
            },
            events=[
                {"t_s": 1.0, "kind": "crash", "target": "node-2", "detail": "overloaded 30 s"},
                {"t_s": 2.0, "kind": "restart", "target": "node-2", "detail": ""},
                {"t_s": 2.5, "kind": "operator", "target": "room", "detail": "cap", "cap": 900},
            ],
            config_yaml=CONFIG,
            overrides=["seed=11", "platform.nodes=4", "scenario=fixture"],
            parameters={"seed": 11, "platform.nodes": 4, "scenario": "fixture"},
            seeds={"seed": 11, "streams": ["arrivals", "service"], "derivation": "fixture"},
            job_num=7,
            tick_s=0.5,
            command_line="spacesim run -m seed=11 platform.nodes=4 scenario=fixture",
        ),
    )
    shutil.copyfile(out / "run.h5", target)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
