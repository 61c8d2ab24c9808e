"""A run's life: prepare once (server, locks, sweep, template), clone per worker, clean up.

The controller (or a serial pytest process) calls :func:`prepare_run`; each worker
opens :class:`WorkerDatabases` from the :class:`RunPlan` it was handed. Both ends
are idempotent, because pytest-xdist has no teardown that always runs: whatever a
killed worker leaves, the controller's :meth:`PreparedRun.close` or the next run's
sweep removes.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from ci_kit import janitor, outage
from ci_kit.admin import (
    Admin,
    Mark,
    MarkKind,
    base_lock,
    check_free,
    clone,
    ensure_template,
    run_lock,
)
from ci_kit.config import KitConfig
from ci_kit.dburl import (
    check_test_name,
    fresh_database_name,
    render,
    run_base_name,
    short_hash,
    template_database_name,
    worker_database_name,
)
from ci_kit.errors import ForeignDatabase
from ci_kit.schema import SchemaSource, build_schema, fingerprint, parse_schema_source

if TYPE_CHECKING:
    from ci_kit.postgres import EmbeddedPostgres, PgBinaries

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunPlan:
    """What every worker needs from the controller, as plain values execnet can carry.

    The server URL travels as its parts, not as a rendered string, so a password
    with ``%`` or ``@`` in it arrives exactly as it left.
    """

    server: Mapping[str, Any]
    run_id: str
    base_name: str
    template: str
    isolation: str
    settings: Mapping[str, str] = field(default_factory=dict)
    url_env: str | None = None

    @property
    def server_url(self) -> URL:
        parts = dict(self.server)
        return URL.create(
            drivername=parts["drivername"],
            username=parts["username"],
            password=parts["password"],
            host=parts["host"],
            port=parts["port"],
            database=parts["database"],
            query=parts["query"],
        )

    def to_wire(self) -> dict[str, Any]:
        return asdict(self) | {"server": dict(self.server), "settings": dict(self.settings)}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> RunPlan:
        return cls(**wire)

    @classmethod
    def for_server(cls, url: URL, **fields: Any) -> RunPlan:
        server = {
            "drivername": url.drivername,
            "username": url.username,
            "password": url.password,
            "host": url.host,
            "port": url.port,
            "database": url.database,
            "query": dict(url.query),
        }
        return cls(server=server, **fields)


@dataclass(frozen=True)
class RunReport:
    """The facts a person wants at the top of a run."""

    server: str
    version: str
    base_name: str
    template: str
    schema: str
    template_built: bool
    template_seconds: float
    swept: tuple[str, ...]
    server_seconds: float = 0.0
    """Finding or starting the server: an embedded one's ``initdb`` and start."""

    def summary(self) -> str:
        """One line for the end of a run."""
        action = "built" if self.template_built else "reused"
        return (
            f"PostgreSQL {self.version} ({self.server.split(',')[0]}); "
            f"template {action} in {self.template_seconds:.2f} s"
        )

    def lines(self) -> list[str]:
        action = "built" if self.template_built else "reused"
        lines = [
            f"PostgreSQL {self.version} ({self.server})",
            f"template {self.template} {action} in {self.template_seconds:.2f} s "
            f"from {self.schema}; test databases {self.base_name}[_gwN]",
        ]
        if self.swept:
            lines.append(f"dropped {len(self.swept)} leftover database(s): {', '.join(self.swept)}")
        return lines


class PreparedRun:
    """The controller's side of a run: it owns the server, the locks and the cleanup."""

    def __init__(
        self, plan: RunPlan, report: RunReport, admin: Admin, embedded: EmbeddedPostgres | None
    ) -> None:
        self.plan = plan
        self.report = report
        self._admin = admin
        self._embedded = embedded

    def close(self) -> list[str]:
        """Drop this run's databases, release its locks, stop an ephemeral server.

        A server that went away during the run took the databases with it (or the
        next run's sweep takes them): nothing is left to drop, and nothing to say
        beyond the line the run already printed.
        """
        try:
            dropped: list[str] = []
            with outage.tolerated(self.plan.server_url):
                dropped = janitor.drop_run_databases(self._admin, self.plan.run_id)
            return dropped  # noqa: RET504 - the block above may end early: a lost server
        finally:
            self._admin.close()
            if self._embedded is not None:
                self._embedded.stop()


def prepare_run(
    config: KitConfig, *, log: Log, echo: Log | None = None, workers: int = 0
) -> PreparedRun:
    """Find or start the server, claim names, sweep leftovers, build or reuse the template.

    ``log`` receives progress a person wants to see; ``echo`` every command the
    kit runs (the embedded server's ``initdb`` and ``pg_ctl``), for verbose output.
    With ``workers`` (an xdist controller), whatever would stop a worker from
    getting its database is found here, once, before any worker starts.
    """
    check_test_name(config.base_name, allow_any_name=config.allow_any_name)
    source = parse_schema_source(config.schema, config.root)
    started = time.perf_counter()
    embedded, server_url, server_text = _start_server(config, log=log, echo=echo or log)
    server_seconds = time.perf_counter() - started
    with ExitStack() as undo:  # whatever fails or interrupts, unwound in reverse
        if embedded is not None:
            undo.callback(embedded.stop)
        admin = Admin(server_url)
        undo.callback(admin.close)
        run = _prepare(config, source, admin, embedded, server_text, server_seconds, log=log)
        _rehearse(admin, run.plan, workers)
        undo.pop_all()  # the run owns them now: PreparedRun.close
    return run


def _prepare(
    config: KitConfig,
    source: SchemaSource,
    admin: Admin,
    embedded: EmbeddedPostgres | None,
    server_text: str,
    server_seconds: float,
    *,
    log: Log,
) -> PreparedRun:
    run_id = uuid.uuid4().hex[:12]
    admin.lock(run_lock(run_id))
    base = config.base_name
    if not admin.try_lock(base_lock(base)):
        base = run_base_name(base, run_id)
        log(f"another run is using {config.base_name!r} on this server; this run uses {base!r}")
    major, version = admin.server_version()
    template = template_database_name(
        config.base_name, fingerprint(source, server_major=major, root=config.root)
    )
    swept = janitor.sweep(admin, run_id=run_id, base=config.base_name, keep_template=template)
    started = time.perf_counter()
    built = ensure_template(
        admin,
        template,
        base=config.base_name,
        run_id=run_id,
        build=lambda url: _build_template(
            url,
            source,
            config.root,
            config.url_env,
            quiet_alembic=config.alembic_logging == "quiet",
            log=log,
        ),
        log=log,
    )
    plan = RunPlan.for_server(
        admin.server_url,
        run_id=run_id,
        base_name=base,
        template=template,
        isolation=config.isolation,
        settings=dict(config.database_settings),
        url_env=config.url_env,
    )
    report = RunReport(
        server=server_text,
        version=version,
        base_name=base,
        template=template,
        schema=source.describe(),
        template_built=built,
        template_seconds=time.perf_counter() - started,
        swept=tuple(swept),
        server_seconds=server_seconds,
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


def _start_server(
    config: KitConfig, *, log: Log, echo: Log
) -> tuple[EmbeddedPostgres | None, URL, str]:
    external = config.external_server()
    if external is not None:
        return None, external, "external"
    from ci_kit.postgres import EmbeddedPostgres

    binaries = configured_binaries(config)
    log(f"starting embedded PostgreSQL {binaries.version} from {binaries.origin}")
    data_dir = reuse_data_dir(config.root, log=log) if config.reuse else None
    embedded = EmbeddedPostgres(binaries, data_dir=data_dir, log=echo, notice=log)
    url = embedded.start()
    kind = "embedded, kept for reuse" if config.reuse else "embedded"
    return embedded, url, f"{kind}, {binaries.origin}"


def configured_binaries(config: KitConfig) -> PgBinaries:
    """The server binaries the configuration names: ``pg-bin-dir``, else by ``embedded-binaries``.

    A configured directory is used or refused, never silently replaced by another.
    """
    from ci_kit.postgres import find_binaries

    explicit = config.pg_bin_dir is not None
    source = config.embedded_binaries
    return find_binaries(
        config.pg_bin_dir,
        search=not explicit and source != "wheel",
        allow_wheel=not explicit and source != "system",
    )


def start_embedded(config: KitConfig, *, log: Log) -> URL:
    """Start (or find) the embedded server the config describes; its maintenance URL."""
    embedded, url, _ = _start_server(config, log=log, echo=lambda _: None)
    assert embedded is not None, "start_embedded is for the embedded server"
    return url


def reuse_data_dir(root: Path, *, log: Log | None = None) -> Path:
    """Where a reused embedded cluster lives: per user and per project, outside the repo.

    Outside the repository because, as root, the server runs as another user who
    may not be able to enter the project's directory; in RAM where possible, like
    every embedded cluster, because clones are 25 times faster there. Where it
    already is, it stays; ``log`` hears why a new one does not go to ``/dev/shm``.
    """
    from ci_kit.postgres import kept_cluster_dir

    name = f"ci-kit-reuse-{os.getuid()}-{short_hash(str(root.resolve()))}"
    return kept_cluster_dir(name, log=log)


def _build_template(
    url: URL,
    source: SchemaSource,
    root: Path,
    url_env: str | None,
    *,
    quiet_alembic: bool,
    log: Log,
) -> None:
    log(f"building template {url.database} from {source.describe()}")
    # NullPool: no pooled connection may outlive the build, or cloning would wait
    # for it and then fail ("source database is being accessed by other users").
    engine = create_engine(url, poolclass=NullPool)
    try:
        # Code run by the build that reads the application's URL (an env.py that
        # imports the app's settings) sees the template, never the developer's database.
        with environment_variable(url_env, render(url)), engine.connect() as connection:
            build_schema(source, connection, root=root, quiet_alembic=quiet_alembic)
    finally:
        engine.dispose()


@contextmanager
def environment_variable(name: str | None, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` for the block, then what it was; nothing when no name."""
    if name is None:
        yield
        return
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


class WorkerDatabases:
    """One test process's databases: its clone of the template, and per-test fresh clones."""

    def __init__(self, plan: RunPlan, worker_id: str | None) -> None:
        self.plan = plan
        self.name = worker_database_name(plan.base_name, worker_id)
        self._admin = Admin(plan.server_url)
        self._created: list[str] = []
        self._fresh_count = 0

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
        run_id = self.plan.run_id
        self._admin.drop(name, allowed=lambda mark: mark.run == run_id)
        self._created.remove(name)

    def close(self) -> None:
        """Drop what is left of this process's databases and disconnect; idempotent."""
        if self._admin.closed:
            return
        try:
            with outage.tolerated(self.plan.server_url):
                for name in reversed(self._created):
                    self.drop(self._admin.url_of(name))
        finally:
            self._admin.close()

    def _clone(self, name: str, kind: MarkKind) -> URL:
        mark = Mark(kind, self.plan.run_id, self.plan.base_name)
        clone(self._admin, self.plan.template, name, mark, self.plan.settings)
        self._created.append(name)
        return self._admin.url_of(name)
