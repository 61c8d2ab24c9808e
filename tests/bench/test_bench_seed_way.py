"""The seed's-way baseline (``benchmarks.seed_way``) run as the benchmark runs it.

An inner project with a tiny Alembic history (two tables, then a seed-row
revision) is run through ``pytester`` with the kit disabled and the baseline
loaded in its place. Every inner test records what it found before committing
a row: any leak between tests, or a lost seed row, shows in that log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks.suite import write_history
from ci_kit.dburl import render, secret_forms
from tests.helpers.server import database_names

REPO = Path(__file__).resolve().parents[2]
PLUGIN_ARGS = ("-p", "no:ci_kit", "-p", "benchmarks.seed_way", "-p", "no:randomly")

SEED_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "seed"
down_revision = "r0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("currencies", sa.Column("code", sa.String(3), primary_key=True))
    op.execute("INSERT INTO currencies VALUES ('EUR'), ('USD')")
"""

# Each test records, before writing: the rows in t0, the seed rows, whether a
# table an earlier test created is still there; then commits a row and that
# table, and records the id the row got (1 if the sequence was reset too).
SUITE = """
import json, os
import pytest
from sqlalchemy import create_engine, text

def write_and_record(connection, db_url):
    row = {{
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "serial"),
        "db": db_url.database,
        "seen": connection.execute(text("SELECT count(*) FROM t0")).scalar_one(),
        "seeds": connection.execute(text("SELECT count(*) FROM currencies")).scalar_one(),
        "stray": connection.execute(text("SELECT to_regclass('stray') IS NOT NULL")).scalar(),
    }}
    connection.execute(text("CREATE TABLE IF NOT EXISTS stray ()"))
    row["id"] = connection.execute(
        text("INSERT INTO t0 (name) VALUES ('x') RETURNING id")
    ).scalar_one()
    connection.commit()
    with open({log!r}, "a") as log:
        log.write(json.dumps(row) + "\\n")

@pytest.mark.parametrize("n", range(3))
def test_session_commits(db_session, db_url, n):
    write_and_record(db_session.connection(), db_url)

@pytest.mark.db_isolation("rollback")  # the kit's marker: accepted, ignored
@pytest.mark.parametrize("n", range(3))
def test_url_only_commits(db_url, n):
    engine = create_engine(db_url)
    with engine.connect() as connection:
        write_and_record(connection, db_url)
    engine.dispose()

def test_no_database():
    pass
"""


def write_project(pytester: pytest.Pytester) -> Path:
    """Alembic history at the root (the default ``alembic.ini``), two test files; the log."""
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\naddopts = ["--strict-markers"]\nfilterwarnings = ["error"]\n'
    )
    write_history(pytester.path, 2)
    (pytester.path / "versions" / "seed.py").write_text(SEED_REVISION)
    log = pytester.path / "seen.jsonl"
    for part in ("a", "b"):
        pytester.makepyfile(**{f"test_{part}": SUITE.format(log=str(log))})
    return log


@pytest.fixture
def seed_env(monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str) -> None:
    """What the benchmark sets; an outer xdist worker's id must not leak into a serial run."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("BENCH_SEED_ADMIN_URL", render(server_url))
    monkeypatch.setenv("BENCH_SEED_BASE", base_name)
    for name in ("BENCH_SEED_RESET", "BENCH_SEED_ALEMBIC_INI", "PYTEST_XDIST_WORKER"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("seed_env")
@pytest.mark.parametrize("mode", ["schema", "truncate"])
@pytest.mark.parametrize("workers", [0, 2])
def test_every_test_starts_from_the_migrated_database(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    server_url: URL,
    base_name: str,
    mode: str,
    workers: int,
) -> None:
    monkeypatch.setenv("BENCH_SEED_RESET", mode)
    log = write_project(pytester)
    xdist = ("-n", str(workers), "--dist", "loadfile") if workers else ()
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, *xdist)
    result.assert_outcomes(passed=14)

    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 12
    assert all(row["seen"] == 0 and row["id"] == 1 and row["seeds"] == 2 for row in rows)
    if workers:
        names = {row["worker"]: row["db"] for row in rows}
        assert names == {"gw0": f"{base_name}_gw0", "gw1": f"{base_name}_gw1"}
    else:
        assert {row["db"] for row in rows} == {base_name}
    # schema mode rebuilds everything; truncate empties tables and keeps the schema
    strays: dict[str, list[bool]] = {row["worker"]: [] for row in rows}
    for row in rows:
        strays[row["worker"]].append(row["stray"])
    kept = mode == "truncate"
    assert all(seen == [False] + [kept] * (len(seen) - 1) for seen in strays.values())

    assert database_names(server_url, base_name) == set()
    output = "\n".join(result.outlines + result.errlines)
    assert not any(form in output for form in secret_forms(server_url))


@pytest.mark.usefixtures("seed_env")
@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("BENCH_SEED_RESET", "rollback", "BENCH_SEED_RESET takes one of schema, truncate"),
        ("BENCH_SEED_ADMIN_URL", "", "set BENCH_SEED_ADMIN_URL"),
        ("BENCH_SEED_BASE", "production", "refusing base database name 'production'"),
    ],
)
def test_a_bad_setting_is_one_line(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    server_url: URL,
    name: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv(name, value)
    write_project(pytester)
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.errlines if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(f"ERROR: seed_way: {says}")
    assert not any(form in lines[0] for form in secret_forms(server_url))
