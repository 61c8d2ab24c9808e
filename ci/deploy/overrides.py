"""``INVOKE_DEPLOY_*`` variables: the setting each names, its text put where that setting is.

Invoke reads its ``INVOKE_*`` variables itself, casting each by the type of the value a
lower layer holds: ``false`` becomes ``True`` over a boolean, and a setting no layer
mentions (an environment's ``command``, say) is not read at all. So the deploy reads
every ``INVOKE_DEPLOY_*`` variable again, against the settings its model declares
(:func:`ci.deploy.config.load_deploy_config` passes their paths), and puts the text
over what Invoke made of it, for the model to parse like any other value. The layers
Invoke ranks above its environment layer (an ``invoke -f`` file, its own flags,
changes made at run time) still win, as they do in Invoke.

What cannot be repaired here: Invoke loads its environment layer before any task
runs, so a variable over a list a configuration file holds raises
``UncastableEnvVar``, and one whose text is no number over a number a file holds
(``http`` over ``port: 8801``) raises ``ValueError``, both in Invoke. Files therefore
write lists as strings (``engine_args: --storage-driver vfs``), and the deploy's own
defaults live in its model, not in Invoke's configuration.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from invoke.config import Config

PREFIX = "INVOKE_DEPLOY_"

# A variable cannot hold YAML's null: these texts stand for it (and so does nothing).
_NULL = ("null", "~")

SettingPath = tuple[str, ...]


@dataclass(frozen=True)
class Read:
    """The settings with the variables' text in place, which variable set what, and what
    could not be read (an unknown or ambiguous name)."""

    settings: dict[str, Any]
    sources: dict[SettingPath, str]
    problems: list[str]


def variable(path: SettingPath) -> str:
    """Invoke's name for a setting (invoke/env.py): its path joined by ``_``, upper-cased."""
    return PREFIX + "_".join(path).upper()


def read(
    settings: Mapping[str, Any],
    environ: Mapping[str, str],
    paths: Iterable[SettingPath],
    *,
    shadowed: Iterable[Mapping[str, Any]] = (),
) -> Read:
    """``settings`` (not changed) with each ``INVOKE_DEPLOY_*`` variable's text at its path.

    ``paths`` are the settings a variable may name. A setting one of the ``shadowed``
    tables holds (see :func:`above_environment`) keeps its value. Text is stripped;
    ``null`` and ``~`` become None.
    """
    by_name: dict[str, list[SettingPath]] = {}
    for path in paths:
        by_name.setdefault(variable(path), []).append(path)
    layers = list(shadowed)
    result = Read(copy.deepcopy(dict(settings)), {}, [])
    for name in sorted(environ):
        if not name.startswith(PREFIX):
            continue
        found = by_name.get(name, [])
        if len(found) != 1:
            result.problems.append(
                _ambiguous(name, found) if found else _unknown(name, list(by_name), settings)
            )
            continue
        path = found[0]
        if not any(_holds(layer, path) for layer in layers):
            text = environ[name].strip()
            _put(result.settings, path, None if text.lower() in _NULL else text)
            result.sources[path] = name
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


def environment_names(settings: Mapping[str, Any]) -> list[str]:
    """The environments the settings declare: a variable changes one, never makes one."""
    environments = settings.get("environments")
    return [str(name) for name in environments] if isinstance(environments, Mapping) else []


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X or Y?)`` for the nearest of ``known``, or nothing."""
    near = difflib.get_close_matches(name, list(known), n=2, cutoff=0.8)
    return f" (did you mean {' or '.join(near)}?)" if near else ""


def _unknown(name: str, known: list[str], settings: Mapping[str, Any]) -> str:
    message = f"{name} names no deploy setting{did_you_mean(name, known)}"
    environments = environment_names(settings)
    section = PREFIX + "ENVIRONMENTS_"
    if name.startswith(section) and not any(
        name.startswith(section + environment.upper() + "_") for environment in environments
    ):
        message += (
            ": a variable only changes an environment declared under deploy.environments"
            f" in invoke.yaml ({', '.join(sorted(environments)) or 'none is'})"
        )
    return message


def _ambiguous(name: str, paths: list[SettingPath]) -> str:
    named = " and ".join("deploy." + ".".join(path) for path in paths)
    return f"{name} is ambiguous: it names both {named}"


def _holds(table: Mapping[str, Any], path: SettingPath) -> bool:
    node: Any = table
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _put(table: dict[str, Any], path: SettingPath, value: Any) -> None:
    node = table
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value
