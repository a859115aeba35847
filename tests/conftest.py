"""Shared helpers: composing configs from ``conf/`` the way ``spacesim run`` does."""

from __future__ import annotations

from sim.config import Config
from sim.hydra_app import compose_config, compose_typed

__all__ = ["compose_config", "typed_config"]


def typed_config(overrides: list[str]) -> Config:
    """The typed, validated config of ``conf/config.yaml`` with ``overrides``."""
    return compose_typed(overrides)
