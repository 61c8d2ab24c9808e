"""The kit's DDL: create, mark, seal, copy settings to and drop databases; SQL and nothing else.

One :class:`Admin` is one run's maintenance session. It creates every database
with a mark (:mod:`ci_kit.marks`) and refuses any drop the mark does not allow;
which leftovers go, and when, is the janitor's policy (:mod:`ci_kit.janitor`),
and which template and clones a run makes is :mod:`ci_kit.cloning`'s.

The session also holds the run's advisory locks (:mod:`ci_kit.locks` names them).
PostgreSQL keeps them per database and runs may connect to different maintenance
databases, so a lock is taken in this session's database and then checked
against ``pg_locks``: a holder anywhere on the server counts
(:meth:`Admin.try_lock`, :meth:`Admin.lock`). The session is configured as the
kit's own sessions must be (:func:`ci_kit.sessions.configure_session`).
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from ci_kit import outage
from ci_kit.connecting import connect
from ci_kit.dburl import advisory_lock_key, with_database
from ci_kit.errors import (
    CiKitError,
    DatabaseInUse,
    ForeignDatabase,
    PermissionDenied,
    first_line,
)
from ci_kit.locks import GRANTED_LOCK, lock_tag, run_lock
from ci_kit.marks import Mark
from ci_kit.server_errors import Ddl, Operation, explain, not_owner
from ci_kit.sessions import configure_session
from ci_kit.setting_values import split_entry, value_sql

logger = logging.getLogger(__name__)
# How often a lock waiter looks again at a holder in another database.
_LOCK_POLL_SECONDS = 0.1


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

    Advisory locks are local to the database they are taken in; runs on other
    maintenance databases see them through ``pg_locks`` (:meth:`_held_elsewhere`).
    """

    def __init__(self, server_url: URL) -> None:
        self.server_url = server_url
        self._conn = connect(server_url)
        configure_session(self._conn)

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
        """Wait for an advisory lock, held until :meth:`unlock` or :meth:`close`.

        In this database PostgreSQL queues the waiters; against a holder in another
        database the lock is taken, then checked: the backend with the higher pid
        steps aside until the other is done, the lower one keeps its place and
        waits, so two waiters never wait on each other and never both hold it.
        """
        function = "pg_advisory_lock_shared" if shared else "pg_advisory_lock"
        statement = sql.SQL("SELECT {}(%s)").format(sql.Identifier(function))
        self._execute(statement, purpose)
        while holders := self._held_elsewhere(purpose, shared=shared):
            stepping_aside = min(holders) < self._conn.info.backend_pid
            if stepping_aside:
                self.unlock(purpose, shared=shared)
            time.sleep(_LOCK_POLL_SECONDS)
            if stepping_aside:
                self._execute(statement, purpose)

    def try_lock(self, purpose: str) -> bool:
        """Take an exclusive advisory lock unless anyone holds it, in any database.

        Taken first, checked after: of two runs trying at once in different
        databases, at least the later one sees the other and lets go.
        """
        if not self._scalar("SELECT pg_try_advisory_lock(%s)", advisory_lock_key(purpose)):
            return False
        if self._held_elsewhere(purpose, shared=False):
            self.unlock(purpose)
            return False
        return True

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
            if not self.closed:  # a connection lost (the server gone) holds no lock
                self.unlock(purpose)

    def run_is_alive(self, run_id: str) -> bool:
        """True while the run holding ``run_lock(run_id)`` is connected to the server.

        Whatever database the run took it in: ``pg_locks`` lists them all.
        """
        high, low = lock_tag(run_lock(run_id))
        return bool(
            self._scalar(f"SELECT EXISTS (SELECT FROM pg_locks WHERE {GRANTED_LOCK})", high, low)
        )

    def lost(self) -> str | None:
        """Why the server ended this session (and its locks with it), or None while it lives.

        Cheap enough for every test: an idle session's socket has nothing to read
        until the server ends it (``pg_terminate_backend``, an idle timeout), so
        only then does this ask the server.
        """
        if self.closed:
            return "the connection is closed"
        readable, _, _ = select.select([self._conn.fileno()], [], [], 0)
        if not readable:
            return None
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as error:
            return first_line(error)
        return None

    def _held_elsewhere(self, purpose: str, *, shared: bool) -> list[int]:
        """The backends holding ``purpose`` in another database in a mode that conflicts."""
        high, low = lock_tag(purpose)
        rows = self._conn.execute(
            f"SELECT pid FROM pg_locks WHERE {GRANTED_LOCK} "
            "AND database <> (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND (mode = 'ExclusiveLock' OR NOT %s)",
            (high, low, shared),
        ).fetchall()
        return [pid for (pid,) in rows]

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

    def create(self, name: str, mark: Mark, *, template: str | None = None) -> int:
        """Create a database and mark it; fails on a name that exists. Returns its oid.

        The oid is what proves later that this is the database this session made,
        even if something else (a migration) overwrote its mark meanwhile.
        """
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        # Without TEMPLATE, PostgreSQL copies template1: a session there blocks it too.
        operation: Operation = "clone" if template else "create"
        self._ddl(statement, name, operation, source=template or "template1")
        with self._reported(operation, name):
            oid = int(self._scalar("SELECT oid FROM pg_database WHERE datname = %s", name))
        try:
            self.set_mark(name, mark)
        except CiKitError:
            self.discard(name, oid)  # unmarked, no sweep would ever drop it
            raise
        return oid

    def ensure_database(self, name: str) -> bool:
        """Create an unmarked database unless it exists: one the kit will never drop.

        For development databases (``python -m ci_kit server --database``), which
        belong to the person who asked for them, not to a test run.
        """
        with self._reported("create", name):
            if self.mark_of(name)[0]:
                return False
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        self._ddl(statement, name, "create", source="template1")
        return True

    def set_mark(self, name: str, mark: Mark) -> None:
        self._ddl(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(mark.to_comment(name))
            ),
            name,
            "mark",
        )

    def seal_template(self, name: str, mark: Mark) -> None:
        """Mark a template complete; only now may runs clone it (pgtestdb's order)."""
        self._ddl(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(name)
            ),
            name,
            "seal",
        )
        self.set_mark(name, replace(mark, ready=True))

    def apply_settings(
        self,
        name: str,
        settings: Mapping[str, str],
        *,
        role: str | None = None,
        origin: str = "[tool.ci-kit] database-settings",
    ) -> None:
        """``ALTER DATABASE ... SET`` is not copied by a clone, so every clone gets it again.

        With ``role``, ``ALTER ROLE role IN DATABASE ... SET``: a setting for that role
        only. ``origin`` names where the settings came from, for the error line.
        """
        target = sql.SQL("DATABASE {}").format(sql.Identifier(name))
        if role is not None:
            target = sql.SQL("ROLE {} IN DATABASE {}").format(
                sql.Identifier(role), sql.Identifier(name)
            )
        for key, value in settings.items():
            statement = sql.SQL("ALTER {} SET {} = {}").format(
                target, sql.Identifier(key), value_sql(key, value)
            )
            self._ddl(statement, name, "setting", setting=key, value=value, origin=origin)

    def copy_settings(self, template: str, name: str) -> None:
        """Give ``name`` the settings its template has (``pg_db_role_setting``), per role too.

        A migration's ``ALTER DATABASE <current> SET search_path = ...`` stays on the
        template, as a clone copies no such row; without this, a clone would not be
        what ``alembic upgrade head`` gives.
        """
        with self._reported("clone", name):
            rows = self._conn.execute(
                "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, "
                "s.setconfig FROM pg_db_role_setting s JOIN pg_database d "
                "ON d.oid = s.setdatabase WHERE d.datname = %s ORDER BY s.setrole",
                (template,),
            ).fetchall()
        origin = f"the template {template!r} (an ALTER DATABASE ... SET of its build)"
        for role, entries in rows:
            settings = dict(split_entry(entry) for entry in entries or ())
            self.apply_settings(name, settings, role=role, origin=origin)

    def drop(self, name: str, *, allowed: Callable[[Mark], bool]) -> None:
        """Drop a database the kit created, after checking its mark.

        Connections are refused, then terminated, then the drop is forced, so a
        stray client cannot keep the database alive.
        """
        with self._reported("drop", name):
            exists, mark = self.mark_of(name)
            if not exists:
                return
            if mark is None or not allowed(mark):
                raise ForeignDatabase(
                    f"refusing to drop database {name!r}: it was not created by this kit run "
                    "(no ci-kit mark, or another live run's); drop or rename it yourself, "
                    "or choose another base name"
                )
            self._drop_now(name)

    def drop_created(self, name: str, oid: int) -> None:
        """Drop the database :meth:`create` made as ``oid``, whatever its comment says now.

        A template's build runs the project's migrations, which may write their own
        ``COMMENT ON DATABASE`` and commit it: the mark is gone, but the oid, which
        only a new CREATE changes, still proves the database is the one this run made.
        """
        with self._reported("drop", name):
            if self._scalar("SELECT oid FROM pg_database WHERE datname = %s", name) == oid:
                self._drop_now(name)

    def discard(self, name: str, oid: int) -> None:
        """:meth:`drop_created` on the way out of a failure, which stays the error shown.

        A server gone took the database with it (or the next sweep does); any other
        refusal is a warning line, and the database is left.
        """
        try:
            with outage.tolerated(self.server_url):
                self.drop_created(name, oid)
        except CiKitError as cleanup:
            logger.warning("could not drop %s after a failure: %s", name, cleanup)

    def drop_refusal(self, name: str) -> str | None:
        """Why this role may not drop ``name`` (another role owns it), or None if it may.

        What a real drop would be refused for, told without trying: ``clean --dry-run``.
        """
        with self._reported("inspect", name):
            row = self._conn.execute(
                "SELECT pg_get_userbyid(datdba), pg_has_role(datdba, 'MEMBER') "
                "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
                "FROM pg_database WHERE datname = %s",
                (name,),
            ).fetchone()
        if row is None or row[1]:
            return None
        return not_owner(name, owner=row[0], role=self._role_name())

    def _drop_now(self, name: str) -> None:
        """Refuse connections, end them, drop: whoever holds the database on."""
        identifier = sql.Identifier(name)
        # A DROP interrupted mid-way (a worker's SIGINT, a timeout) leaves the database
        # invalid (datconnlimit -2). PostgreSQL answers any ALTER of it with FATAL,
        # closing this connection; DROP is the one statement it accepts.
        if not self._is_invalid(name):
            try:
                self._conn.execute(
                    sql.SQL(
                        "ALTER DATABASE {} WITH IS_TEMPLATE false ALLOW_CONNECTIONS false"
                    ).format(identifier)
                )
            except psycopg.errors.InvalidCatalogName:
                return  # another run's sweep dropped it since we looked
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
        try:
            self._ddl(statement, name, "drop")
        except PermissionDenied:
            # FORCE ends other sessions only where this role may: an autovacuum worker
            # that started on the fresh database finishes in moments; a superuser's
            # psql does not, and the person must be told which session blocks.
            self._wait_for_autovacuum(name)
            self._ddl(statement, name, "drop")

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

    def _ddl(
        self, statement: sql.Composed, name: str, operation: Operation, **context: Any
    ) -> None:
        with self._reported(operation, name, **context):
            self._conn.execute(statement)

    @contextmanager
    def _reported(self, operation: Operation, name: str, **context: Any) -> Iterator[None]:
        """Any server or driver error in the block as one line naming ``operation`` on ``name``.

        The SQLSTATE picks the error type and the hint (:mod:`ci_kit.server_errors`);
        the kit's own errors raised inside pass through as they are.
        """
        try:
            yield
        except CiKitError:
            raise
        except (psycopg.Error, UnicodeError) as error:
            refused_owner = getattr(error, "sqlstate", None) == "42501" and operation in (
                "drop",
                "mark",
                "seal",
            )
            ddl = Ddl(
                operation,
                name,
                self._role_name(),
                self.server_url,
                owner=self._owner(name) if refused_owner else None,
                **context,
            )
            raise explain(error, ddl) from None

    def _role_name(self) -> str:
        """The role the kit connects as, without a query: the session may be broken."""
        if self.server_url.username:
            return self.server_url.username
        try:
            return self._conn.info.user
        except psycopg.Error:  # closed: libpq no longer says
            return "the kit's role"

    def _owner(self, name: str) -> str | None:
        try:
            owner = self._scalar(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", name
            )
        except psycopg.Error:
            return None
        return None if owner is None else str(owner)
