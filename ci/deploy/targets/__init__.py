"""Where releases run: ``local`` (this machine), ``ssh`` (another host), ``command`` (a platform).

:func:`make_target` builds the one an environment names; :mod:`ci.deploy.rollout`
drives it through the :class:`Target` operations. The shared parts live in
:mod:`.base`, each target in its own module.
"""

from __future__ import annotations

from collections.abc import Callable

from ci.deploy.config import DeployConfig, EnvironmentConfig
from ci.deploy.shell import Shell
from ci.deploy.targets.base import AppSettings, Target, TargetBase
from ci.deploy.targets.command import CommandTarget
from ci.deploy.targets.local import LocalTarget
from ci.deploy.targets.ssh import SshTarget

__all__ = [
    "AppSettings",
    "CommandTarget",
    "LocalTarget",
    "SshTarget",
    "Target",
    "TargetBase",
    "make_target",
]

_Build = Callable[[Shell, DeployConfig, EnvironmentConfig, AppSettings | None], Target]

# One entry per kind in ci.deploy.config.TARGETS, each built from the same values.
_KINDS: dict[str, _Build] = {
    "local": LocalTarget,
    "ssh": SshTarget,
    "command": CommandTarget,
}


def make_target(
    shell: Shell, config: DeployConfig, env: EnvironmentConfig, settings: AppSettings | None
) -> Target:
    """The target ``env`` names (its ``target``, checked with the configuration)."""
    return _KINDS[env.target](shell, config, env, settings)
