"""The one way the kit opens a connection of its own, and what it says when it cannot.

Administration and the probe after a lost server connect through here, and the
kit's tests and benchmarks read URLs with the same :func:`connect_kwargs`, so a
URL's libpq parameters mean the same everywhere and every failure to connect is
one line that names its fix, password masked. A second way to connect would be a
second set of error messages to keep in step with this one.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from ci_kit.dburl import mask, redact
from ci_kit.errors import (
    AuthenticationFailed,
    CiKitError,
    ConnectionRefused,
    DatabaseMissing,
    InvalidDatabaseUrl,
    ServerUnreachable,
    first_line,
)

_CONNECT_TIMEOUT_SECONDS = 10


def connect(url: URL) -> psycopg.Connection[Any]:
    """An autocommit psycopg connection, with failures turned into one-line errors.

    The kit's connect timeout is a default: a ``connect_timeout`` in the URL wins.
    The client encoding is always UTF8, whatever ``PGCLIENTENCODING`` or the URL say:
    the kit's statements carry names and marks in any script.
    """
    kwargs = {
        "connect_timeout": _CONNECT_TIMEOUT_SECONDS,
        **connect_kwargs(url),
        "client_encoding": "UTF8",
    }
    try:
        return psycopg.connect(**kwargs, autocommit=True)
    except psycopg.ProgrammingError as error:  # refused before connecting: a bad value
        raise _refused_parameters(error, url) from None
    except psycopg.OperationalError as error:
        raise explain_connect_error(error, url) from None


def explain_connect_error(error: psycopg.Error, url: URL) -> CiKitError:
    """Name the problem and its fix, password masked.

    libpq reports connection-time failures without a SQLSTATE, so the server's
    message text is what tells a wrong password from a missing database.
    """
    where = mask(url)
    message = str(error)
    detail = redact(server_message(message), url)
    if "password authentication failed" in message:
        return AuthenticationFailed(
            f"password authentication failed for role {url.username!r} at {where}: "
            "check the password in the URL"
        )
    if "no pg_hba.conf entry" in message or ("role" in message and "does not exist" in message):
        return AuthenticationFailed(
            f"the server at {where} refused role {url.username!r}: {detail}; "
            "check the role name and pg_hba.conf"
        )
    if "no password supplied" in message:
        return AuthenticationFailed(
            f"the server at {where} asks role {url.username!r} for a password and the URL "
            "has none: put it in the URL (postgresql://role:PASSWORD@host/db) or set PGPASSWORD"
        )
    if f'database "{url.database}" does not exist' in message:
        return DatabaseMissing(
            f"database {url.database!r} does not exist at {where}; the kit connects to it "
            "for administration: set [tool.ci-kit] maintenance-db to one that exists"
        )
    if "invalid " in message and (" value" in message or "port number" in message):
        return InvalidDatabaseUrl(f"the URL {where} is not usable: {detail}; fix it in the URL")
    if any(sign in message for sign in _NOTHING_LISTENING):
        return ServerUnreachable(
            f"cannot reach PostgreSQL at {where}: {detail}; is the server running, and are "
            "the host and port right? (leave the URL unset to use the embedded server)"
        )
    if any(sign in message for sign in _NO_SLOT_LEFT):
        return ConnectionRefused(
            f"the server at {where} has no connection left for role {url.username!r}: "
            f"{detail}; raise the limit (the role's or the database's CONNECTION LIMIT, "
            "max_connections) or run fewer xdist workers"
        )
    return ConnectionRefused(f"the server at {where} refused the connection: {detail}")


# The server's words for a connection limit: the role's or database's CONNECTION
# LIMIT, max_connections, and the slots reserved for superusers and privileged roles.
_NO_SLOT_LEFT = (
    "too many connections",
    "too many clients",
    "remaining connection slots are reserved",
)


def driver_error_line(error: BaseException, url: URL) -> str | None:
    """One line for a driver error met on a connection to ``url``; None for any other error.

    For the fixtures, whose connections SQLAlchemy opens: they fail with this line
    instead of a traceback whose psycopg frames hold the connection string, password
    and all. A connection-time failure is explained as :func:`connect` explains it.
    """
    driver = error.orig if isinstance(error, DBAPIError) else error
    if not isinstance(driver, psycopg.Error):
        return None
    if isinstance(driver, psycopg.OperationalError):
        return str(explain_connect_error(driver, url))
    return f"the database {mask(url)} answered {type(driver).__name__}: " + redact(
        server_message(str(driver)), url
    )


# libpq's words when nothing answered, as opposed to a server that answered "no".
_NOTHING_LISTENING = (
    "Connection refused",
    "could not connect",
    "No such file or directory",
    "timeout expired",
    "could not translate host name",
    "failed to resolve host",
    "Network is unreachable",
    "No route to host",
    "server closed the connection unexpectedly",
)


def server_message(message: str) -> str:
    """The useful end of a libpq error: after 'FATAL:' or the last 'failed:'."""
    line = first_line(Exception(message))
    for marker in ("FATAL:", "failed:"):
        if marker in line:
            line = line.rsplit(marker, 1)[1]
    return line.strip()


def connect_kwargs(url: URL) -> dict[str, Any]:
    """libpq's connection parameters in a URL, as psycopg keyword arguments.

    The URL's parts, then its query (``sslmode``, ``connect_timeout``, ...; the last
    value of a repeated key). libpq itself checks every name here, so a misspelt one
    is one line, and no query key can land on an argument of psycopg's own
    (``autocommit``). No conninfo string is connected with, so no quoting bugs.
    """
    kwargs: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    for key, value in url.query.items():
        kwargs[key] = value if isinstance(value, str) else value[-1]
    try:
        make_conninfo("", **kwargs)
    except psycopg.ProgrammingError as error:
        raise _refused_parameters(error, url) from None
    return kwargs


def _refused_parameters(error: psycopg.Error, url: URL) -> InvalidDatabaseUrl:
    return InvalidDatabaseUrl(
        f"a parameter in the database URL is refused: {redact(first_line(error), url)}; "
        "correct or remove it (the query takes libpq's parameters: sslmode, "
        "connect_timeout, application_name, ..., see https://www.postgresql.org/docs/"
        "current/libpq-connect.html#LIBPQ-PARAMKEYWORDS)"
    )
