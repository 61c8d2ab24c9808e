"""The deploy configuration: one typed object from Invoke's config and the environment.

Settings come from Invoke's layers (the namespace's defaults, ``invoke.yaml``,
``INVOKE_DEPLOY_*`` variables, ``-f`` files); secrets come only from the process
environment, read here and nowhere else, so they never sit in a file or in argv:

- ``CI_KIT_REGISTRY_PASSWORD``: the image registry's password;
- ``CI_KIT_<ENV>_DATABASE_PASSWORD``: the password of the environment's database URL;
- ``CI_KIT_<ENV>_ADMIN_TOKEN``: the app's ``ADMIN_TOKEN`` (the local target makes
  one per environment and keeps it, mode 0600, when unset);
- ``CI_KIT_SSH_KEY_FILE``: the private key for the ``ssh`` target.

The project being deployed (``deploy.project``) is not read here: the root
``tasks.py`` puts its own directory in the namespace's configuration, and
:func:`ci.deploy.tasks.load` passes it in as ``root``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import URL

from ci.deploy.errors import DeployConfigError
from ci.deploy.plan import Masker
from ci_kit.dburl import mask, parse_database_url
from ci_kit.errors import InvalidDatabaseUrl

TARGETS = ("local", "ssh", "command")

DEFAULTS: dict[str, Any] = {
    "state_dir": ".ci-kit",
    # Outside any clone: what the local target runs and keeps (see DeployConfig.machine_dir).
    "state_root": None,
    "name": None,
    # The hosts the ssh target and ssh:// state may connect to; no other host key is trusted.
    "ssh_known_hosts": "~/.ssh/known_hosts",
    # The distribution a release ships: the sample's own pyproject, not the repo root's.
    "build": {"isolation": True, "directory": "backend_sample"},
    "image": {
        "repository": None,
        "containerfile": "backend_sample/Containerfile",
        "engine": "auto",
        # Lists are read from strings too: Invoke cannot override a list from INVOKE_*.
        "engine_args": None,
        "tls_verify": True,
        "username": None,
    },
    "environments": {},
}

ENVIRONMENT_DEFAULTS: dict[str, Any] = {
    "target": "local",
    "host": "127.0.0.1",
    "port": None,
    "base_url": None,
    "database": None,
    "database_url": None,
    "health_timeout": 60,
    "smoke_tests": True,
    "promote_from": None,
    "command": None,
    "ssh_host": None,
    "ssh_user": None,
    "ssh_port": 22,
    "remote_path": None,
    "remote_python": "python3",
    # Where the environment's history, lock and releases live for every runner:
    # ssh://[user@]host[:port]/path or a directory; default by target (see ci.deploy.store).
    "state": None,
}


@dataclass(frozen=True)
class ImageConfig:
    """Where images go and how they are built; no repository means no image."""

    repository: str | None
    containerfile: str
    engine: str
    engine_args: tuple[str, ...]
    tls_verify: bool
    username: str | None

    @property
    def registry(self) -> str | None:
        """The registry host of the repository (``host:port``), for ``login``."""
        if not self.repository:
            return None
        return self.repository.split("/", 1)[0]


@dataclass(frozen=True)
class EnvironmentConfig:
    """One environment (staging, production, ...): where and how it is deployed."""

    name: str
    target: str
    host: str
    port: int
    base_url: str
    database: str
    database_url: URL | None
    health_timeout: float
    smoke_tests: bool
    promote_from: str | None
    command: tuple[str, ...]
    ssh_host: str | None
    ssh_user: str | None
    ssh_port: int
    remote_path: str | None
    remote_python: str
    state: SshLocation | Path | None = None
    admin_token: str | None = field(default=None, repr=False)

    @property
    def env_prefix(self) -> str:
        return "CI_KIT_" + self.name.upper().replace("-", "_") + "_"

    def database_display(self) -> str:
        if self.database_url is not None:
            return mask(self.database_url)
        return f"{self.database} on the embedded PostgreSQL kept for this project"


@dataclass(frozen=True)
class DeployConfig:
    """Everything a deploy task needs to know, validated once."""

    root: Path
    state_dir: Path
    state_root: Path
    name: str
    build_isolation: bool
    build_directory: str
    image: ImageConfig
    environments: Mapping[str, EnvironmentConfig]
    registry_password: str | None = field(default=None, repr=False)
    ssh_key_file: str | None = None
    ssh_known_hosts: Path = Path("~/.ssh/known_hosts")

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise DeployConfigError(
                f"no environment {name!r} in the deploy configuration (known: {known}); "
                "add it under deploy.environments in invoke.yaml"
            ) from None

    @property
    def releases_dir(self) -> Path:
        """This clone's build output and cache of releases; never the source of truth."""
        return self.state_dir / "releases"

    @property
    def machine_dir(self) -> Path:
        """This machine's deploys of this project, shared by every clone of it here.

        The local target's environments (releases, the app's pid, history, lock) and
        their durable PostgreSQL cluster live below it; a clone is thrown away.
        """
        return self.state_root / self.name

    def environment_dir(self, name: str) -> Path:
        return self.state_dir / "deploy" / name

    def masker(self) -> Masker:
        """A masker that knows every secret of this configuration."""
        secrets: list[str | None] = [self.registry_password]
        for env in self.environments.values():
            secrets.append(env.admin_token)
            if env.database_url is not None:
                secrets.append(env.database_url.password)
        return Masker(secrets)


def load_deploy_config(
    settings: Mapping[str, Any], environ: Mapping[str, str], root: Path
) -> DeployConfig:
    """Validate Invoke's ``deploy`` settings and attach the secrets from ``environ``."""
    merged = _merge(DEFAULTS, settings)
    image = merged["image"]
    state_dir = Path(merged["state_dir"])
    if not state_dir.is_absolute():
        state_dir = root / state_dir
    environments = {
        name: _environment(name, _merge(ENVIRONMENT_DEFAULTS, raw or {}), environ)
        for name, raw in (merged["environments"] or {}).items()
    }
    engine_args = image["engine_args"] or []
    build_directory = _build_directory(merged["build"]["directory"])
    return DeployConfig(
        root=root,
        state_dir=state_dir,
        state_root=Path(merged["state_root"]).expanduser()
        if merged["state_root"]
        else default_state_root(environ),
        name=str(merged["name"] or PurePosixPath(build_directory).name or root.name),
        build_isolation=bool(merged["build"]["isolation"]),
        build_directory=build_directory,
        image=ImageConfig(
            repository=image["repository"] or None,
            containerfile=str(image["containerfile"]),
            engine=str(image["engine"]),
            engine_args=tuple(
                shlex.split(engine_args) if isinstance(engine_args, str) else engine_args
            ),
            tls_verify=_bool(image["tls_verify"]),
            username=image["username"] or None,
        ),
        environments=environments,
        registry_password=environ.get("CI_KIT_REGISTRY_PASSWORD") or None,
        ssh_key_file=environ.get("CI_KIT_SSH_KEY_FILE") or None,
        ssh_known_hosts=Path(str(merged["ssh_known_hosts"])).expanduser(),
    )


def _environment(
    name: str, raw: Mapping[str, Any], environ: Mapping[str, str]
) -> EnvironmentConfig:
    target = str(raw["target"])
    if target not in TARGETS:
        raise DeployConfigError(
            f"environment {name}: target {target!r} is not one of {', '.join(TARGETS)}"
        )
    prefix = "CI_KIT_" + name.upper().replace("-", "_") + "_"
    port = raw["port"]
    base_url = raw["base_url"]
    if port is None and base_url is None:
        raise DeployConfigError(f"environment {name}: set its port or its base_url")
    host = str(raw["host"])
    if base_url is None:
        base_url = f"http://{host}:{port}"
    if port is None:
        port = 8000
    database_url = None
    if raw["database_url"]:
        try:
            database_url = parse_database_url(str(raw["database_url"]))
        except InvalidDatabaseUrl as error:
            raise DeployConfigError(f"environment {name}: {error}") from None
        if database_url.password:
            raise DeployConfigError(
                f"environment {name}: database_url must not contain a password; "
                f"set {prefix}DATABASE_PASSWORD in the environment instead"
            )
        password = environ.get(prefix + "DATABASE_PASSWORD")
        if password:
            database_url = database_url.set(password=password)
    command = raw["command"] or ()
    if target == "command" and not command:
        raise DeployConfigError(
            f"environment {name}: the command target needs a rollout command, e.g. "
            "command: [kubectl, set, image, deployment/app, 'app={image}']"
        )
    if target == "ssh" and not (raw["ssh_host"] and raw["remote_path"]):
        raise DeployConfigError(
            f"environment {name}: the ssh target needs ssh_host and remote_path"
        )
    return EnvironmentConfig(
        name=name,
        target=target,
        host=host,
        port=int(port),
        base_url=str(base_url).rstrip("/"),
        database=str(raw["database"] or f"finance_report_{name.replace('-', '_')}"),
        database_url=database_url,
        health_timeout=float(raw["health_timeout"]),
        smoke_tests=_bool(raw["smoke_tests"]),
        promote_from=raw["promote_from"] or None,
        command=tuple(shlex.split(command) if isinstance(command, str) else map(str, command)),
        ssh_host=raw["ssh_host"] or None,
        ssh_user=raw["ssh_user"] or None,
        ssh_port=int(raw["ssh_port"]),
        remote_path=raw["remote_path"] or None,
        remote_python=str(raw["remote_python"]),
        state=parse_location(str(raw["state"]), name) if raw["state"] else None,
        admin_token=environ.get(prefix + "ADMIN_TOKEN") or None,
    )


@dataclass(frozen=True)
class SshLocation:
    """``ssh://[user@]host[:port]/path``, as parsed from a ``state`` setting."""

    host: str
    user: str | None
    port: int
    path: str


def parse_location(raw: str, environment: str) -> SshLocation | Path:
    """A ``state`` setting: an SSH location or an absolute directory; else one line."""
    if raw.startswith("ssh://"):
        parts = urlsplit(raw)
        if not parts.hostname or not parts.path.startswith("/"):
            raise DeployConfigError(
                f"environment {environment}: state {raw!r} must look like "
                "ssh://[user@]host[:port]/absolute/path"
            )
        try:
            port = parts.port or 22
        except ValueError:
            raise DeployConfigError(
                f"environment {environment}: the port in state {raw!r} is not a number"
            ) from None
        return SshLocation(parts.hostname, parts.username, port, parts.path)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise DeployConfigError(
            f"environment {environment}: state {raw!r} must be an absolute directory or an "
            "ssh:// location, never a path inside the clone (CI throws clones away)"
        )
    return path


def default_state_root(environ: Mapping[str, str]) -> Path:
    """Where deploy state lives on this machine when ``deploy.state_root`` is unset.

    The system's state directory for root (services deployed as root), else the
    user's XDG state directory; never inside a clone, which CI throws away.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/ci-kit")
    home = environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(home) / "ci-kit"


def _build_directory(value: object) -> str:
    """The directory to build, relative to the commit's root and inside it."""
    directory = PurePosixPath(str(value or "."))
    if directory.is_absolute() or ".." in directory.parts:
        raise DeployConfigError(
            f"build.directory {str(value)!r} must be a path inside the repository, relative "
            "to its root (e.g. backend_sample), since it is read from the commit's git archive"
        )
    return str(directory)


def _merge(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with the given values, tables merged key by key."""
    merged: dict[str, Any] = dict(defaults)
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = _merge({}, value)
        else:
            merged[key] = value
    return merged


def _bool(value: object) -> bool:
    # Invoke's environment variables arrive as strings.
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)
