"""The README's examples are adopting projects: their suites pass, serially and on xdist.

``fastapi_alembic`` runs with the developer's ``DATABASE_URL`` pointing at a dev
database with rows, as on a laptop with a ``.env``: it must come out untouched.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import render, with_database
from tests.helpers.runs import environ_without_kit
from tests.helpers.server import TEST_PASSWORD, connect_to, create_unmarked

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
