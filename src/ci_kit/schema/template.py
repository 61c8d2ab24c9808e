"""A template's name and build, for any schema source, with an optional seed.

The template database is named by a fingerprint of everything that shapes it, so
a changed migration, ``env.py``, model or reference data file gets a new template
instead of a stale cached one (the pgtestdb and pytest-django ``--reuse-db``
pitfall). Nothing here knows a kind of schema: each source says what shapes it,
builds itself and checks itself (:class:`~ci_kit.schema.source.SchemaSource`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path

from sqlalchemy.engine import URL, Connection

from ci_kit import outage
from ci_kit.dburl import redact
from ci_kit.errors import (
    CiKitError,
    MigrationFailed,
    SchemaSourceError,
    SeedFailed,
    ServerUnreachable,
    first_line,
)
from ci_kit.schema.alembic import AlembicSchema
from ci_kit.schema.empty import EmptySchema
from ci_kit.schema.metadata import MetadataSchema
from ci_kit.schema.seed import Seed
from ci_kit.schema.source import SchemaSource
from ci_kit.schema.targets import split_target

FINGERPRINT_VERSION = "2"
"""Bumped when the way the kit builds or names a template changes, invalidating old ones.

2: the schema's digest is taken apart from the server's major version, in the
child process that reads the schema.
"""


def parse_schema_source(
    value: str | None, root: Path, *, quiet_alembic: bool = True
) -> SchemaSource:
    """Decide the kind from the value's shape: ``*.ini`` is Alembic, ``a.b:c`` metadata."""
    if not value:
        return EmptySchema()
    if is_alembic_source(value):
        path = Path(value) if Path(value).is_absolute() else root / value
        if not path.is_file():
            raise SchemaSourceError(
                f"schema source {value!r}: no such Alembic config file at {path}"
            )
        return AlembicSchema(path, quiet_logging=quiet_alembic)
    if split_target(value) is None:
        raise SchemaSourceError(
            f"schema source {value!r} is neither a path to alembic.ini nor "
            "'package.module:metadata'"
        )
    return MetadataSchema(value, root)


def is_alembic_source(value: str) -> bool:
    """Whether a ``schema`` value names an Alembic config: Alembic is read from files alone."""
    return value.endswith(".ini")


def fingerprint(source: SchemaSource, *, server_major: int, seed: Seed | None = None) -> str:
    """A hex digest of everything that shapes the template built from ``source`` and ``seed``."""
    return template_fingerprint(schema_digest(source, seed), server_major=server_major)


def schema_digest(source: SchemaSource, seed: Seed | None = None) -> str:
    """A hex digest of what the project's files say the template holds, for any server.

    Computed where the project's code may run (:mod:`ci_kit.schema.process`),
    before the kit knows which server it will get.
    """
    digest = hashlib.sha256()
    seed_parts = seed.fingerprint_parts() if seed is not None else ()
    for part in chain(source.fingerprint_parts(), seed_parts):
        digest.update(part + b"\0")
    return digest.hexdigest()


def template_fingerprint(digest: str, *, server_major: int) -> str:
    """The template's fingerprint: the schema's digest, for this kit and this server's major."""
    prefix = f"ci-kit/{FINGERPRINT_VERSION}\0pg{server_major}\0"
    return hashlib.sha256(f"{prefix}{digest}".encode()).hexdigest()


def build_schema(source: SchemaSource, connection: Connection, *, seed: Seed | None = None) -> None:
    """Build the schema into the database ``connection`` is open on, commit, check, then seed.

    Whatever the user's code raises (a migration, a DDL hook, the seed) becomes
    one line naming the step; the seed runs only on a schema that passed its
    check, and the kit commits its rows.
    """
    step = f"building the schema from {source.describe()}"
    url = connection.engine.url
    with _reported(MigrationFailed, step, url, hint=source.failure_hint):
        source.build(connection)
        connection.commit()
    source.verify(connection)
    if seed is not None:
        with _reported(SeedFailed, f"seeding the template with {seed.target}", url):
            seed.function(connection)
            connection.commit()


@contextmanager
def _reported(
    failure: Callable[[str], CiKitError],
    step: str,
    url: URL,
    *,
    hint: Callable[[BaseException], str] = lambda _: "",
) -> Iterator[None]:
    """A failure in the user's code during ``step`` as one line; the kit's own pass as they are.

    A server that went away is not the user's code failing: it is said as such,
    with no hint about the code, which did nothing wrong.
    """
    try:
        yield
    except CiKitError:
        raise
    except (Exception, SystemExit) as error:  # a failure in user code is the user's to fix
        if outage.server_lost(error, url):
            raise ServerUnreachable(_went_away(step, error, url)) from None
        raise failure(
            f"{step} failed: {type(error).__name__}: {first_line(error)}{hint(error)}"
        ) from error


def _went_away(step: str, error: BaseException, url: URL) -> str:
    return (
        f"the PostgreSQL server at {outage.address(url)} went away while {step} "
        f"({redact(first_line(error), url)}); the half-built template {url.database!r} "
        "went with it or goes with the next run's sweep: start the server and run again"
    )
