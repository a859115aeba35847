"""Which callables a config may name: Hydra ``_target_`` values (and logging factories) checked
against an allowlist before anything runs.

Hydra calls whatever a config's ``_target_`` names (``hydra.callbacks.*``, ``hydra.sweeper``,
``hydra.launcher``), and ``logging.config.dictConfig`` calls what ``hydra.job_logging`` and
``hydra.hydra_logging`` name under ``()`` and ``class``. A config comes from the command line, a
``--config-dir`` of the user's or a resumed sweep's ``multirun.yaml``, so none of it is trusted:

- a ``_target_`` may only name a class of spacesim (a class defined in a module under ``sim.`` or
  ``hydra_plugins.spacesim_sweepers``, named by its defining module and qualified name, so that
  ``sim.cli.sys.exit`` or ``sim.hydra_app.Path.touch`` do not pass), or one of the Hydra sweepers
  and launchers spacesim runs with (``PLUGIN_TARGETS``: Hydra's basic ones, joblib, submitit
  local and SLURM, Ray);
- a logging factory (``()``) or ``class`` may only name a handler, formatter or filter class of
  ``logging`` or ``logging.handlers``, and an ``ext://`` value only ``sys.stdout``/``sys.stderr``.

Nothing outside those prefixes is imported to check it. ``override_problems`` checks the
overrides as given (every value of a sweep, dict values too), ``config_problems`` a composed
config (``sim.hydra_app`` composes it with Hydra's own config, as Hydra will); each problem is one
line naming the key and the value.
"""

from __future__ import annotations

import importlib
import logging
import logging.handlers
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)

#: modules whose classes a ``_target_`` may name
OWN_PREFIXES = ("sim", "hydra_plugins.spacesim_sweepers")

#: the Hydra plugins spacesim sweeps with: Hydra's own, and the launchers of ``conf/hydra/launcher``
#: (joblib for ``--workers``, submitit for ``slurm``, Ray for ``ray_local`` and ``ray_cluster``)
PLUGIN_TARGETS = frozenset(
    {
        "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
        "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
        "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
        "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher",
    }
)

TARGET_KEY = "_target_"
LOGGING_NODES = ("hydra.job_logging", "hydra.hydra_logging")
LOGGING_STREAMS = frozenset({"ext://sys.stdout", "ext://sys.stderr"})
_LOGGING_BASES = (logging.Handler, logging.Formatter, logging.Filter)

ALLOWED = (
    "a class of spacesim (sim.*, hydra_plugins.spacesim_sweepers.*) or one of Hydra's "
    "basic, joblib, submitit or Ray sweepers and launchers"
)
ALLOWED_LOGGING = "a handler, formatter or filter class of logging or logging.handlers"
ALLOWED_STREAM = "ext://sys.stdout or ext://sys.stderr"

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class UntrustedTarget(ValueError):
    """A config names a callable spacesim does not allow (``key``, ``value``)."""

    def __init__(self, key: str, value: Any, allowed: str = ALLOWED) -> None:
        self.key, self.value = key, value
        super().__init__(problem(key, value, allowed))


def problem(key: str, value: Any, allowed: str = ALLOWED) -> str:
    """One line naming the key, the value and what is allowed."""
    return f"refused: {key} = {value!r} names a callable; allowed: {allowed}"


def _own_class(name: str) -> bool:
    """Whether ``name`` is the defining module and qualified name of a class of spacesim."""
    if not any(name.startswith(p + ".") for p in OWN_PREFIXES):
        return False
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(module)
        except ImportError:
            continue
        except Exception:  # a module of ours that fails to import names nothing usable
            log.debug("cannot import %s", module, exc_info=True)
            return False
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return False
        defined = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
        return isinstance(obj, type) and defined == name
    return False


def allowed_target(value: Any) -> bool:
    """Whether a ``_target_`` value is on the allowlist (see the module doc)."""
    if not isinstance(value, str) or not _DOTTED.match(value):
        return False
    return value in PLUGIN_TARGETS or _own_class(value)


def allowed_logging_class(value: Any) -> bool:
    """Whether a logging ``()``/``class`` value names a stdlib handler, formatter or filter."""
    if not isinstance(value, str):
        return False
    module, _, attr = value.rpartition(".")
    owner = {"logging": logging, "logging.handlers": logging.handlers}.get(module)
    obj = getattr(owner, attr, None) if owner is not None and attr.isidentifier() else None
    return isinstance(obj, type) and issubclass(obj, _LOGGING_BASES)


def _is_target_key(key: str) -> bool:
    """``_target_``, or a dotted key ending in it (``+x._target_`` in a sweeper's params)."""
    leaf = key.lstrip("+~").split("@", 1)[0].rsplit(".", 1)[-1]
    return leaf == TARGET_KEY


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """``(full key, key, value)`` of every mapping entry under ``node`` (plain containers)."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            full = f"{path}.{k}" if path else str(k)
            yield full, k, v
            yield from _walk(v, full)
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _findings(node: Any, path: str = "") -> Iterator[tuple[str, Any, str]]:
    """``(full key, value, what is allowed)`` of every callable under ``node`` not allowed."""
    if isinstance(node, str) and _is_target_key(path) and not allowed_target(node):
        yield path, node, ALLOWED
        return
    for full, key, value in _walk(node, path):
        key = str(key)
        in_logging = full.startswith(LOGGING_NODES)
        if _is_target_key(key):
            if not allowed_target(value):
                yield full, value, ALLOWED
        elif key == "()" or (key == "class" and in_logging):
            if not allowed_logging_class(value):
                yield full, value, ALLOWED_LOGGING
        elif in_logging and isinstance(value, str) and value.startswith(("ext://", "cfg://")):
            if value not in LOGGING_STREAMS:
                yield full, value, ALLOWED_STREAM


def _allowed(value: Any, allowed: str) -> bool:
    if allowed == ALLOWED:
        return allowed_target(value)
    if allowed == ALLOWED_LOGGING:
        return allowed_logging_class(value)
    return value in LOGGING_STREAMS


def value_problems(node: Any, path: str = "") -> list[str]:
    """The problems of a plain value (an override's value, a config as containers)."""
    return [problem(k, v, a) for k, v, a in _findings(node, path)]


def config_problems(cfg: DictConfig) -> list[str]:
    """Every ``_target_`` (and logging factory) of a composed config that is not allowed.

    An interpolated value (``${oc.env:X}``) is resolved: refused unless it resolves to an
    allowed one."""
    plain = OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False)
    out = []
    for key, value, allowed in _findings(plain):
        if isinstance(value, str) and "${" in value:
            resolved = _resolved(cfg, key)
            if resolved is not None and _allowed(resolved, allowed):
                continue
        out.append(problem(key, value, allowed))
    return out


def _resolved(cfg: DictConfig, key: str) -> Any:
    try:
        value = OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception:  # an interpolation that does not resolve is refused
        return None
    return None if isinstance(value, DictConfig | ListConfig) else value


def override_problems(overrides: Sequence[str]) -> list[str]:
    """The problems of the overrides as given: a ``_target_`` key (every value of a sweep), a
    dict value holding one, a logging factory; parsed as Hydra parses them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    out: list[str] = []
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
        try:
            (parsed,) = parser.parse_overrides([text])
            values: list[Any] = list(parsed.sweep_iterator()) if parsed.is_sweep_override() else []
            if not parsed.is_sweep_override():
                values = [parsed.value()]
        except Exception:  # not an override Hydra reads: ours or Hydra's check explains it
            if _is_target_key(key) and "=" in text:
                values = [text.split("=", 1)[1]]
            else:
                continue
        for value in values:
            plain = _plain(value)
            if _is_target_key(key) and not allowed_target(plain):
                out.append(problem(key, plain))
            elif not _is_target_key(key):
                out += value_problems(plain, key)
    return list(dict.fromkeys(out))


def _plain(value: Any) -> Any:
    """A parsed override value as plain containers and strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def guarded(instantiate: Any) -> Any:
    """``instantiate`` that first refuses a config naming a callable not allowed (Hydra's
    ``hydra.utils.instantiate``, as its callbacks and plugins call it): defense in depth."""

    def wrapper(config: Any, *args: Any, **kwargs: Any) -> Any:
        target = kwargs.get(TARGET_KEY)
        if target is not None and not isinstance(target, str):
            target = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
        if target is not None and not allowed_target(target):
            raise UntrustedTarget(TARGET_KEY, target)
        plain: Any = config
        if OmegaConf.is_config(config):
            try:
                plain = OmegaConf.to_container(config, resolve=True)
            except Exception:  # an interpolation that does not resolve: check what is written
                plain = OmegaConf.to_container(config, resolve=False)
        for key, value, allowed in _findings(plain):
            raise UntrustedTarget(key, value, allowed)
        return instantiate(config, *args, **kwargs)

    wrapper.__wrapped__ = instantiate  # type: ignore[attr-defined]
    return wrapper


def install_guard() -> None:
    """Make Hydra's ``instantiate`` (callbacks, sweepers, launchers) refuse what is not allowed;
    idempotent. ``sim.hydra_app.check_overrides`` refuses these before anything runs; this guard
    covers what a check could not see."""
    import hydra.core.plugins
    import hydra.utils

    for module in (hydra.utils, hydra.core.plugins):
        current = module.instantiate
        if not hasattr(current, "__wrapped__"):
            module.instantiate = guarded(current)  # type: ignore[attr-defined]
