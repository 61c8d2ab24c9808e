"""3. Preparing a worker's database: clone the template, or run every migration.

As the history grows, migrating each worker's database costs more and more, while
a clone copies the finished files and should stay flat. Measured in-process on the
shared server, each call timed once by :mod:`timeit`: the kit's public
:func:`ci_kit.prepare_run` builds the template once, :class:`ci_kit.WorkerDatabases`
clones it; the baseline creates an empty database and runs ``alembic upgrade head``
in it, as a worker would.
"""

from __future__ import annotations

import timeit
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import URL

from benchmarks.common import Context, Measurement, Section
from benchmarks.suite import write_history
from ci_kit import WorkerDatabases, connect_kwargs, load_config, prepare_run, render


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
        migrate_ms = [
            _migrate_once(ctx.server_url, ini, f"bench_migrate_{revisions}_{n}") * 1000
            for n in range(migrations)
        ]
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


def _clone_times(ctx: Context, ini: Path, revisions: int, count: int) -> tuple[float, list[float]]:
    """The template's build time, and the time of ``count`` clones of it."""
    table = {
        "url": render(ctx.server_url.set(database=f"bench_prep{revisions}_test")),
        "schema": str(ini),
    }
    config = load_config(ctx.work, table, {}, {})
    prepared = prepare_run(config)
    try:
        clone_ms: list[float] = []
        for number in range(count):
            databases = WorkerDatabases(prepared.plan, f"gw{number}")
            try:
                clone_ms.append(timeit.timeit(databases.create, number=1) * 1000)
            finally:
                databases.close()
        return prepared.report.template_seconds, clone_ms
    finally:
        prepared.close()


def _migrate_once(server: URL, ini: Path, name: str) -> float:
    """Create an empty database and run every migration in it; the seconds both took."""

    def migrate() -> None:
        _admin(server, sql.SQL("CREATE DATABASE {}"), name)
        config = Config(str(ini))
        url = render(server.set(database=name))
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        command.upgrade(config, "head")

    try:
        return timeit.timeit(migrate, number=1)
    finally:
        _admin(server, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), name)


def _admin(server: URL, statement: sql.SQL, name: str) -> None:
    with psycopg.connect(**connect_kwargs(server), autocommit=True) as connection:
        connection.execute(statement.format(sql.Identifier(name)))
