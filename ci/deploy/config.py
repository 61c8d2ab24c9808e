"""The deploy configuration: one typed object from Invoke's settings and the environment.

The models below declare every setting once, with its type and default, and pydantic
parses every value, whatever layer it comes from: Invoke's (``invoke.yaml``, ``-f``
files, flags, the namespace's ``deploy.project``) or an ``INVOKE_DEPLOY_*`` variable,
which :mod:`ci.deploy.overrides` reads as text. So ``false`` is false and ``flase`` an
error in every layer. A setting given as null (from a variable: nothing, ``null`` or
``~``) is unset: its default applies. A bad value is one line naming the variable or
key and what it must be; every problem found goes on that line.

Secrets come only from the process environment, read here and nowhere else, so they
never sit in a file or in argv; no setting can hold one:

- ``CI_KIT_REGISTRY_PASSWORD``: the image registry's password;
- ``CI_KIT_<ENV>_DATABASE_PASSWORD``: the password of the environment's database URL;
- ``CI_KIT_<ENV>_ADMIN_TOKEN``: the app's ``ADMIN_TOKEN`` (the local target makes
  one per environment and keeps it, mode 0600, when unset);
- ``CI_KIT_SSH_KEY_FILE``: the private key for the ``ssh`` target.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy.engine import URL

from ci.deploy import overrides
from ci.deploy.errors import DeployConfigError
from ci.deploy.plan import Masker
from ci_kit.dburl import mask, parse_database_url
from ci_kit.errors import InvalidDatabaseUrl

Target = Literal["local", "ssh", "command"]
TARGETS: tuple[str, ...] = get_args(Target)


def _words(value: object) -> object:
    """A list written as one string: ``[a, b]``, a JSON list, or shell words.

    Variables are text, and Invoke cannot override a list a file holds, so files
    write lists as strings too. Items of ``[a, b]`` lose the spaces around them;
    one that keeps some is quoted.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if text.startswith("[") and text.endswith("]"):
            lexer = shlex.shlex(text[1:-1], posix=True)
            lexer.whitespace, lexer.whitespace_split, lexer.commenters = ",", True, ""
            return [item.strip() for item in lexer if item.strip()]
        return shlex.split(text)
    except ValueError as error:
        raise ValueError(
            f"not a list ({error}); write [a, b], a JSON list, or words quoted as in a shell"
        ) from None


def _inside_repository(value: str) -> str:
    directory = PurePosixPath(value)
    if directory.is_absolute() or ".." in directory.parts:
        raise ValueError(
            f"{value!r} must be a path inside the repository, relative to its root (e.g. "
            "backend_sample), since it is read from the commit's git archive"
        )
    return str(directory)


@dataclass(frozen=True)
class SshLocation:
    """``ssh://[user@]host[:port]/path``, as parsed from a ``state`` setting."""

    host: str
    user: str | None
    port: int
    path: str


def parse_location(value: object) -> SshLocation | Path | None:
    """A ``state`` setting: an SSH location or an absolute directory; else one line."""
    if value is None:
        return None
    raw = str(value)
    if raw.startswith("ssh://"):
        parts = urlsplit(raw)
        if not parts.hostname or not parts.path.startswith("/"):
            raise ValueError(f"{raw!r} must look like ssh://[user@]host[:port]/absolute/path")
        try:
            port = parts.port or 22
        except ValueError:
            raise ValueError(f"the port in {raw!r} is not a number") from None
        return SshLocation(parts.hostname, parts.username, port, parts.path)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise ValueError(
            f"{raw!r} must be an absolute directory or an ssh:// location, never a path "
            "inside the clone (CI throws clones away)"
        )
    return path


Words = Annotated[tuple[str, ...], BeforeValidator(_words)]
UserPath = Annotated[Path, AfterValidator(Path.expanduser)]


class _Table(BaseModel):
    """A table of settings: typed, unknown keys refused, frozen once validated.

    A field marked ``exclude`` is no setting: :func:`load_deploy_config` puts it in
    (a secret, an environment's name), and neither a file nor a variable may.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


class BuildConfig(_Table):
    """The distribution a release ships: the sample's own pyproject, not the repo root's."""

    isolation: bool = True
    directory: Annotated[str, AfterValidator(_inside_repository)] = "backend_sample"


class ImageConfig(_Table):
    """Where images go and how they are built; no repository means no image."""

    repository: str | None = None
    containerfile: str = "backend_sample/Containerfile"
    engine: Literal["auto", "podman", "docker"] = "auto"  # auto: podman if installed
    engine_args: Words = ()
    tls_verify: bool = True
    username: str | None = None

    @property
    def registry(self) -> str | None:
        """The registry host of the repository (``host:port``), for ``login``."""
        if not self.repository:
            return None
        return self.repository.split("/", 1)[0]


class EnvironmentConfig(_Table):
    """One environment (staging, production, ...): where and how it is deployed."""

    model_config = ConfigDict(arbitrary_types_allowed=True)  # database_url: SQLAlchemy's URL

    name: str = Field(exclude=True)
    admin_token: str | None = Field(default=None, exclude=True, repr=False)
    database_password: str | None = Field(default=None, exclude=True, repr=False)
    target: Target = "local"
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: Annotated[str, AfterValidator(lambda url: url.rstrip("/"))] = Field(
        default_factory=lambda data: f"http://{data['host']}:{data['port']}"
    )
    database: str = Field(
        default_factory=lambda data: f"finance_report_{data['name'].replace('-', '_')}"
    )
    database_url: URL | None = None
    health_timeout: FiniteFloat = 60.0
    smoke_tests: bool = True
    promote_from: str | None = None
    command: Words = ()
    ssh_host: str | None = None
    ssh_user: str | None = None
    ssh_port: int = 22
    remote_path: str | None = None
    remote_python: str = "python3"
    # Where the environment's history, lock and releases live for every runner:
    # ssh://[user@]host[:port]/path or a directory; default by target (see ci.deploy.store).
    state: Annotated[SshLocation | Path | None, PlainValidator(parse_location)] = None

    @field_validator("database_url", mode="plain")
    @classmethod
    def _database_url(cls, value: object, info: ValidationInfo) -> URL:
        try:
            url = parse_database_url(str(value))
        except InvalidDatabaseUrl as error:
            raise ValueError(str(error)) from None
        prefix = _env_prefix(info.data["name"])
        if url.password:
            raise ValueError(
                f"must not contain a password; set {prefix}DATABASE_PASSWORD in the "
                "environment instead"
            )
        password = info.data.get("database_password")
        return url.set(password=password) if password else url

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not {"port", "base_url"} & self.model_fields_set:
            raise ValueError("set its port or its base_url")
        if self.target == "command" and not self.command:
            raise ValueError(
                "the command target needs a rollout command, e.g. "
                "command: [kubectl, set, image, deployment/app, 'app={image}']"
            )
        if self.target == "ssh" and not (self.ssh_host and self.remote_path):
            raise ValueError("the ssh target needs ssh_host and remote_path")
        return self

    @property
    def env_prefix(self) -> str:
        return _env_prefix(self.name)

    def database_display(self) -> str:
        if self.database_url is not None:
            return mask(self.database_url)
        return f"{self.database} on the embedded PostgreSQL kept for this project"


class DeployConfig(_Table):
    """Everything a deploy task needs to know, validated once."""

    # The repository deployed: the root tasks.py puts its own directory in the
    # namespace's configuration as deploy.project (see ci.deploy.tasks.namespace).
    root: Path = Field(alias="project")
    registry_password: str | None = Field(default=None, exclude=True, repr=False)
    ssh_key_file: str | None = Field(default=None, exclude=True)
    # This clone's build output and cache of releases, relative to the root.
    state_dir: Path = Field(default=Path(".ci-kit"), validate_default=True)
    # Outside any clone: what the local target runs and keeps (see machine_dir).
    state_root: UserPath
    build: BuildConfig = Field(default_factory=BuildConfig)
    name: str = Field(
        default_factory=lambda data: (
            PurePosixPath(data["build"].directory).name or data["root"].name
        )
    )
    # The hosts the ssh target and ssh:// state may connect to; no other host key is trusted.
    ssh_known_hosts: UserPath = Field(default=Path("~/.ssh/known_hosts"), validate_default=True)
    image: ImageConfig = Field(default_factory=ImageConfig)
    environments: Mapping[str, EnvironmentConfig] = Field(default_factory=dict)

    @field_validator("state_dir")
    @classmethod
    def _in_root(cls, value: Path, info: ValidationInfo) -> Path:
        root = info.data.get("root")
        return root / value if root else value

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
    settings: Mapping[str, Any],
    environ: Mapping[str, str],
    root: Path | None = None,
    *,
    shadowed: Iterable[Mapping[str, Any]] = (),
) -> DeployConfig:
    """Validate Invoke's ``deploy`` settings, its variables over them, and its secrets.

    ``settings`` is Invoke's merged ``deploy`` table as plain dicts; the
    ``INVOKE_DEPLOY_*`` variables of ``environ`` go over it, except where one of the
    ``shadowed`` tables (the layers Invoke ranks above its environment) holds the
    setting. ``root`` is the project when the settings name none (``deploy.project``).
    Every problem is reported in one :class:`DeployConfigError` line.
    """
    names = overrides.environment_names(settings)
    paths = list(_settable(DeployConfig, names))
    read = overrides.read(settings, environ, paths, shadowed=shadowed)
    problems = list(read.problems)
    data = _with_given(_unset_nulls(read.settings), names, environ, problems)
    data.setdefault("state_root", default_state_root(environ))
    if root is not None:
        data.setdefault("project", root)
    try:
        config = DeployConfig.model_validate(data)
    except ValidationError as error:
        known = [".".join(("deploy", *path)) for path in paths]
        problems += filter(None, (_problem(e, read.sources, known) for e in error.errors()))
    if problems:
        raise DeployConfigError("; ".join(problems))
    return config


def default_state_root(environ: Mapping[str, str]) -> Path:
    """Where deploy state lives on this machine when ``deploy.state_root`` is unset.

    The system's state directory for root (services deployed as root), else the
    user's XDG state directory; never inside a clone, which CI throws away.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/ci-kit")
    home = environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(home) / "ci-kit"


def _env_prefix(name: str) -> str:
    return "CI_KIT_" + name.upper().replace("-", "_") + "_"


def _settable(
    model: type[BaseModel], environments: Iterable[str], above: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """The path of every setting: each model's fields, an environment's under its name."""
    for name, field in model.model_fields.items():
        path = (*above, field.alias or name)
        if field.exclude:
            continue
        if name == "environments":
            for environment in environments:
                yield from _settable(EnvironmentConfig, (), (*path, environment))
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _settable(field.annotation, environments, path)
        else:
            yield path


def _unset_nulls(table: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` without its null or empty values: those settings keep their defaults."""
    return {
        key: _unset_nulls(value) if isinstance(value, Mapping) else value
        for key, value in table.items()
        if value is not None and value != ""
    }


def _with_given(
    tree: dict[str, Any], names: list[str], environ: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    """``tree`` with what no setting may hold put in: the secrets, environments' names.

    A secret comes from its variable only: a setting that gives one is refused.
    """
    environments = tree.get("environments")
    top = {"registry_password": "CI_KIT_REGISTRY_PASSWORD", "ssh_key_file": "CI_KIT_SSH_KEY_FILE"}
    tables: list[tuple[str, object, dict[str, str], dict[str, str]]] = [("deploy", tree, {}, top)]
    for name in names:
        table = environments.setdefault(name, {}) if isinstance(environments, dict) else None
        prefix = _env_prefix(name)
        secrets = {
            "admin_token": f"{prefix}ADMIN_TOKEN",
            "database_password": f"{prefix}DATABASE_PASSWORD",
        }
        tables.append((f"deploy.environments.{name}", table, {"name": name}, secrets))
    for where, table, fixed, secrets in tables:
        if not isinstance(table, dict):
            continue  # the model reports what it should be
        for key in sorted(table.keys() & (fixed.keys() | secrets.keys())):
            origin = f"read from {secrets[key]} only" if key in secrets else "the environment's key"
            problems.append(f"{where}.{key} is not a setting: it is {origin}")
        table.update(fixed)
        table.update({key: environ[var] for key, var in secrets.items() if environ.get(var)})
    return tree


# What a value must be, by the first word of pydantic's error type (bool_parsing, ...).
_MUST_BE = {
    "bool": "true or false (or yes/no, on/off, 1/0)",
    "int": "a whole number",
    "float": "a number",
    "finite": "a finite number, such as 60 or 12.5",
    "string": "text",
    "path": "a path",
    "tuple": "a list",
    "model": "a table of settings",
    "dict": "a table of settings",
    "literal": "one of {expected}",
    "missing": "set",
}


def _problem(
    error: ErrorDetails, sources: Mapping[tuple[str, ...], str], known: list[str]
) -> str | None:
    """One error as ``<variable or key> must be <what>, not <value>``."""
    loc = tuple(str(part) for part in error["loc"])
    where = next(
        (sources[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in sources),
        ".".join(("deploy", *loc)),
    )
    kind = error["type"]
    if kind == "default_factory_not_called":
        return None  # a default that needs a value that was itself refused
    if kind == "extra_forbidden":
        return f"{where} is not a deploy setting{overrides.did_you_mean(where, known)}"
    if kind == "value_error":
        return f"{where}: {error['ctx']['error']}"
    must = _MUST_BE.get(kind.split("_")[0])
    if must is None:
        return f"{where}: {error['msg']}"
    given = error["input"]
    shown = f", not {given!r}" if isinstance(given, str | int | float) else ""
    return f"{where} must be {must.format(**error.get('ctx', {}))}{shown}"
