"""What every schema source offers the kit: pgtestdb's Migrator (Hash, Migrate, Verify).

The kit names, builds and checks templates through these methods alone, so a new
kind of schema is one module implementing them, not an edit to every function
that handles a template.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from sqlalchemy.engine import Connection


class SchemaSource(Protocol):
    """Where a template's schema comes from: how it is named, built and checked."""

    def describe(self) -> str:
        """A few words for the run's header and for errors: ``Alembic (path/alembic.ini)``."""
        ...

    def fingerprint_parts(self) -> Iterator[bytes]:
        """Everything that shapes the schema, in a stable order, its kind first.

        The template's name is a hash of these: a part that changes builds a new
        template, so a part that varies between identical schemas (an absolute
        path, a timestamp) rebuilds it for nothing.
        """
        ...

    def build(self, connection: Connection) -> None:
        """Create the schema in the database ``connection`` is open on; the kit commits."""
        ...

    def verify(self, connection: Connection) -> None:
        """Raise :class:`~ci_kit.errors.SchemaNotInTemplate` unless the schema is there.

        Code the user controls (an ``env.py``, a DDL hook) may build on another
        connection than the one given; only this check tells a built template from
        an empty one.
        """
        ...

    def failure_hint(self, error: BaseException) -> str:
        """What to add to the one line that reports ``error`` from :meth:`build`, or ''."""
        ...
