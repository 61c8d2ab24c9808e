"""ci.deploy.targets: every kind of target is built the one way, from the same values."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke.context import MockContext

from ci.deploy.config import TARGETS, load_deploy_config
from ci.deploy.plan import Masker
from ci.deploy.shell import Shell
from ci.deploy.targets import CommandTarget, LocalTarget, SshTarget, TargetBase, make_target

_ENVIRONMENTS = {
    "local": {"target": "local", "port": 8000},
    "ssh": {"target": "ssh", "port": 8000, "ssh_host": "deploy.invalid", "remote_path": "/srv"},
    "command": {"target": "command", "port": 8000, "command": ["rollout", "{image}"]},
}


@pytest.mark.parametrize("kind", TARGETS)
def test_every_configured_kind_is_built_from_the_same_values(tmp_path: Path, kind: str) -> None:
    config = load_deploy_config({"environments": {"staging": _ENVIRONMENTS[kind]}}, {}, tmp_path)
    env = config.environment("staging")
    shell = Shell(MockContext(), Masker(), lambda _: None)

    target = make_target(shell, config, env, None)

    expected = {"local": LocalTarget, "ssh": SshTarget, "command": CommandTarget}[kind]
    assert type(target) is expected
    assert isinstance(target, TargetBase)
    assert (target.shell, target.config, target.env) == (shell, config, env)
    # Built to describe or plan: a rollout resolves the settings first.
    with pytest.raises(AssertionError, match="settings are resolved before a rollout"):
        _ = target.settings
    assert [step.name for step in target.steps("c" * 40, None)][-1] in {"switch", "rollout"}
