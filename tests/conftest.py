"""Shared fixtures: composing configs from ``conf/`` the way ``spacesim run`` does."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from sim.config import Config, register, to_config
from sim.hydra_app import conf_dir


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose ``conf/config.yaml`` with ``overrides`` (Hydra's compose API)."""
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def typed_config(overrides: list[str]) -> Config:
    return to_config(compose_config(overrides))


@pytest.fixture
def make_config() -> Callable[[list[str]], Config]:
    return typed_config
