"""What the kit's own sessions set right after connecting, whatever the server says.

The kit's own sessions (the administration session, and the template's build
connection) depend on a few settings: a role, a database or ``PGOPTIONS`` with a
timeout or a read-only default would otherwise end a run's lock session while it
idles, or refuse its DDL. A test's own connections are left as the user's role
and database say.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ci_kit.errors import ServerRefused, first_line

# What every session of the kit's own needs, whatever the role, the database or
# PGOPTIONS say: no timeout may end a run's idle lock session or cut its DDL, and
# its DDL must be allowed to write. With the first server version that knows each.
_KIT_SESSION_SETTINGS = (
    ("statement_timeout", "0", 0),  # first: a tiny one could cut the statements after it
    ("lock_timeout", "0", 0),
    ("idle_in_transaction_session_timeout", "0", 0),
    ("idle_session_timeout", "0", 140000),
    ("transaction_timeout", "0", 170000),
    ("default_transaction_read_only", "off", 0),
)


def configure_session(connection: psycopg.Connection[Any]) -> None:
    """Set what the kit's own sessions depend on, right after connecting; one round trip.

    Only the kit's sessions (administration, the template's build): a test's own
    connections behave as the user's role and database say.
    """
    statement = sql.SQL("; ").join(
        sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
        for name, value in kit_session_settings(connection.info.server_version).items()
    )
    autocommit = connection.autocommit
    connection.autocommit = True  # a SET in a transaction the caller rolls back is undone
    try:
        connection.execute(statement)
    except psycopg.Error as error:
        raise ServerRefused(
            f"the server refused the settings the kit's own sessions need ({first_line(error)}); "
            "connect the kit to PostgreSQL directly, not through a pooler that forbids SET"
        ) from None
    finally:
        if not connection.closed:
            connection.autocommit = autocommit


def kit_session_settings(server_version: int) -> dict[str, str]:
    """What :func:`configure_session` sets on a server of ``server_version`` (``170002``)."""
    return {name: value for name, value, since in _KIT_SESSION_SETTINGS if server_version >= since}
