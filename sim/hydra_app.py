"""The Hydra side of ``spacesim run``: where ``conf/`` is, and checking overrides before a run.

``check_overrides`` composes the config for the given overrides (every combination of a ``-m``
sweep) with Hydra's compose API and validates it, before Hydra creates any directory. Errors name
the key, the value and what is allowed. First of all it refuses a config that names a callable
spacesim does not allow (``check_targets``, ``sim.targets``): a ``_target_`` of the overrides or
of the whole composed config, Hydra's ``hydra`` node included (callbacks, sweeper, launcher,
logging), as Hydra will compose it (with the ``--config-dir`` and ``--config-name`` of the
command line when it is given).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from sim import guard, targets
from sim.config import Config, ConfigError, format_problem, register, to_config


def conf_dir() -> Path:
    """The config tree: ``sim/conf`` in an installed wheel, else ``conf/`` beside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"spacesim config tree not found beside {here}")


def _is_hydra_key(override: str) -> bool:
    key = override.lstrip("+~").split("=", 1)[0]
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def _combinations(overrides: list[str], multirun: bool) -> Iterator[list[str]]:
    own = [o for o in overrides if not _is_hydra_key(o)]
    if not multirun:
        yield own
        return
    parsed = OverridesParser.create().parse_overrides(own)
    for batch in BasicSweeper.split_arguments(parsed, None):
        yield from batch


def _group_options(group: str) -> list[str]:
    loader = GlobalHydra.instance().config_loader()
    return sorted(loader.get_group_options(group))


def _in_list(key: str, overrides: list[str]) -> tuple[str, Any]:
    """``(path, value)`` of ``key`` in the first override whose value is a list of mappings
    holding it (``scenario.actions[0].nodes``), else ``(key, "?")``."""
    for o in overrides:
        name, _, text = o.lstrip("+").partition("=")
        try:
            items = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict) and key in item:
                    return f"{name}[{i}].{key}", item[key]
    return key, "?"


def _explain(exc: Exception, overrides: list[str]) -> list[str]:
    """Turn a Hydra/OmegaConf composition error into messages naming key, value and allowed."""
    if isinstance(exc, MissingConfigException):
        m = re.search(r"Could not find '([^']+)/([^'/]+)'", str(exc))
        if m:
            group, option = m.group(1), m.group(2)
            allowed = ", ".join(_group_options(group)) or "(none)"
            return [format_problem(group, option, f"one of {allowed}")]
    m = re.search(r"Config group override must be a string or a list\. Got (\w+)", str(exc))
    if m:  # admission=false, client=null, placement=1: YAML made the option something else
        for o in overrides:
            group, _, option = o.lstrip("+~").partition("=")
            options = _group_options(group) if "." not in group else []
            if options and option not in options:
                return [format_problem(group, option, f"one of {', '.join(options)}")]
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None) or "?"
        value: Any = next(
            (o.split("=", 1)[1] for o in overrides if o.lstrip("+").split("=", 1)[0] == key),
            "?",
        )
        if value == "?":  # a key inside a list of records (scenario.actions=[{...}])
            key, value = _in_list(key, overrides)
        first = str(cause).splitlines()[0]
        target = re.search(r"converted to (\w+)", first)
        allowed = f"a value of type {target.group(1)}" if target else first
        if "is not Optional" in first:
            allowed = "a value (not null)"
        owner = getattr(cause, "object_type", None)
        unknown_key = isinstance(cause, ConfigKeyError | ConfigAttributeError)
        if unknown_key and isinstance(owner, type) and dataclasses.is_dataclass(owner):
            keys = ", ".join(f.name for f in dataclasses.fields(owner))
            allowed = f"a key of {owner.__name__}: {keys}"
        return [format_problem(key, value, allowed)]
    return [f"invalid config: {str(exc).strip()}"]


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose ``conf/`` with ``overrides``: the untyped config, as Hydra hands it to a job."""
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def compose_typed(overrides: list[str]) -> Config:
    """Compose ``conf/`` with ``overrides`` and return the typed, validated config."""
    return to_config(compose_config(overrides))


def _sweeper_jobs(overrides: list[str]) -> list[list[str]] | None:
    """The jobs of a multirun whose sweeper is one of ours and plans more than the grid (a
    design, replications, a threshold search's bracket), or ``None`` (the grid is all).

    Raises ``ValueError`` naming the sweeper's bad settings."""
    from sim import sweep

    first = next(iter(_combinations(overrides, True)), [])
    hydra_keys = [o for o in overrides if _is_hydra_key(o)]
    try:
        cfg = compose(
            config_name="config", overrides=[*first, *hydra_keys], return_hydra_config=True
        )
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise ValueError("\n".join(_explain(exc, overrides))) from exc
    node = cfg.hydra.sweeper
    target = str(node.get("_target_", ""))
    own = [o for o in overrides if not _is_hydra_key(o)]
    container = OmegaConf.to_container(node, resolve=True)
    assert isinstance(container, dict)
    settings = {str(k): v for k, v in container.items()}
    if target.endswith(".DesignSweeper"):
        jobs = sweep.plan_design(own, settings, int(cfg.get("seed", 0)))
        if settings.get("design", "grid") == "grid" and settings.get("replications", 1) == 1:
            return None  # the grid itself
        # replications differ in their seed only (seed + r): check the first and the last
        seen: dict[str, list[list[str]]] = {}
        for job in jobs:
            seen.setdefault(" ".join(o for o in job if not o.startswith("seed=")), []).append(job)
        return [j for group in seen.values() for j in (group[:1] + group[1:][-1:])]
    if target.endswith(".ThresholdSweeper"):
        sweep.search_spec(settings)
        parameter = str(settings["parameter"])
        cells = sweep.grid_cells(own, settings.get("params") or {})
        jobs = []
        for c in cells:  # each cell's bracket: its settings may refer to a swept value
            rest = [o for o in c if not o.startswith(parameter + "=")]
            try:
                cell = compose(
                    config_name="config", overrides=[*rest, *hydra_keys], return_hydra_config=True
                )
                spec = sweep.search_spec(sweep.cell_settings(cell, parameter))
            except (HydraException, OmegaConfBaseException) as exc:
                raise ValueError("\n".join(_explain(exc, overrides))) from exc
            jobs += [[*rest, f"{parameter}={sweep._format_x(x, spec)}"] for x in (spec.lo, spec.hi)]
        return jobs
    if target.endswith(".CalibrationSweeper"):
        return calibration_jobs(cfg, own, settings)
    return None


def calibration_jobs(cfg: DictConfig, own: list[str], settings: dict[str, Any]) -> list[list[str]]:
    """The corners of a calibration's box (every parameter at ``lo``, then at ``hi``), whose
    configs are checked before anything runs; ``ValueError`` for bad settings or no event."""
    from sim import calibration, observations

    spec = calibration.spec_of(settings)
    event = cfg.scenario.get("event")
    if event is None:
        known = ", ".join(observations.events())
        raise ValueError(
            f"scenario.event = None; allowed: an event whose data points the calibration fits"
            f" ({known}, or a .csv file): choose a replay scenario (scenario=trump_2024)"
        )
    corners = []
    for end in ("lo", "hi"):
        point = {p.name: p.from_unit(0.0 if end == "lo" else 1.0) for p in spec.parameters}
        corners.append([*own, *calibration.point_overrides(point)])
    return corners


def sweeper_overrides(overrides: list[str]) -> list[str]:
    """``["hydra/sweeper=design"]`` when these overrides would sweep with Hydra's basic sweeper
    (nothing chose a sweeper), else ``[]``: spacesim's design sweeper is the default."""
    if any(o.lstrip("+~").startswith("hydra/sweeper=") for o in overrides):
        return []
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            first = next(iter(_combinations(overrides, True)), [])
            # the sweeper's own settings (hydra.sweeper.runs_per_job=4) are not the basic one's
            hydra_keys = [
                o
                for o in overrides
                if _is_hydra_key(o) and not o.lstrip("+~").startswith("hydra.sweeper.")
            ]
            cfg = compose(
                config_name="config", overrides=[*first, *hydra_keys], return_hydra_config=True
            )
    except (HydraException, OmegaConfBaseException, ValueError):
        return []  # check_overrides explains it
    finally:
        GlobalHydra.instance().clear()
    target = str(cfg.hydra.sweeper.get("_target_", ""))
    return ["hydra/sweeper=design"] if target.endswith(".BasicSweeper") else []


def _plain_seed(combo: list[str]) -> bool:
    """Whether the combination's ``seed=`` override (if any) is an allowed seed."""
    for o in combo:
        if o.startswith("seed="):
            text = o.split("=", 1)[1]
            return text.isdigit() and int(text) < 2**63
    return True


_CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
_CONFIG_NAME_FLAGS = ("--config-name", "-cn")


def _flag_value(argv: Sequence[str], names: tuple[str, ...]) -> str | None:
    """The value of the last ``--flag VALUE`` / ``--flag=VALUE`` of ``names`` in ``argv``."""
    value = None
    for i, a in enumerate(argv):
        if a in names and i + 1 < len(argv):
            value = argv[i + 1]
        elif "=" in a and a.split("=", 1)[0] in names:
            value = a.split("=", 1)[1]
    return value


@contextlib.contextmanager
def _hydra_search_path(config_dir: str | None) -> Iterator[None]:
    """Hydra initialised as ``spacesim run`` initialises it: ``conf/``, and a ``--config-dir``
    first (as Hydra prepends it)."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.version import setbase

    GlobalHydra.instance().clear()
    setbase("1.3")
    csp = create_config_search_path(search_path_dir=str(conf_dir()))
    if config_dir is not None:
        csp.prepend(
            provider="command-line",
            path=f"file://{os.path.abspath(config_dir)}",
            anchor=SearchPathQuery(provider="schema"),
        )
    Hydra.create_main_hydra2(task_name="spacesim", config_search_path=csp)
    try:
        yield
    finally:
        GlobalHydra.instance().clear()


def _group_choices(combo: list[str]) -> tuple[str, ...]:
    """What of a job's overrides can bring new config nodes: group choices and mappings."""
    return tuple(o for o in combo if "." not in o.split("=", 1)[0] or "{" in o)


def check_targets(
    overrides: list[str], multirun: bool = False, argv: Sequence[str] = ()
) -> list[str]:
    """The callables these overrides and the configs they compose name that are not allowed
    (``sim.targets``): the overrides as given (every value of a sweep), then the whole config
    Hydra will run with (its own ``hydra`` node: callbacks, sweeper, launcher, logging), composed
    as ``spacesim run`` composes it, with the ``--config-dir`` and ``--config-name`` of ``argv``,
    for every distinct choice of config groups of a ``-m`` grid. Nothing is instantiated."""
    found = targets.override_problems(overrides)
    if found:
        return found
    config_dir = _flag_value(argv, _CONFIG_DIR_FLAGS)
    config_name = _flag_value(argv, _CONFIG_NAME_FLAGS) or "config"
    if config_dir is not None and not os.path.isdir(config_dir):
        return []  # Hydra refuses it before it composes anything
    register()
    hydra_keys = [o for o in overrides if _is_hydra_key(o)]
    checked: set[tuple[str, ...]] = set()
    with _hydra_search_path(config_dir):
        try:
            combos = list(_combinations(overrides, multirun))
        except HydraException:
            return []  # check_overrides explains it
        for combo in combos:
            key = _group_choices(combo)
            if key in checked:
                continue
            checked.add(key)
            try:
                cfg = compose(
                    config_name=config_name,
                    overrides=[*combo, *hydra_keys],
                    return_hydra_config=True,
                )
            except (HydraException, OmegaConfBaseException, ValueError):
                continue  # check_overrides explains it (and Hydra refuses it)
            found = targets.config_problems(cfg)
            if found:
                return found
    return []


def _field_type(key: str) -> Any:
    """The declared type of a dotted key of ``Config`` (``platform.fanout.enabled``), or None."""
    import typing

    node: Any = Config
    for part in key.split("."):
        if not (isinstance(node, type) and dataclasses.is_dataclass(node)):
            return None
        hints = typing.get_type_hints(node)
        if part not in hints:
            return None
        node = hints[part]
    return node


def _bool_problems(overrides: Sequence[str]) -> list[str]:
    """A bool key given anything but true or false (OmegaConf would take ``5`` for true)."""
    out = []
    for o in overrides:
        key, eq, text = o.lstrip("+~").partition("=")
        if not eq or "," in text or "(" in text:  # a sweep's values are checked job by job
            continue
        if _field_type(key) is bool and text.strip().lower() not in ("true", "false"):
            out.append(format_problem(key, text, "a bool: true or false"))
    return out


def check_overrides(
    overrides: list[str], multirun: bool = False, argv: Sequence[str] = ()
) -> list[str]:
    """Every problem of the configs these overrides make (empty when all can run).

    First the callables they name (``check_targets``: a ``_target_`` that is not one of
    spacesim's classes or the Hydra plugins it runs with is refused). Then a multirun is checked
    job by job before anything runs: every combination of its grid, and with one of spacesim's
    sweepers (``sim.sweep``) every point of its design or the bracket of its threshold search,
    and the sweeper's own settings. Each config that is valid then passes the resource guard
    (``sim.guard``: its estimated peak memory must fit in the memory available, unless
    ``engine.guard=false``). ``argv``: the arguments of ``spacesim run``, for their
    ``--config-dir`` and ``--config-name``.
    """
    untrusted = check_targets(overrides, multirun, argv)
    if untrusted:
        return untrusted
    not_bools = _bool_problems(overrides)
    if not_bools:
        return not_bools
    register()
    messages: list[str] = []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            try:
                combos = list(_combinations(overrides, multirun))
                planned = _sweeper_jobs(overrides) if multirun else None
            except HydraException as exc:
                return [f"invalid override: {exc}"]
            except ValueError as exc:
                return str(exc).splitlines()
            if planned is not None:
                combos = planned
            checked: set[tuple[str, ...]] = set()
            for combo in combos:
                rest = tuple(o for o in combo if not o.startswith("seed="))
                if rest in checked and _plain_seed(combo):
                    continue  # the same config but for a valid seed (seed=range(0,200))
                checked.add(rest)
                try:
                    cfg = compose(config_name="config", overrides=combo)
                    typed = to_config(cfg)
                except ConfigError as exc:
                    messages += [str(exc)] if not exc.problems else str(exc).splitlines()
                except (HydraException, OmegaConfBaseException, ValueError) as exc:
                    messages += _explain(exc, combo)
                else:  # the resource guard: a run that would not fit in memory (sim.guard)
                    messages += guard.problems(typed)
                if messages:
                    break
    finally:
        GlobalHydra.instance().clear()
    return list(dict.fromkeys(messages))


def dry_run(overrides: list[str], multirun: bool = False) -> list[tuple[list[str], str, Config]]:
    """``(overrides, resolved YAML, typed config)`` of every job ``spacesim run`` would run with
    these overrides (checked by ``check_overrides`` first): the jobs it checks, a multirun's grid
    or its sweeper's points. Nothing runs, nothing is written."""
    register()
    jobs: list[tuple[list[str], str, Config]] = []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            combos = list(_combinations(overrides, multirun))
            planned = _sweeper_jobs(overrides) if multirun else None
            for combo in combos if planned is None else planned:
                cfg = compose(config_name="config", overrides=combo)
                typed = to_config(cfg)
                jobs.append((combo, OmegaConf.to_yaml(cfg, resolve=True), typed))
    finally:
        GlobalHydra.instance().clear()
    return jobs
