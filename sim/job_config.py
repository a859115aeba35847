"""A job's config without composing ``conf/`` again for every job of a sweep.

Every launcher (basic, joblib, Ray, submitit) gets a job's config from
``hydra_context.config_loader.load_sweep_config(master_config, overrides)``, which composes the
whole config tree again: the defaults list, every group file, every merge. For a sweep of small
runs that is most of a job's time (about 0.35 s per job here, more than a 10^4-arrival run).

Hydra composes in two steps: first the defaults list (the config groups: ``experiment=...``,
``admission=...``), then it applies every other ``key=value`` override to the composed config
(``ConfigLoaderImpl._apply_overrides_to_config``). The jobs of a sweep share the group choices and
differ in values (``seed=3 platform.nodes=64``). ``SweepConfigLoader`` therefore composes once
per distinct set of group and ``hydra`` overrides (cached in the process: a joblib or Ray worker
keeps it from job to job), copies that config, and applies the job's value overrides with the
same Hydra function, then sets the two fields Hydra derives from the override list
(``hydra.overrides.task``, ``hydra.job.override_dirname``). The result is the config Hydra would
have composed (``tests/test_job_config.py`` compares them); any override of another kind (``+key``,
``~key``, a group, a package) takes Hydra's own path.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

_CACHE_SIZE = 16
# per process: (config name, search path, hydra overrides, group overrides) -> composed config
_cache: OrderedDict[tuple[Any, ...], DictConfig] = OrderedDict()


class SweepConfigLoader(ConfigLoaderImpl):
    """Hydra's config loader, composing once per group choice (see the module docstring)."""

    def _is_value(self, o: Override) -> bool:
        """An override that Hydra applies after composition, with nothing else to it."""
        return (
            not o.is_hydra_override()
            and o.package is None
            and not (o.is_add() or o.is_delete() or o.is_force_add())
            and not o.is_sweep_override()
            and not self.repository.group_exists(o.key_or_group)
        )

    def is_value_override(self, text: str) -> bool:
        """Whether the override ``text`` only sets a value (``seed=3``, ``platform.nodes=8``)."""
        (o,) = OverridesParser.create().parse_overrides([text])
        return self._is_value(o)

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: list[str]
    ) -> DictConfig:
        parsed = OverridesParser.create().parse_overrides(list(sweep_overrides))
        flags = [self._is_value(o) for o in parsed]
        values = [o for o, v in zip(parsed, flags, strict=True) if v]
        rest = [o for o, v in zip(parsed, flags, strict=True) if not v]
        plain = all(
            o.is_hydra_override() or self.repository.group_exists(o.key_or_group) for o in rest
        )
        if not values or not plain:
            return super().load_sweep_config(master_config, list(sweep_overrides))
        key = (
            str(master_config.hydra.job.config_name),
            tuple((e.provider, e.path) for e in self.config_search_path.get_path()),
            tuple(OmegaConf.to_container(master_config.hydra.overrides.hydra)),  # type: ignore[arg-type]
            tuple(str(o.input_line) for o in rest),
        )
        base = _cache.get(key)
        if base is None:
            # copied, not pickled: in a joblib worker Hydra's plugin scan imports the launcher's
            # config classes again, and pickle refuses a class that is not the imported one
            base = super().load_sweep_config(master_config, [str(o.input_line) for o in rest])
            _cache[key] = base
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(key)
        cfg = copy.deepcopy(base)
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        task = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [str(o.input_line) for o in task]
            dirname = cfg.hydra.job.config.override_dirname
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=task,
                kv_sep=dirname.kv_sep,
                item_sep=dirname.item_sep,
                exclude_keys=dirname.exclude_keys,
            )
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def wrap(hydra_context: Any) -> Any:
    """``hydra_context`` with its config loader replaced by a ``SweepConfigLoader`` (the same
    search path), or unchanged when its loader is not Hydra's own."""
    import dataclasses

    loader = hydra_context.config_loader
    if type(loader) is not ConfigLoaderImpl:
        return hydra_context
    return dataclasses.replace(
        hydra_context, config_loader=SweepConfigLoader(loader.config_search_path)
    )


def point_config(cfg: DictConfig, values: list[str]) -> DictConfig:
    """A copy of a job's config with the value overrides ``values`` applied, as Hydra applies
    them after composing: the config of another run of the same job (``sim.sweep.group_runs``)."""
    out = copy.deepcopy(cfg)
    ConfigLoaderImpl._apply_overrides_to_config(
        OverridesParser.create().parse_overrides(list(values)), out
    )
    return out
