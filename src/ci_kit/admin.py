"""The kit's DDL: create, clone and drop its databases, safely; SQL and nothing else.

Safety rests on two things. Every database the kit creates carries a mark (a JSON
``COMMENT ON DATABASE``) naming its kind and the run that made it, and nothing is
dropped without the right mark. Every run holds a session-level advisory lock
named after its run id for as long as it lives, so a later run can tell a crashed
run's leftovers (lock free) from a live run's databases (lock held) on the same
server, from any host. Which leftovers go, and when, is the janitor's policy
(:mod:`ci_kit.janitor`); this module carries it out and refuses any drop a mark
does not allow.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from ci_kit.connecting import connect, server_message
from ci_kit.dburl import advisory_lock_key, mask, with_database
from ci_kit.errors import (
    ConfigurationError,
    DatabaseInUse,
    ForeignDatabase,
    PermissionDenied,
)

MarkKind = Literal["worker", "template", "fresh"]
_MARK_PREFIX = "ci-kit "

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mark:
    """What the kit writes on every database it creates, and checks before a drop."""

    kind: MarkKind
    run: str
    base: str
    ready: bool = True

    def to_comment(self, name: str) -> str:
        """The comment for database ``name``: the mark, and the name it was made under."""
        return _MARK_PREFIX + json.dumps(asdict(self) | {"name": name}, sort_keys=True)

    @classmethod
    def from_comment(cls, comment: str | None, name: str) -> Mark | None:
        """The mark of database ``name``, or None for a comment the kit did not write there.

        A comment stays with a database that is renamed: one whose mark names
        another database was renamed by a person, to keep it, and is theirs now.
        """
        if not comment or not comment.startswith(_MARK_PREFIX):
            return None
        try:
            fields = json.loads(comment[len(_MARK_PREFIX) :])
            if fields.get("name") != name:
                return None
            return cls(
                kind=fields["kind"],
                run=str(fields["run"]),
                base=str(fields["base"]),
                ready=bool(fields["ready"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def ensure_database(server_url: URL, name: str) -> bool:
    """Create database ``name`` on the server unless it exists; True when it was created.

    The public way to a database that belongs to a person or a deployed app rather
    than to a test run (``python -m ci_kit server --database``, this repository's
    deploy): it carries no mark, so no sweep and no ``clean`` will ever drop it.
    """
    admin = Admin(server_url)
    try:
        return admin.ensure_database(name)
    finally:
        admin.close()


class Admin:
    """One run's maintenance connection: DDL on databases, and advisory locks.

    Advisory locks are local to the database they are taken in, so every run takes
    them over a connection to the same maintenance database.
    """

    def __init__(self, server_url: URL) -> None:
        self.server_url = server_url
        self._conn = connect(server_url)

    def close(self) -> None:
        """Close the connection, which releases every advisory lock this run holds."""
        self._conn.close()

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed)

    @property
    def role(self) -> str:
        return str(self.server_url.username or self._scalar("SELECT current_user"))

    def server_version(self) -> tuple[int, str]:
        """The server's major version and its full version string."""
        number = int(self._scalar("SHOW server_version_num"))
        return number // 10000, str(self._scalar("SHOW server_version"))

    def url_of(self, database: str) -> URL:
        return with_database(self.server_url, database)

    # Locks ------------------------------------------------------------------

    def lock(self, purpose: str, *, shared: bool = False) -> None:
        """Wait for an advisory lock, held until :meth:`unlock` or :meth:`close`."""
        function = "pg_advisory_lock_shared" if shared else "pg_advisory_lock"
        self._execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(function)), purpose)

    def try_lock(self, purpose: str) -> bool:
        return bool(self._scalar("SELECT pg_try_advisory_lock(%s)", advisory_lock_key(purpose)))

    def unlock(self, purpose: str, *, shared: bool = False) -> None:
        function = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
        self._execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(function)), purpose)

    @contextmanager
    def locked(self, purpose: str, *, waiting: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold ``purpose``'s lock for the block; ``waiting`` hears when another holds it."""
        if not self.try_lock(purpose):
            if waiting is not None:
                waiting()
            self.lock(purpose)
        try:
            yield
        finally:
            self.unlock(purpose)

    def run_is_alive(self, run_id: str) -> bool:
        """True while the run holding ``run_lock(run_id)`` is connected to the server."""
        purpose = run_lock(run_id)
        if not self.try_lock(purpose):
            return True
        self.unlock(purpose)
        return False

    # Databases --------------------------------------------------------------

    def marks(self) -> dict[str, Mark | None]:
        """Every database on the server with the kit's mark, or None for unmarked ones."""
        rows = self._conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname NOT IN ('template0', 'template1')"
        ).fetchall()
        return {name: Mark.from_comment(comment, name) for name, comment in rows}

    def mark_of(self, name: str) -> tuple[bool, Mark | None]:
        """Whether ``name`` exists, and its mark."""
        row = self._conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        ).fetchone()
        return (row is not None, Mark.from_comment(row[0], name) if row else None)

    def create(self, name: str, mark: Mark, *, template: str | None = None) -> None:
        """Create a database and mark it; fails on a name that exists."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        try:
            self._ddl(statement, name)
        except psycopg.errors.ObjectInUse:
            raise DatabaseInUse(
                f"cannot clone {template!r}: another session is connected to it; find it "
                f"with SELECT pid, usename, application_name FROM pg_stat_activity WHERE "
                f"datname = '{template}', and close it"
            ) from None
        self.set_mark(name, mark)

    def ensure_database(self, name: str) -> bool:
        """Create an unmarked database unless it exists: one the kit will never drop.

        For development databases (``python -m ci_kit server --database``), which
        belong to the person who asked for them, not to a test run.
        """
        if self.mark_of(name)[0]:
            return False
        self._ddl(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)), name)
        return True

    def set_mark(self, name: str, mark: Mark) -> None:
        self._ddl(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(mark.to_comment(name))
            ),
            name,
        )

    def seal_template(self, name: str, mark: Mark) -> None:
        """Mark a template complete; only now may runs clone it (pgtestdb's order)."""
        self._ddl(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(name)
            ),
            name,
        )
        self.set_mark(name, replace(mark, ready=True))

    def apply_settings(self, name: str, settings: Mapping[str, str]) -> None:
        """``ALTER DATABASE ... SET`` is not copied by a clone, so every clone gets it again."""
        for key, value in settings.items():
            try:
                self._ddl(
                    sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                        sql.Identifier(name), sql.Identifier(key), sql.Literal(value)
                    ),
                    name,
                )
            except (psycopg.errors.DataError, psycopg.errors.ProgrammingError) as error:
                raise ConfigurationError(
                    f"[tool.ci-kit] database-settings {key} = {value!r} is refused by the "
                    f"server: {server_message(str(error))}"
                ) from None

    def drop(self, name: str, *, allowed: Callable[[Mark], bool]) -> None:
        """Drop a database the kit created, after checking its mark.

        Connections are refused, then terminated, then the drop is forced, so a
        stray client cannot keep the database alive.
        """
        exists, mark = self.mark_of(name)
        if not exists:
            return
        if mark is None or not allowed(mark):
            raise ForeignDatabase(
                f"refusing to drop database {name!r}: it was not created by this kit run "
                "(no ci-kit mark, or another live run's); drop or rename it yourself, "
                "or choose another base name"
            )
        identifier = sql.Identifier(name)
        # A DROP interrupted mid-way (a worker's SIGINT, a timeout) leaves the database
        # invalid (datconnlimit -2). PostgreSQL answers any ALTER of it with FATAL,
        # closing this connection; DROP is the one statement it accepts.
        if not self._is_invalid(name):
            try:
                self._ddl(
                    sql.SQL(
                        "ALTER DATABASE {} WITH IS_TEMPLATE false ALLOW_CONNECTIONS false"
                    ).format(identifier),
                    name,
                )
            except psycopg.errors.InvalidCatalogName:
                return  # another run's sweep dropped it since we looked
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
        try:
            self._ddl(statement, name)
        except PermissionDenied:
            # FORCE ends other sessions only where this role may: an autovacuum worker
            # that started on the fresh database finishes in moments; a superuser's
            # psql does not, and the person must be told which session blocks.
            self._wait_for_autovacuum(name)
            self._ddl(statement, name)

    def _wait_for_autovacuum(self, name: str, *, seconds: float = 10.0) -> None:
        """Wait while only autovacuum holds ``name``; raise naming any other session."""
        deadline = time.monotonic() + seconds
        while True:
            # Autovacuum workers have no role; another role's session shows its role
            # even to an unprivileged one (not its backend_type).
            sessions = self._conn.execute(
                "SELECT pid, usename, coalesce(application_name, '') FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
            others = [row for row in sessions if row[1] is not None]
            if others:
                pid, user, application = others[0]
                raise DatabaseInUse(
                    f"cannot drop {name!r}: session {pid} of role {user!r} "
                    f"({application or 'no application name'}) is connected to it and role "
                    f"{self.role!r} may not end it; close that session, or run "
                    f"SELECT pg_terminate_backend({pid}) as a superuser"
                )
            if not sessions or time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def _is_invalid(self, name: str) -> bool:
        return bool(
            self._scalar("SELECT datconnlimit = -2 FROM pg_database WHERE datname = %s", name)
        )

    # Plumbing ---------------------------------------------------------------

    def _scalar(self, query: str, *params: object) -> Any:
        row = self._conn.execute(query, params).fetchone()
        return row[0] if row else None

    def _execute(self, statement: sql.Composed, purpose: str) -> None:
        self._conn.execute(statement, (advisory_lock_key(purpose),))

    def _ddl(self, statement: sql.Composed, name: str) -> None:
        try:
            self._conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as error:
            if "must be owner" in str(error):
                owner = self._scalar(
                    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", name
                )
                raise PermissionDenied(
                    f"database {name!r} belongs to role {owner!r}, not {self.role!r}: "
                    "only that role or a superuser may drop it"
                ) from None
            raise PermissionDenied(
                f"role {self.role!r} may not create or alter database {name!r} at "
                f"{mask(self.server_url)}: grant it with ALTER ROLE {self.role} CREATEDB, "
                "or leave the URL unset to use the embedded server"
            ) from None


def run_lock(run_id: str) -> str:
    """The advisory lock a run holds for its whole life."""
    return f"ci-kit:run:{run_id}"


def base_lock(base: str) -> str:
    """Held by the run that uses the plain base name; a concurrent run picks another."""
    return f"ci-kit:base:{base}"


def template_use_lock(template: str) -> str:
    """Held shared by every run cloning a template; the sweeper needs it exclusive."""
    return f"ci-kit:use:{template}"


def template_build_lock(template: str) -> str:
    """Serialises builds of one template, so two runs starting together build it once."""
    return f"ci-kit:build:{template}"


def ensure_template(
    admin: Admin,
    name: str,
    *,
    base: str,
    run_id: str,
    build: Callable[[URL], None],
) -> bool:
    """Make sure a complete template ``name`` exists; True when this run built it.

    The run keeps a shared lock on the template so no sweeper drops it while the
    run may still clone it. Builds are serialised by a second lock: a run that
    waited for another's build finds the template sealed and reuses it.
    """
    admin.lock(template_use_lock(name), shared=True)
    if _is_sealed(admin, name):
        return False

    def waiting() -> None:
        logger.info("waiting for another run to finish building template %s", name)

    with admin.locked(template_build_lock(name), waiting=waiting):
        if _is_sealed(admin, name):
            return False
        # Unsealed and nobody building it: a crashed build's leftovers.
        admin.drop(name, allowed=_is_template)
        mark = Mark("template", run_id, base, ready=False)
        admin.create(name, mark)
        try:
            build(admin.url_of(name))
        except BaseException:
            admin.drop(name, allowed=_is_template)
            raise
        admin.seal_template(name, mark)
    return True


def clone(admin: Admin, template: str, name: str, mark: Mark, settings: Mapping[str, str]) -> None:
    """(Re)create ``name`` from the template: an earlier copy must be this run's or a dead run's."""
    admin.drop(name, allowed=lambda existing: _replaceable(admin, existing, mark))
    admin.create(name, mark, template=template)
    admin.apply_settings(name, settings)


def check_free(admin: Admin, name: str, mark: Mark) -> None:
    """Raise unless :func:`clone` may (re)create ``name``: free, or an earlier copy of ours."""
    exists, existing = admin.mark_of(name)
    if exists and (existing is None or not _replaceable(admin, existing, mark)):
        raise ForeignDatabase(
            f"database {name!r} exists and was not created by the kit (or belongs to a "
            "live run), and an xdist worker of this run needs that name: drop or rename "
            "it yourself, or choose another base name"
        )


def _replaceable(admin: Admin, existing: Mark, mark: Mark) -> bool:
    return existing.kind == mark.kind and (
        existing.run == mark.run or not admin.run_is_alive(existing.run)
    )


def _is_sealed(admin: Admin, name: str) -> bool:
    exists, mark = admin.mark_of(name)
    return exists and mark is not None and mark.kind == "template" and mark.ready


def _is_template(mark: Mark) -> bool:
    return mark.kind == "template"
