"""``sim.job_config.SweepConfigLoader`` gives each job of a sweep the config Hydra composes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hydra import initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sim import job_config
from sim.config import register
from sim.hydra_app import conf_dir


@pytest.fixture
def loaders() -> Iterator[tuple[ConfigLoaderImpl, DictConfig]]:
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        assert isinstance(loader, ConfigLoaderImpl)
        master = loader.load_configuration(
            "config", overrides=["hydra.sweep.dir=/tmp/x"], run_mode=RunMode.MULTIRUN
        )
        yield loader, master
    GlobalHydra.instance().clear()


def _plain(cfg: DictConfig) -> Any:
    return OmegaConf.to_container(cfg, resolve=False)


JOBS = [
    ["seed=3"],
    ["experiment=threshold_erlang_b", "workers=5", "arrival_rate_per_s=7.25", "seed=11"],
    ["experiment=threshold_erlang_b", "workers=6", "arrival_rate_per_s=8.5", "seed=12"],
    ["admission=concurrency_cap", "platform.nodes=3", "seed=1", "hydra.job.chdir=false"],
    ["scenario.actions=[{t_s: 90, do: waiting_room, value: 50, max_wait_s: 5}]", "client=none"],
    ["+extra=1"],  # not a plain value: Hydra's own path
]


@pytest.mark.parametrize("job", JOBS, ids=[" ".join(j)[:40] for j in JOBS])
def test_the_job_config_is_the_one_hydra_composes(
    loaders: tuple[ConfigLoaderImpl, DictConfig], job: list[str]
) -> None:
    loader, master = loaders
    ours = job_config.SweepConfigLoader(loader.config_search_path)
    expected = loader.load_sweep_config(master, list(job))
    first = ours.load_sweep_config(master, list(job))  # composes (a cache miss) ...
    second = ours.load_sweep_config(master, list(job))  # ... then copies what it composed
    assert _plain(first) == _plain(expected)
    assert _plain(second) == _plain(expected)
    assert OmegaConf.is_struct(second) == OmegaConf.is_struct(expected)
    # the cached config is not the job's: changing a job's config changes no later job
    second.seed = 99
    assert ours.load_sweep_config(master, list(job)).seed == expected.seed


def test_a_value_change_reuses_the_composition(
    loaders: tuple[ConfigLoaderImpl, DictConfig],
) -> None:
    loader, master = loaders
    job_config._cache.clear()
    ours = job_config.SweepConfigLoader(loader.config_search_path)
    for seed in range(5):
        cfg = ours.load_sweep_config(master, ["experiment=bench_surge", f"seed={seed}"])
        assert cfg.seed == seed and list(cfg.hydra.overrides.task)[-1] == f"seed={seed}"
    assert len(job_config._cache) == 1
    ours.load_sweep_config(master, ["experiment=bench_dynamics", "seed=0"])
    assert len(job_config._cache) == 2


def test_a_bad_value_fails_as_in_hydra(loaders: tuple[ConfigLoaderImpl, DictConfig]) -> None:
    loader, master = loaders
    ours = job_config.SweepConfigLoader(loader.config_search_path)
    with pytest.raises(Exception) as hydra_error:
        loader.load_sweep_config(master, ["platform.no_such_key=1"])
    with pytest.raises(type(hydra_error.value)):
        ours.load_sweep_config(master, ["platform.no_such_key=1"])
