"""``INVOKE_DEPLOY_*`` variables, read again by us and parsed by each setting's kind.

Invoke's environment layer casts a variable by the type of the value a lower layer
already holds: ``false`` becomes ``True`` over a boolean, any value over a list
raises ``UncastableEnvVar``, ``12.5`` over an integer raises ``ValueError``, and a
setting no layer mentions (an environment's ``command``, say) is not read at all.
So :func:`apply` reads every ``INVOKE_DEPLOY_*`` variable itself, against the
settings the deploy knows (:data:`~ci.deploy.config.DEFAULTS`, and
:data:`~ci.deploy.config.ENVIRONMENT_DEFAULTS` under every environment the
configuration names), parses it by the setting's kind, and puts the result over
what Invoke made of it. The layers Invoke ranks above its environment layer (an
``invoke -f`` file, its own flags, changes made at run time) still win, as they
do in Invoke.

What cannot be repaired here: Invoke's executor loads the environment layer before
any task runs, so where a configuration layer holds a list (a YAML list in
``invoke.yaml`` or a ``-f`` file, or a list default) and the matching variable is
set, or a variable's text does not fit a number a layer holds (``12.5`` over
``60``), Invoke raises first. Lists are therefore written as strings in
configuration files (``engine_args: --storage-driver vfs``), which the
configuration splits like a shell would, and numbers that may be fractional as
floats (``health_timeout: 60.0``).
"""

from __future__ import annotations

import copy
import difflib
import enum
import json
import math
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from invoke.config import Config

from ci.deploy.config import DEFAULTS, ENVIRONMENT_DEFAULTS
from ci.deploy.errors import DeployConfigError

PREFIX = "INVOKE_DEPLOY_"

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_NULL = ("", "null", "~")


class Kind(enum.Enum):
    """How a variable's text becomes a setting's value."""

    BOOL = "true or false"
    INT = "a whole number"
    FLOAT = "a number"
    LIST = "a list"
    STR = "text"


@dataclass(frozen=True)
class Setting:
    """One setting a variable may override: its path under ``deploy`` and its kind."""

    path: tuple[str, ...]
    kind: Kind
    nullable: bool

    @property
    def variable(self) -> str:
        # Invoke's own naming (invoke/env.py): the key path joined by "_", upper-cased.
        return PREFIX + "_".join(self.path).upper()

    @property
    def dotted(self) -> str:
        return "deploy." + ".".join(self.path)


# Kinds a default's type does not tell: None stands for "unset", an int for a number.
_DECLARED: dict[tuple[str, ...], tuple[Kind, bool]] = {
    ("project",): (Kind.STR, True),
    ("image", "engine_args"): (Kind.LIST, True),
}
_ENVIRONMENT_DECLARED: dict[str, tuple[Kind, bool]] = {
    "port": (Kind.INT, True),
    "health_timeout": (Kind.FLOAT, False),
    "command": (Kind.LIST, True),
}


def apply(
    settings: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    shadowed: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """``settings`` with every ``INVOKE_DEPLOY_*`` variable of ``environ`` parsed and set.

    ``settings`` is Invoke's merged ``deploy`` table as plain dicts; it is not
    changed. A setting found in one of the ``shadowed`` tables (see
    :func:`above_environment`) keeps its value. Every problem (an unknown variable,
    a value that does not fit its setting) is reported in one
    :class:`~ci.deploy.errors.DeployConfigError`.
    """
    known = known_settings(settings)
    layers = list(shadowed)
    result = copy.deepcopy(dict(settings))
    problems: list[str] = []
    for name in sorted(environ):
        if not name.startswith(PREFIX):
            continue
        found = known.get(name, [])
        if not found:
            problems.append(_unknown(name, known, settings))
            continue
        if len(found) > 1:
            paths = " and ".join(setting.dotted for setting in found)
            problems.append(f"{name} is ambiguous: it names both {paths}")
            continue
        setting = found[0]
        try:
            value = parse(setting, environ[name])
        except ValueError as error:
            problems.append(f"{name}={environ[name]!r}: {error}")
            continue
        if not any(_holds(layer, setting.path) for layer in layers):
            _put(result, setting.path, value)
    if problems:
        raise DeployConfigError("; ".join(problems))
    return result


def above_environment(config: Config) -> list[Mapping[str, Any]]:
    """The ``deploy`` tables of the layers Invoke ranks above its ``INVOKE_*`` layer.

    Invoke merges defaults < collection < files < environment < ``-f`` file <
    overrides (its flags) < modifications (``c.config.x = ...``). It has no public
    accessor for one layer, so this reads the three it keeps as attributes; were
    they renamed, the variables would simply win over them.
    """
    tables: list[Mapping[str, Any]] = []
    for attribute in ("_runtime", "_overrides", "_modifications"):
        layer = getattr(config, attribute, None)
        deploy = layer.get("deploy") if isinstance(layer, Mapping) else None
        if isinstance(deploy, Mapping):
            tables.append(deploy)
    return tables


def known_settings(settings: Mapping[str, Any]) -> dict[str, list[Setting]]:
    """Every setting a variable may name, by variable name.

    The deploy's own settings, each environment's settings for every environment
    ``settings`` names (a variable cannot create one), and any other value the
    configuration holds, as Invoke would read it.
    """
    by_path: dict[tuple[str, ...], Setting] = {}
    for path, value in _leaves(settings):
        by_path[path] = _setting(path, value, _DECLARED.get(path))
    for path, value in _leaves(DEFAULTS):
        by_path[path] = _setting(path, value, _DECLARED.get(path))
    by_path[("project",)] = _setting(("project",), None, _DECLARED[("project",)])
    for environment in _environment_names(settings):
        for key, value in ENVIRONMENT_DEFAULTS.items():
            path = ("environments", environment, key)
            by_path[path] = _setting(path, value, _ENVIRONMENT_DECLARED.get(key))
    known: dict[str, list[Setting]] = {}
    for setting in by_path.values():
        known.setdefault(setting.variable, []).append(setting)
    return known


def parse(setting: Setting, text: str) -> Any:
    """The value ``text`` stands for as ``setting``; :class:`ValueError` saying what fits."""
    stripped = text.strip()
    if setting.nullable and stripped.lower() in _NULL:
        return None
    if setting.kind is Kind.BOOL:
        return _bool(setting, stripped)
    if setting.kind is Kind.INT:
        try:
            return int(stripped)
        except ValueError:
            raise ValueError(f"{setting.dotted} is {Kind.INT.value}") from None
    if setting.kind is Kind.FLOAT:
        return _float(setting, stripped)
    if setting.kind is Kind.LIST:
        return parse_list(text)
    return text


def parse_list(text: str) -> list[str]:
    """A list from ``["a b", "c"]`` (JSON), ``[a, b]`` (YAML's flow style) or ``a 'b c'``.

    The flow style strips the spaces around each item; an item that keeps some
    is written in JSON. Anything else is split as a POSIX shell would.
    """
    stripped = text.strip()
    try:
        if stripped.startswith("[") and stripped.endswith("]"):
            return _bracketed(stripped)
        return shlex.split(text)
    except ValueError as error:
        raise ValueError(
            f"not a list ({error}); write [a, b], a JSON list, or words quoted as in a shell"
        ) from None


def _bracketed(text: str) -> list[str]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        lexer = shlex.shlex(text[1:-1], posix=True)
        lexer.whitespace, lexer.whitespace_split, lexer.commenters = ",", True, ""
        return [item.strip() for item in lexer if item.strip()]
    if not isinstance(items, list) or not all(
        isinstance(item, str | int | float) and not isinstance(item, bool) for item in items
    ):
        raise ValueError("a JSON list here holds only strings and numbers")
    return [str(item) for item in items]


def _bool(setting: Setting, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"{setting.dotted} is {Kind.BOOL.value} (or yes/no, on/off, 1/0)")


def _float(setting: Setting, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{setting.dotted} is {Kind.FLOAT.value}, such as 60 or 12.5")
    return number


def _setting(path: tuple[str, ...], default: Any, declared: tuple[Kind, bool] | None) -> Setting:
    if declared is not None:
        return Setting(path, *declared)
    if isinstance(default, bool):
        kind = Kind.BOOL
    elif isinstance(default, int):
        kind = Kind.INT
    elif isinstance(default, float):
        kind = Kind.FLOAT
    elif isinstance(default, list | tuple):
        kind = Kind.LIST
    else:
        kind = Kind.STR
    return Setting(path, kind, nullable=default is None)


def _unknown(name: str, known: Mapping[str, list[Setting]], settings: Mapping[str, Any]) -> str:
    message = f"{name} names no deploy setting"
    near = difflib.get_close_matches(name, list(known), n=2, cutoff=0.8)
    if near:
        message += f" (did you mean {' or '.join(near)}?)"
    environments = _environment_names(settings)
    section = PREFIX + "ENVIRONMENTS_"
    if name.startswith(section) and not any(
        name.startswith(section + environment.upper() + "_") for environment in environments
    ):
        message += (
            ": a variable only changes an environment declared under deploy.environments"
            f" in invoke.yaml ({', '.join(sorted(environments)) or 'none is'})"
        )
    return message


def _environment_names(settings: Mapping[str, Any]) -> list[str]:
    environments = settings.get("environments")
    return [str(name) for name in environments] if isinstance(environments, Mapping) else []


def _leaves(
    table: Mapping[str, Any], above: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in table.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*above, str(key)))
        else:
            yield (*above, str(key)), value


def _holds(table: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = table
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _put(table: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = table
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value
