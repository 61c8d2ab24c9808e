"""A run's life: prepare once (server, locks, sweep, template), clone per worker, clean up.

The controller (or a serial pytest process) calls :func:`prepare_run`; each worker
opens :class:`~ci_kit.workers.WorkerDatabases` from the :class:`~ci_kit.plan.RunPlan`
it was handed. Both ends are idempotent, because pytest-xdist has no teardown that
always runs: whatever a killed worker leaves, the controller's
:meth:`PreparedRun.close` or the next run's sweep removes.
"""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import ExitStack

import psycopg
from sqlalchemy.engine import URL

from ci_kit import janitor, outage
from ci_kit.admin import Admin
from ci_kit.cloning import check_free, clone, ensure_template
from ci_kit.config import KitConfig
from ci_kit.dburl import (
    DRIVERNAME,
    check_test_name,
    redact,
    run_base_name,
    template_database_name,
    worker_database_name,
)
from ci_kit.errors import CiKitError, Interrupted, first_line
from ci_kit.locks import base_lock, run_lock
from ci_kit.marks import Mark
from ci_kit.plan import RunPlan, RunReport
from ci_kit.postgres import EmbeddedPostgres, start_server
from ci_kit.postgres.choice import kit_command
from ci_kit.postgres.interrupts import taken_as_interrupt
from ci_kit.schema.process import ChildStart, ProjectSchema, project_schema, request_from
from ci_kit.variables import absent_database_url, rendered

logger = logging.getLogger(__name__)


class PreparedRun:
    """The controller's side of a run: it owns the server, the locks and the cleanup."""

    def __init__(
        self, plan: RunPlan, report: RunReport, admin: Admin, embedded: EmbeddedPostgres | None
    ) -> None:
        self.plan = plan
        self.report = report
        self._admin = admin
        self._embedded = embedded
        self._loss_told = False

    def lost_lock_line(self) -> str | None:
        """The run's one line once the server has ended its lock session, else None.

        Without that session the run's advisory locks are gone: another run would
        take its databases for a crashed run's and drop them under its tests. Cheap
        (no round trip while the session lives), so the plugin asks after every
        test. A server that went away is :mod:`ci_kit.outage`'s to tell.
        """
        reason = self._admin.lost()
        if reason is None or outage.server_is_gone(self.plan.server_url):
            return None
        self._loss_told = True
        return (
            f"ci-kit: the server ended this run's lock session "
            f"({redact(reason, self.plan.server_url)}); stopping: without its locks another "
            "run could take this run's databases for a crashed run's"
        )

    def close(self) -> list[str]:
        """Drop this run's databases, release its locks, stop an ephemeral server.

        An ephemeral server is deleted whole, its databases with it: nothing is
        dropped first. A server that went away during the run took the databases
        with it (or the next run's sweep takes them): nothing is left to drop, and
        nothing to say beyond the line the run already printed. A lock session the
        server ended is replaced by a new connection to drop them; a cleanup that
        still cannot finish is a warning line, and the run's outcome stays its tests'.
        """
        try:
            return [] if self.plan.disposable else self._drop_databases()
        finally:
            self._admin.close()
            if self._embedded is not None:
                self._embedded.stop()

    def _drop_databases(self) -> list[str]:
        url = self.plan.server_url
        try:
            with outage.tolerated(url):
                reason = self._admin.lost()
                if reason is not None and not self._loss_told:
                    logger.warning(
                        "the server ended this run's lock session during the run (%s): "
                        "its databases were not protected from other runs' sweeps",
                        redact(reason, url),
                    )
                admin = self._admin if reason is None else Admin(url)
                try:
                    return janitor.drop_run_databases(admin, self.plan.run_id)
                finally:
                    admin.close()
        except (CiKitError, psycopg.Error) as error:
            logger.warning(
                "could not drop this run's test databases (%s); the next run's sweep drops them",
                redact(first_line(error), url),
            )
        return []


def prepare_run(
    config: KitConfig, *, workers: int = 0, children: ChildStart | None = None
) -> PreparedRun:
    """Find or start the server, claim names, sweep leftovers, build or reuse the template.

    Progress a person wants to see is logged at INFO, every command the kit runs
    (the embedded server's ``initdb`` and ``pg_ctl``) at DEBUG (:mod:`ci_kit.logs`).
    With ``workers`` (an xdist controller), whatever would stop a worker from
    getting its database is found here, once, before any worker starts.
    ``children``: what the schema's child processes start from (this process as it
    is now by default; :mod:`ci_kit.background` takes it before its thread starts).
    """
    check_test_name(config.base_name, allow_any_name=config.allow_any_name)
    with project_schema(request_from(config), _nowhere(config), children) as schema:
        started = time.perf_counter()
        embedded, server_url, server_text = start_server(config)
        server_seconds = time.perf_counter() - started
        # A CI timeout's SIGTERM unwinds the preparation as Ctrl-C does, server or not.
        with taken_as_interrupt(), ExitStack() as undo:  # whatever fails, unwound in reverse
            if embedded is not None:
                undo.callback(embedded.stop)
            admin = Admin(server_url)
            undo.callback(admin.close)
            run = _prepare(config, schema, admin, embedded, server_text, server_seconds)
            _rehearse(admin, run.plan, workers)
            undo.pop_all()  # the run owns them now: PreparedRun.close
    return run


def _prepare(
    config: KitConfig,
    schema: ProjectSchema,
    admin: Admin,
    embedded: EmbeddedPostgres | None,
    server_text: str,
    server_seconds: float,
) -> PreparedRun:
    run_id = uuid.uuid4().hex[:12]
    admin.lock(run_lock(run_id))
    base = config.base_name
    if not admin.try_lock(base_lock(base)):
        base = run_base_name(base, run_id)
        logger.info(
            "another run is using %r on this server; this run uses %r", config.base_name, base
        )
    major, version = admin.server_version()
    # {url} names each database as the user wrote the URL (a raw libpq client reads
    # postgresql://); an embedded server's is the kit's own psycopg 3 URL.
    url_driver = DRIVERNAME if embedded is not None else config.url_driver or DRIVERNAME
    template = template_database_name(config.base_name, schema.reading.fingerprint(major))
    swept = janitor.sweep(admin, run_id=run_id, base=config.base_name, keep_template=template)
    started = time.perf_counter()
    built = ensure_template(
        admin,
        template,
        base=config.base_name,
        run_id=run_id,
        build=lambda url: _build_template(url, schema, config, url_driver),
    )
    kept = embedded is not None and embedded.persistent_dir is not None
    plan = RunPlan.for_server(
        admin.server_url,
        run_id=run_id,
        base_name=base,
        template=template,
        isolation=config.isolation,
        settings=dict(config.database_settings),
        env=dict(config.env),
        url_driver=url_driver,
        disposable=embedded is not None and not kept,
    )
    report = RunReport(
        server=server_text,
        version=version,
        base_name=base,
        template=template,
        schema=schema.reading.describe,
        template_built=built,
        template_seconds=time.perf_counter() - started,
        swept=tuple(swept),
        server_seconds=server_seconds,
        seed=config.seed,
        stop_command=kit_command(config.root) if kept else None,
    )
    return PreparedRun(plan, report, admin, embedded)


def _rehearse(admin: Admin, plan: RunPlan, workers: int) -> None:
    """Fail now, in one place, on what would make xdist workers fail one by one.

    A worker that cannot clone dies at start and xdist replaces it, again and
    again, or the run passes without it. So the controller checks the workers'
    names and makes one trial clone: a foreign database on a worker's name, a role
    without CREATEDB, a session on the template, a refused database setting.
    """
    if workers <= 0:
        return
    mark = Mark("worker", plan.run_id, plan.base_name)
    for index in range(workers):
        check_free(admin, worker_database_name(plan.base_name, f"gw{index}"), mark)
    trial = worker_database_name(plan.base_name, "trial")
    clone(admin, plan.template, trial, mark, plan.settings)
    admin.drop(trial, allowed=lambda existing: existing.run == plan.run_id)


def _nowhere(config: KitConfig) -> dict[str, str]:
    """The variables while the schema is read, before any server is known."""
    url = absent_database_url(config.url, f"{config.base_name}_schema_reader")
    return rendered(config.env, url, config.url_driver or DRIVERNAME)


def _build_template(url: URL, schema: ProjectSchema, config: KitConfig, url_driver: str) -> None:
    seeded = f", seeded by {config.seed}" if config.seed else ""
    logger.info("building template %s from %s%s", url.database, schema.reading.describe, seeded)
    try:
        # Code run by the build that reads the application's settings (an env.py that
        # imports them) sees the template, never the developer's database.
        schema.build(url, rendered(config.env, url, url_driver))
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, Interrupted):
            raise
        # ensure_template drops the half-built template on the way out.
        raise Interrupted(
            f"interrupted ({str(interrupt) or 'SIGINT'}) while building template "
            f"{url.database}; the half-built template is not kept, no test ran"
        ) from None
