"""Roles of one test's own on the shared server, for settings no other test may see.

Role-level settings (a connection limit, a password, LOGIN) are the role's for
every session on the server: a test that changed ``ci_kit``'s would change every
concurrent test's. A throw-away role with CREATEDB takes them instead, and goes
with its databases at the end.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from psycopg import sql
from sqlalchemy.engine import URL

from tests.helpers.server import as_superuser, connect_to


def literal(value: str) -> str:
    """A SQL string literal, for statements given to ``psql -c``."""
    return sql.Literal(value).as_string()


@contextlib.contextmanager
def throwaway_role(server_url: URL, password: str) -> Iterator[URL]:
    """A new LOGIN CREATEDB role with ``password``; its URL on the maintenance database.

    Afterwards every database it owns is dropped (it cannot drop them itself once
    a test changed its password or login), then the role.
    """
    role = f"kit_role_{uuid.uuid4().hex[:8]}"
    as_superuser(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD {literal(password)}")
    try:
        yield server_url.set(username=role, password=password)
    finally:
        with connect_to(server_url, server_url.database or "postgres") as conn:
            owned = conn.execute(
                "SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) = %s", (role,)
            ).fetchall()
        for (name,) in owned:
            ident = sql.Identifier(name).as_string()
            as_superuser(f"ALTER DATABASE {ident} IS_TEMPLATE false")
            as_superuser(f"DROP DATABASE {ident} WITH (FORCE)")
        as_superuser(f"DROP ROLE {role}")
