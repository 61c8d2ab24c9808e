"""3. Preparing a worker's database: clone the template, or run every migration.

As the history grows, migrating each worker's database costs more and more, while
a clone copies the finished files and should stay flat. Measured in-process on the
shared server: the kit's :func:`ci_kit.lifecycle.prepare_run` builds the template once,
:class:`ci_kit.workers.WorkerDatabases` clones it; the baseline creates an empty
database and runs ``alembic upgrade head`` in it, as a worker would.
"""

from __future__ import annotations

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import URL

from benchmarks.common import Context, Measurement, Section, milliseconds, timed
from benchmarks.suite import write_history
from ci_kit.config import load_config
from ci_kit.connecting import connect_kwargs
from ci_kit.dburl import render
from ci_kit.lifecycle import prepare_run
from ci_kit.workers import WorkerDatabases


def run(ctx: Context) -> Section:
    section = Section("preparation", "Worker database: clone template vs migrate, by history")
    histories = ctx.pick((10, 50, 200), (10, 50, 200, 500))
    clones, migrations = ctx.pick((10, 3), (20, 5))
    section.notes.append(
        f"{clones} clones and {migrations} migrations per history length; "
        "in-process against the shared embedded server (cluster in RAM)"
    )
    for revisions in histories:
        ini = write_history(ctx.work / f"history-{revisions}", revisions)
        ctx.log(f"preparation with {revisions} revisions")
        build, clone_ms = _clone_times(ctx, ini, revisions, clones)
        migrate_ms = milliseconds(
            [
                _migrate_once(ctx.server_url, ini, f"bench_migrate_{revisions}_{n}")
                for n in range(migrations)
            ]
        )
        params = {"revisions": revisions}
        section.measurements += [
            Measurement(f"clone @ {revisions}", "ms", clone_ms, params),
            Measurement(f"migrate @ {revisions}", "ms", migrate_ms, params),
            Measurement(f"template build @ {revisions}", "ms", [build * 1000], params),
        ]
        section.ratio(
            f"migrate / clone @ {revisions} revisions",
            f"migrate @ {revisions}",
            f"clone @ {revisions}",
            "how many clones one per-worker migration costs",
        )
    first, last = histories[0], histories[-1]
    section.ratio(
        f"clone @ {last} / clone @ {first}",
        f"clone @ {last}",
        f"clone @ {first}",
        "clone time as the history grows (1.0 is flat)",
    )
    section.ratio(
        f"migrate @ {last} / migrate @ {first}",
        f"migrate @ {last}",
        f"migrate @ {first}",
        "migration time as the history grows",
    )
    return section


def _clone_times(
    ctx: Context, ini: object, revisions: int, count: int
) -> tuple[float, list[float]]:
    """The template's build time, and the time of ``count`` clones of it."""
    table = {
        "url": render(ctx.server_url.set(database=f"bench_prep{revisions}_test")),
        "schema": str(ini),
    }
    config = load_config(ctx.work, table, {}, {})
    prepared = prepare_run(config, log=lambda _: None)
    try:
        seconds: list[float] = []
        for number in range(count):
            databases = WorkerDatabases(prepared.plan, f"gw{number}")
            try:
                seconds.append(timed(databases.create))
            finally:
                databases.close()
        return prepared.report.template_seconds, milliseconds(seconds)
    finally:
        prepared.close()


def _migrate_once(server: URL, ini: object, name: str) -> float:
    """Create an empty database and run every migration in it; the seconds both took."""

    def migrate() -> None:
        _admin(server, sql.SQL("CREATE DATABASE {}"), name)
        config = Config(str(ini))
        url = server.set(database=name).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        command.upgrade(config, "head")

    try:
        return timed(migrate)
    finally:
        _admin(server, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), name)


def _admin(server: URL, statement: sql.SQL, name: str) -> None:
    with psycopg.connect(**connect_kwargs(server), autocommit=True) as connection:
        connection.execute(statement.format(sql.Identifier(name)))
