"""SSH connections to an environment's host, made one way for the target and its state.

Only a host whose key is in ``deploy.ssh_known_hosts`` is connected to (paramiko's
``RejectPolicy``): Fabric's default would accept any key on first sight, so a CI
runner, which has never seen the host before, would hand its key and secrets to
whoever answered. The staging workflow writes the host's line from a repository
variable; locally, ``ssh-keyscan`` gives it.
"""

from __future__ import annotations

from typing import Any

import paramiko  # type: ignore[import-untyped]
from fabric import Connection  # type: ignore[import-untyped]

from ci.deploy.config import DeployConfig
from ci.deploy.errors import DeployConfigError, DeployError

_CONNECT_TIMEOUT_SECONDS = 15


def connect(host: str, user: str | None, port: int, config: DeployConfig) -> Any:
    """An open Fabric connection; the key from ``CI_KIT_SSH_KEY_FILE`` alone when given.

    With a key file, neither the agent nor ``~/.ssh`` keys are offered: a CI runner
    must authenticate with the key it was given, not with whatever else it finds.
    """
    key = {"key_filename": config.ssh_key_file} if config.ssh_key_file else {}
    connection = Connection(
        host,
        user=user,
        port=port,
        connect_kwargs={**key, "look_for_keys": not key, "allow_agent": not key},
        connect_timeout=_CONNECT_TIMEOUT_SECONDS,
    )
    known_hosts = config.ssh_known_hosts
    if known_hosts.is_file():
        connection.client.load_host_keys(str(known_hosts))
    connection.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    where = f"{user + '@' if user else ''}{host}:{port}"
    try:
        connection.open()
    except paramiko.SSHException as error:
        if "not found in known_hosts" in str(error):
            raise DeployConfigError(
                f"{where}'s host key is not in {known_hosts}; add it once checked: "
                f"ssh-keyscan -p {port} {host} >> {known_hosts} (or set deploy.ssh_known_hosts)"
            ) from None
        raise DeployError(f"cannot log in to {where} over SSH: {error}") from None
    except OSError as error:
        raise DeployError(f"cannot reach {where} over SSH: {error}") from None
    return connection
