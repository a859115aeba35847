"""Sweeps through the cluster launchers: Ray and SLURM give the table that joblib gives.

``spacesim sweep`` runs the same 4 jobs through joblib (two local workers), through the Ray
launcher connected to a Ray cluster that the test starts itself, and through the submitit
launcher on the SLURM cluster of this machine (``.ci/run`` starts a one-node one). The merged
``sweep.h5`` of each (merged in the parent, ``sim/callbacks.py``) must hold the same summary
table, but for the wall time. These tests never skip: without Ray or SLURM they fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from sim.archive import read_summary
from sim.config import register
from sim.hydra_app import conf_dir

BIN = Path(sys.executable).parent
SWEEP = [
    "experiment=bench_surge",
    "scenario.expected_arrivals=2000",
    "platform.nodes=4",
    "seed=1,2,3,4",
]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
# columns that differ between launchers and machines, not between simulations: wall-clock times
# (wall_s, ...) and where and when a run was made (the summary holds none of these today)
NOT_SIMULATION = {"host", "pid", "provenance", "created", "python_executable"}


def spacesim(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``spacesim`` as a user does; its stdout, after checking that it succeeded."""
    out = subprocess.run(
        [str(BIN / "spacesim"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=(env or dict(os.environ)) | {"HYDRA_FULL_ERROR": "1"},
        check=False,
    )
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return out.stdout


def sweep(sweep_dir: Path, *launcher: str, env: dict[str, str] | None = None) -> pd.DataFrame:
    """The 4-job sweep into ``sweep_dir`` (absolute) through ``launcher``: its summary table."""
    assert sweep_dir.is_absolute()
    out = spacesim(
        "sweep", *SWEEP, *launcher, f"hydra.sweep.dir={sweep_dir}", cwd=sweep_dir.parent, env=env
    )
    assert f"sweep archive: {sweep_dir / 'sweep.h5'} (4 runs, 0 not ok)" in out
    table = read_summary(sweep_dir / "sweep.h5")
    assert table["run"].tolist() == [0, 1, 2, 3]
    assert table["seed"].tolist() == [1, 2, 3, 4]
    assert (table["status"] == "ok").all()
    return simulation_columns(table)


def simulation_columns(table: pd.DataFrame) -> pd.DataFrame:
    other = [
        c
        for c in table.columns
        if c.startswith("wall") or c.endswith("wall_s") or c.split(".")[0] in NOT_SIMULATION
    ]
    kept = table.drop(columns=other)
    assert {"arrivals", "attempts", "joined", "join_latency_p99_s"} <= set(kept.columns)
    return kept


@pytest.fixture(scope="module")
def joblib_table(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return sweep(tmp_path_factory.mktemp("joblib") / "sweep", *JOBLIB)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RayCluster:
    address: str
    env: dict[str, str]  # what a driver needs to connect (the cluster's auth token)


@pytest.fixture
def ray_cluster() -> Iterator[RayCluster]:
    """A one-node Ray cluster (2 CPUs) of its own: its own ports, temp dir and auth token.

    ``ray start --block`` stays in the foreground and stops every process it started when it is
    terminated, so the cluster is stopped by its process id. (``ray stop`` would stop every Ray
    process on the machine, other people's too.)
    """
    port = free_port()
    # short: Ray's unix sockets live under it (at most 107 bytes a path)
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    env = dict(os.environ) | {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    log = temp_dir / "ray-start.log"
    cmd = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--object-store-memory=100000000",
        "--include-dashboard=false",
        f"--dashboard-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text():
            assert proc.poll() is None, f"ray start exited {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"ray start timed out:\n{log.read_text()}"
            time.sleep(0.2)
        yield RayCluster(f"127.0.0.1:{port}", env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:  # anything of this cluster that outlived it (its own process group)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(temp_dir, ignore_errors=True)


def launcher_config(*overrides: str) -> DictConfig:
    """``hydra.launcher`` as ``spacesim sweep`` composes it with ``overrides``."""
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert isinstance(launcher, DictConfig)
    return launcher


def test_the_cluster_launchers_compose() -> None:
    ray = launcher_config("hydra/launcher=ray")
    assert ray._target_.endswith("RayLauncher") and ray.ray.init.address is None
    for name in ("ray_local", "ray_cluster"):
        own = launcher_config(f"hydra/launcher={name}")
        assert own._target_ == ray._target_
        assert own.ray.remote.num_cpus == 1
        assert own.ray.remote.runtime_env.env_vars.NUMBA_NUM_THREADS == "1"
    cluster = launcher_config("hydra/launcher=ray_cluster").ray.init
    assert cluster.address == "auto" and "object_store_memory" in cluster
    assert cluster.object_store_memory is None
    slurm = launcher_config(
        "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=4", "hydra.sweep.dir=/shared/s"
    )
    assert slurm._target_.endswith("SlurmLauncher")
    assert slurm.submitit_folder == "/shared/s/.submitit/%j"
    assert slurm.setup == ["export NUMBA_NUM_THREADS=4"]
    assert slurm.tasks_per_node == 1 and slurm.timeout_min > 0 and slurm.mem_gb > 0


@pytest.mark.ray
def test_a_sweep_on_a_ray_cluster_gives_the_joblib_table(
    joblib_table: pd.DataFrame, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    ray_table = sweep(
        tmp_path / "ray",
        "hydra/launcher=ray_cluster",
        f"hydra.launcher.ray.init.address={ray_cluster.address}",
        env=ray_cluster.env,
    )
    pd.testing.assert_frame_equal(ray_table, joblib_table, check_exact=True)


def slurm_is_up() -> str:
    """The partitions and node states of the SLURM cluster this machine submits to."""
    sinfo = shutil.which("sinfo")
    assert sinfo, "no SLURM here (sinfo not found): .ci/run starts a one-node cluster as root"
    try:
        out = subprocess.run(
            [sinfo, "--noheader", "--format=%P %T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the SLURM cluster does not answer (sinfo timed out; .ci/run starts one)")
    assert out.returncode == 0, f"the SLURM cluster is not up (.ci/run starts one): {out.stderr}"
    states = out.stdout.split()[1::2]
    assert {"idle", "mixed", "allocated", "completing"} & set(states), f"no node up: {out.stdout}"
    return out.stdout


@pytest.mark.slurm
def test_a_sweep_on_slurm_gives_the_joblib_table(
    joblib_table: pd.DataFrame, tmp_path: Path
) -> None:
    slurm_is_up()
    slurm_table = sweep(
        tmp_path / "slurm",
        "hydra/launcher=slurm",
        "hydra.launcher.timeout_min=10",
        "hydra.launcher.mem_gb=1",
    )
    pd.testing.assert_frame_equal(slurm_table, joblib_table, check_exact=True)
    scripts = list((tmp_path / "slurm" / ".submitit").glob("*/*_submission.sh"))
    assert len(scripts) == 1  # one job array
    script = scripts[0].read_text()
    assert "#SBATCH --array=0-3%" in script and "#SBATCH --cpus-per-task=1" in script
    assert "export NUMBA_NUM_THREADS=1" in script
