"""The README's examples are adopting projects: their suites pass, serially and on xdist.

``fastapi_alembic`` runs with the developer's ``DATABASE_URL`` pointing at a dev
database with rows, as on a laptop with a ``.env``: it must come out untouched.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import render, secret_forms, with_database
from tests.helpers.roles import throwaway_role
from tests.helpers.runs import environ_without_kit
from tests.helpers.server import TEST_PASSWORD, connect_to, create_unmarked, database_names

# The examples' whole suites, each in its own project: the slow tier.
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The example's suite on the embedded server, in this environment less the kit's."""
    environ = environ_without_kit()
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
        cwd=EXAMPLES / name,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "n2"])
def test_quickstart(workers: list[str]) -> None:
    result = run_example("quickstart", *workers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ci-kit: 38 tests (38 passed)" in result.stdout


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "n2"])
def test_fastapi_alembic_leaves_the_dev_database_alone(
    workers: list[str], server_url: URL, base_name: str
) -> None:
    dev = f"{base_name}_notes_dev"
    create_unmarked(server_url, dev)
    with connect_to(server_url, dev) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'my real note')")
    result = run_example(
        "fastapi_alembic", *workers, DATABASE_URL=render(with_database(server_url, dev))
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ci-kit: 13 tests (13 passed)" in result.stdout
    assert TEST_PASSWORD not in output
    with connect_to(server_url, dev) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        rows = conn.execute("SELECT * FROM notes").fetchall()
    assert (tables, rows) == ([("notes",)], [(1, "my real note")])


# The example's migrations and rows, as a developer's database at head holds them.
_SQLMODEL_DEV_SCHEMA = (
    'CREATE TABLE "user" (id uuid PRIMARY KEY, email varchar(255) NOT NULL UNIQUE, '
    "full_name varchar(255), is_superuser boolean NOT NULL)",
    "CREATE TABLE item (id uuid PRIMARY KEY, title varchar(255) NOT NULL, "
    'description varchar(255), owner_id uuid NOT NULL REFERENCES "user" ON DELETE CASCADE)',
    "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
    "INSERT INTO alembic_version VALUES ('1a31ce608336')",
    "INSERT INTO \"user\" VALUES ('00000000-0000-0000-0000-000000000001', 'me@example.com', "
    "'Me', true)",
    "INSERT INTO item VALUES ('00000000-0000-0000-0000-000000000002', 'my real item', NULL, "
    "'00000000-0000-0000-0000-000000000001')",
)


def _sqlmodel_dev_state(url: URL, dev: str) -> tuple[list[tuple[object, ...]], ...]:
    """The dev database's tables and rows: what a suite aimed at it would change."""
    with connect_to(url, dev) as conn:
        return (
            conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall(),
            conn.execute('SELECT email FROM "user"').fetchall(),
            conn.execute("SELECT title FROM item").fetchall(),
        )


@pytest.mark.parametrize("server", ["external", "embedded"])
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "n2"])
def test_sqlmodel_settings_adopts_by_its_table_alone(
    workers: list[str], server: str, server_url: URL, base_name: str
) -> None:
    """full-stack-fastapi-template's shape, configured by ``[tool.ci-kit]`` and nothing else.

    Its settings assemble a ``PostgresDsn`` from ``POSTGRES_*``, its engine is built at
    import, its ``env.py`` builds its own engine from the settings and its conftest
    commits through that engine: every one of them must land on the kit's databases,
    while the developer's ``POSTGRES_*`` name a dev database with rows. The role's
    password is URL-safe: ``MultiHostUrl.build`` does not percent-encode one.
    """
    password = secrets.token_urlsafe(16)
    with throwaway_role(server_url, password) as role_url:
        dev = f"{base_name}_app_dev"
        create_unmarked(role_url, dev)
        with connect_to(role_url, dev) as conn:
            for statement in _SQLMODEL_DEV_SCHEMA:
                conn.execute(statement)
        before = _sqlmodel_dev_state(role_url, dev)
        developers = {
            "POSTGRES_SERVER": role_url.host or "localhost",
            "POSTGRES_PORT": str(role_url.port or 5432),
            "POSTGRES_USER": role_url.username or "",
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": dev,
        }
        kit = {}
        if server == "external":
            kit = {
                "CI_KIT_DATABASE_URL": render(with_database(role_url, base_name)),
                "CI_KIT_BASE_NAME": base_name,  # the table's app_test is every run's
            }
        result = run_example("sqlmodel_settings", *workers, **developers, **kit)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "ci-kit: 26 tests (26 passed)" in result.stdout
        assert f"POSTGRES_DB was {dev!r}" in result.stdout
        assert "not pointed at the test databases" not in output
        assert {form for form in secret_forms(role_url) if form in output} == set()
        assert _sqlmodel_dev_state(role_url, dev) == before
        left = database_names(server_url, base_name) - {dev}
    if server == "external":
        assert len(left) == 1, left
        assert left.pop().startswith(f"{base_name}_tpl_")
    else:
        assert left == set()
