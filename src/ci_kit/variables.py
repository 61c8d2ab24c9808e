"""The application's own database variables, pointed at the database each process uses.

An application reads its database from its settings, not from the kit: one URL
(``DATABASE_URL``) or parts (``POSTGRES_SERVER``, ``POSTGRES_DB``, ...) that its
settings class assembles and validates. ``[tool.ci-kit.env]`` names each variable
with a template over the process's database, and ``url-env = "X"`` is short for
``X = "{url}"``. The kit renders them for the template's build, for each test
process's clone and for each ``fresh`` clone, before the application's code reads
them, and puts back what they held afterwards.

Nothing here connects: this module renders values and sets variables, so the
plugin may import it in every process.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ci_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

PLACEHOLDERS = ("url", "host", "port", "user", "password", "database")
"""What a template may name: the database's URL, or one of its parts."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

WELL_KNOWN = (
    "DATABASE_URL",
    "DATABASE_URI",
    "DB_URL",
    "SQLALCHEMY_DATABASE_URI",
    "SQLALCHEMY_DATABASE_URL",
    "POSTGRES_URL",
    "POSTGRES_DSN",
    "POSTGRES_SERVER",
    "POSTGRES_HOST",
    "POSTGRES_DB",
    "PGDATABASE",
)
"""Variables through which applications commonly find their database.

Set but not managed by the kit, they are how a suite ends up on the developer's
database: the kit says so at the start of the run (:func:`unmanaged`).
"""


def parse_templates(
    table: object, url_env: str | None, *, where: str = "[tool.ci-kit.env]"
) -> dict[str, str]:
    """The variables to set and their templates, checked once: ``url-env`` folded in.

    Every name must be a variable's and every ``{...}`` one of :data:`PLACEHOLDERS`,
    without a format spec, so a typo is one line before any server starts rather
    than a ``KeyError`` in the middle of a run.
    """
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ConfigurationError(
            f'{where} must be a table of VARIABLE = "template", e.g. POSTGRES_DB = "{{database}}"'
        )
    templates: dict[str, str] = {}
    for name, template in table.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigurationError(f"{where}: {name!r} is not an environment variable's name")
        if not isinstance(template, str):
            raise ConfigurationError(f"{where} {name} must be a string, not {template!r}")
        _check_template(template, f"{where} {name}")
        templates[name] = template
    if url_env is not None:
        if templates.get(url_env, "{url}") != "{url}":
            raise ConfigurationError(
                f"url-env {url_env!r} is also in {where} with another value: keep one of them"
            )
        templates[url_env] = "{url}"
    return templates


def _check_template(template: str, where: str) -> None:
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as error:  # a lone brace
        raise ConfigurationError(
            f"{where}: {template!r} is not a template ({error}); write a literal brace as {{{{"
        ) from None
    for _, field, spec, conversion in fields:
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            raise ConfigurationError(
                f"{where}: {{{field}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} is not one of "
                f"{', '.join('{' + name + '}' for name in PLACEHOLDERS)}"
            )


def rendered(templates: Mapping[str, str], url: URL, drivername: str) -> dict[str, str]:
    """Each variable's value for the database ``url`` names.

    ``{url}`` is the URL in the scheme and driver the user configured (see
    :func:`~ci_kit.dburl.environment_url`); the parts are as a settings class that
    assembles its own URL wants them: the host a name or address, the port a number.
    """
    if not templates:
        return {}
    from ci_kit.dburl import environment_url

    parts = {
        "url": environment_url(url, drivername),
        "host": url.host or "",
        "port": str(url.port or 5432),
        "user": url.username or "",
        "password": url.password or "",
        "database": url.database or "",
    }
    return {name: template.format_map(parts) for name, template in templates.items()}


def absent_database_url(server: URL | None, database: str) -> URL:
    """A URL for processes that must not reach a database: one that exists nowhere.

    On the configured server when there is one, else on a port no PostgreSQL
    listens on (9, discard): code that connects at import fails there, rather
    than on the database the developer's settings name. Used before any server is
    known: while the schema is read, and in the xdist controller, which imports
    the conftests while the run is prepared.
    """
    from sqlalchemy.engine import URL

    from ci_kit.dburl import DRIVERNAME

    nowhere = URL.create(DRIVERNAME, username="ci_kit", host="127.0.0.1", port=9)
    return (server or nowhere).set(database=database)


@contextmanager
def pointed(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ.update(values)`` for the block, then what each held before."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def masked_value(template: str, value: str) -> str:
    """A variable's value as the run's header may show it: no password, ever.

    A template with ``{password}`` has its whole value hidden (the variable holds a
    password, or a DSN with one); a URL's password is masked; other parts are shown.
    """
    if "{password}" in template:
        return "***"
    if "{url}" in template:
        return masked_url(value)
    return repr(value)


def masked_url(raw: str) -> str:
    """``raw`` as a URL with its password masked; never the raw text, which may hold one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from ci_kit.dburl import mask

    try:
        return mask(make_url(raw))
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "a value that is not a URL"


def suggested_template(name: str) -> str:
    """The template a well-known variable most likely wants, for the line that names it."""
    if name in {"POSTGRES_SERVER", "POSTGRES_HOST"}:
        return "{host}"
    if name in {"POSTGRES_DB", "PGDATABASE"}:
        return "{database}"
    return "{url}"


def unmanaged(
    managed: Mapping[str, str], environ: Mapping[str, str], root: Path
) -> list[tuple[str, str]]:
    """Well-known database variables set for this run that the kit will not point anywhere.

    Each as ``(name, where)``: the environment, or a ``.env`` file between the
    project's root and its repository's root, which settings libraries
    (pydantic-settings, python-dotenv) read on their own.
    """
    found = [(name, "environment") for name in WELL_KNOWN if environ.get(name)]
    seen = {name for name, _ in found}
    for dotenv in _dotenv_files(root):
        for name in _names_in(dotenv):
            if name in WELL_KNOWN and name not in seen:
                found.append((name, str(dotenv)))
                seen.add(name)
    return [(name, where) for name, where in found if name not in managed]


def _dotenv_files(root: Path) -> Iterator[Path]:
    """``.env`` in the root and its parents, up to the directory holding ``.git``."""
    for directory in (root, *root.parents):
        candidate = directory / ".env"
        if candidate.is_file():
            yield candidate
        if (directory / ".git").exists():
            return


def _names_in(dotenv: Path) -> Iterator[str]:
    try:
        text = dotenv.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        name, equals, value = line.removeprefix("export ").partition("=")
        if equals and value.strip() and _NAME.fullmatch(name.strip()):
            yield name.strip()
