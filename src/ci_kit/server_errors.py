"""What the server's refusal of one of the kit's statements means, and what to do: one line.

The kit's DDL (:mod:`ci_kit.admin`) can fail in many ways a person must fix on the
server: a missing right, a full disk, a read-only session, a name the server cannot
encode, another session on a database to copy. The SQLSTATE says which, the same
for every statement, so one table maps its code (or its class, the first two
characters) to the error type and the hint; the operation, the database and the
server's own message fill in the rest. Anything the table does not know still
comes out as one line with the server's words, never as a driver traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psycopg
from sqlalchemy.engine import URL

from ci_kit.dburl import mask, redact
from ci_kit.errors import (
    CiKitError,
    ConfigurationError,
    DatabaseInUse,
    DiskFull,
    PermissionDenied,
    ReadOnlyServer,
    ServerRefused,
    UnencodableName,
    first_line,
)

Operation = Literal["create", "clone", "drop", "mark", "seal", "setting", "inspect"]

_DOING: dict[Operation, str] = {
    "create": "creating database",
    "clone": "cloning into database",
    "drop": "dropping database",
    "mark": "marking database",
    "seal": "sealing template",
    "setting": "applying a setting to database",
    "inspect": "looking up database",
}


@dataclass(frozen=True)
class Ddl:
    """One statement of the kit's, as the error line names it."""

    operation: Operation
    database: str
    role: str
    server: URL
    source: str | None = None
    """The database a CREATE copies: the template, or ``template1`` when none is named."""
    setting: str | None = None
    """For ``setting``: the parameter being set."""
    value: str | None = None
    """For ``setting``: the value it is set to."""
    origin: str = "[tool.ci-kit] database-settings"
    """For ``setting``: where the setting came from, for the person to correct it there."""
    owner: str | None = None
    """The database's owner, when the role was refused for not being it."""


def explain(error: Exception, ddl: Ddl) -> CiKitError:
    """The one-line error for ``error``, raised by the server (or driver) running ``ddl``.

    ``error`` is a psycopg error, or the ``UnicodeError`` a driver raises for a name
    its client encoding cannot carry; every secret of the server URL is redacted.
    """
    failure, hint = _rule(error, ddl)
    said = redact(_server_words(error), ddl.server)
    where = mask(ddl.server)
    line = f"{_DOING[ddl.operation]} {ddl.database!r} at {where} failed: {said}"
    advice = hint(ddl)
    return failure(f"{line}; {advice}" if advice else line)


def _rule(error: Exception, ddl: Ddl) -> Rule:
    """The exact SQLSTATE's rule, else a refused setting's, else its class's, else a default."""
    sqlstate = getattr(error, "sqlstate", None) or ""
    if sqlstate in _RULES:
        return _RULES[sqlstate]
    if ddl.operation == "setting" and sqlstate[:2] in ("22", "42"):  # a bad name or value
        return (ConfigurationError, _bad_setting)
    return _RULES.get(sqlstate[:2]) or _fallback(error)


def _server_words(error: Exception) -> str:
    """The server's primary message, without psycopg's DETAIL/HINT lines or libpq's prefix."""
    primary = getattr(getattr(error, "diag", None), "message_primary", None)
    text = first_line(Exception(primary)) if primary else first_line(error)
    for marker in ("FATAL:", "ERROR:"):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return text.strip() or type(error).__name__


Hint = Callable[[Ddl], str]
Rule = tuple[Callable[[str], CiKitError], Hint]


def _missing_right(ddl: Ddl) -> str:
    if ddl.operation == "setting":
        return (
            f"setting {ddl.setting} needs a superuser, or on PostgreSQL 15+ GRANT SET ON "
            f"PARAMETER {ddl.setting} TO {ddl.role} run by one; or remove it from {ddl.origin}"
        )
    if ddl.operation in ("create", "clone"):
        return (
            f"role {ddl.role!r} may not create databases: grant it with ALTER ROLE "
            f"{ddl.role} CREATEDB, or leave the URL unset to use the embedded server"
        )
    return not_owner(ddl.database, owner=ddl.owner, role=ddl.role)


def not_owner(database: str, *, owner: str | None, role: str) -> str:
    """Why ``role`` may not alter or drop ``database``: said alike by a drop and a dry run."""
    whose = f"role {owner!r}" if owner else "another role"
    return (
        f"database {database!r} belongs to {whose}, not {role!r}: only that role "
        "or a superuser may alter or drop it"
    )


def _in_use(ddl: Ddl) -> str:
    held = ddl.source if ddl.operation in ("create", "clone") and ddl.source else ddl.database
    copied = " (PostgreSQL copies every new database from it)" if held == "template1" else ""
    return (
        f"cannot clone {held!r}{copied}: another session is connected to it; find it with "
        f"SELECT pid, usename, application_name FROM pg_stat_activity WHERE datname = "
        f"'{held}', and close it"
        if held != ddl.database
        else f"another session holds {held!r}; close it, or wait for it to end"
    )


def _disk_full(_: Ddl) -> str:
    return (
        "the server's disk is full: free space where its data directory is, or drop "
        "databases nobody needs (python -m ci_kit clean drops the kit's leftovers)"
    )


def _read_only(_: Ddl) -> str:
    return (
        "the server accepts no writes: it is a standby (point the URL at the primary) "
        "or default_transaction_read_only is on for the role or the database"
    )


def _unencodable(ddl: Ddl) -> str:
    return (
        f"the name {ddl.database!r} cannot be written in the server's encoding: choose "
        "a base name in plain ASCII, or use a server created with UTF8"
    )


def _bad_setting(ddl: Ddl) -> str:
    return f"{ddl.origin} {ddl.setting} = {ddl.value!r} is refused by the server: correct it"


def _cancelled(_: Ddl) -> str:
    return (
        "the server cancelled or ended the statement (statement_timeout, lock_timeout, "
        "pg_cancel_backend, a shutdown): see the server's log, and run again"
    )


def _resources(_: Ddl) -> str:
    return "the server is out of a resource it needs: see its log, and raise the limit named"


def _exists(ddl: Ddl) -> str:
    return (
        f"a database named {ddl.database!r} appeared meanwhile (another run or a person "
        "created it): run again, or choose another base name"
    )


def _gone(ddl: Ddl) -> str:
    return f"{ddl.source or ddl.database!r} was dropped meanwhile: run again"


def _fallback(error: Exception) -> Rule:
    if isinstance(error, UnicodeError):
        return (UnencodableName, _unencodable)
    if isinstance(error, psycopg.OperationalError):  # no SQLSTATE: the connection broke
        return (ServerRefused, lambda _: "the connection to the server was lost: run again")
    return (ServerRefused, lambda _: "")


_RULES: dict[str, Rule] = {
    "42501": (PermissionDenied, _missing_right),
    "53100": (DiskFull, _disk_full),
    "53": (ServerRefused, _resources),
    "25006": (ReadOnlyServer, _read_only),
    "22021": (UnencodableName, _unencodable),
    "22P05": (UnencodableName, _unencodable),
    "55006": (DatabaseInUse, _in_use),
    "57": (ServerRefused, _cancelled),
    "42P04": (ServerRefused, _exists),
    "3D000": (ServerRefused, _gone),
}
