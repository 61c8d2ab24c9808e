"""A test process's side of a run: its own clone of the template, and fresh clones per test.

Every xdist worker runs this, so it stands apart from the controller's preparation
(:mod:`ci_kit.lifecycle`): a worker needs its plan and the SQL to clone and drop, not
the schema code, the sweep or the server's start. What it creates it marks with the
run's id and drops only under that mark; a killed worker's leftovers go with the
controller's cleanup or the next run's sweep.
"""

from __future__ import annotations

import logging

import psycopg
from sqlalchemy.engine import URL

from ci_kit import outage
from ci_kit.admin import Admin
from ci_kit.cloning import clone
from ci_kit.dburl import fresh_database_name, redact, worker_database_name
from ci_kit.errors import CiKitError, ForeignDatabase, RunLockLost, first_line
from ci_kit.marks import Mark, MarkKind
from ci_kit.plan import RunPlan

logger = logging.getLogger(__name__)


class WorkerDatabases:
    """One test process's databases: its clone of the template, and per-test fresh clones."""

    def __init__(self, plan: RunPlan, worker_id: str | None) -> None:
        self.plan = plan
        self.name = worker_database_name(plan.base_name, worker_id)
        self._admin = Admin(plan.server_url)
        self._created: list[str] = []
        self._fresh_count = 0
        self._closed = False

    @property
    def url(self) -> URL:
        return self._admin.url_of(self.name)

    def create(self) -> URL:
        """Clone the template into this process's own database."""
        return self._clone(self.name, "worker")

    def check_ours(self, url: URL) -> None:
        """Raise unless ``url`` names a database this run created and marked.

        The last guard before a test touches a database: whatever went wrong
        upstream, no test runs on a database the kit did not create for this run.
        """
        name = url.database or ""
        exists, mark = self._admin.mark_of(name)
        if not exists or mark is None or mark.run != self.plan.run_id:
            raise ForeignDatabase(
                f"refusing to run tests on database {name!r}: it does not carry this "
                "run's ci-kit mark"
            )

    def create_fresh(self) -> URL:
        """A clone of the template for one test marked ``fresh``."""
        self._fresh_count += 1
        return self._clone(fresh_database_name(self.name, self._fresh_count), "fresh")

    def drop(self, url: URL) -> None:
        """Drop a database this object created; any other name is refused."""
        name = url.database
        if name not in self._created:
            return
        self._reconnect_if_lost()
        run_id = self.plan.run_id
        self._admin.drop(name, allowed=lambda mark: mark.run == run_id)
        self._created.remove(name)

    def close(self) -> None:
        """Drop what is left of this process's databases and disconnect; idempotent.

        What cannot be dropped is a warning line: the run's cleanup (the
        controller's, or the next run's sweep) takes it. On a disposable server
        the databases go with it: nothing to drop.
        """
        if self._closed:
            return
        self._closed = True
        if self.plan.disposable:
            self._admin.close()
            return
        try:
            with outage.tolerated(self.plan.server_url):
                self._reconnect_if_lost()
                for name in reversed(self._created):
                    self.drop(self._admin.url_of(name))
        except (CiKitError, psycopg.Error) as error:
            logger.warning(
                "could not drop %s (%s); the run's cleanup or the next run's sweep drops it",
                ", ".join(self._created),
                redact(first_line(error), self.plan.server_url),
            )
        finally:
            self._admin.close()

    def _reconnect_if_lost(self) -> None:
        """A session the server ended (``pg_terminate_backend``, a timeout) is replaced.

        A process's own session holds no lock, so a new one loses nothing.
        """
        if self._admin.lost() is not None:
            self._admin.close()
            self._admin = Admin(self.plan.server_url)

    def _clone(self, name: str, kind: MarkKind) -> URL:
        """Clone, unless the run lost its locks: its databases would not be protected."""
        self._reconnect_if_lost()
        if not self._admin.run_is_alive(self.plan.run_id):
            raise RunLockLost(
                f"run {self.plan.run_id} holds no lock on the server any more (its lock "
                "session was ended, or the run is gone): no database is cloned for it"
            )
        mark = Mark(kind, self.plan.run_id, self.plan.base_name)
        clone(self._admin, self.plan.template, name, mark, self.plan.settings)
        self._created.append(name)
        return self._admin.url_of(name)
