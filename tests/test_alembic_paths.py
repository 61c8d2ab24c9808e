"""An Alembic build seen from anywhere, and cut off: paths from the ini, one line when it stops.

``alembic upgrade head`` is run next to ``alembic.ini``; pytest is run from wherever
a person or a CI job happens to be. The kit's template must be the one the ini
describes whatever the current directory, and a build the server or a signal cuts
short must end the run in one line, leaving nothing behind.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.admin import Admin
from ci_kit.dburl import render, template_database_name
from ci_kit.schema import fingerprint
from ci_kit.schema.alembic import AlembicSchema
from tests.helpers.clusters import cluster_directory
from tests.helpers.runs import running, wait_for
from tests.helpers.server import database_names

ENV_PY = """
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""

REVISION = """
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None

def upgrade():
{body}
"""

SUITE = """
from sqlalchemy import text

def test_the_template_is_the_projects(db_connection):
    tables = db_connection.scalars(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ).all()
    assert set(tables) == {"alembic_version", "from_the_project"}
"""


pytestmark = pytest.mark.usefixtures("no_ambient_configuration")


def write_migrations(root: Path, body: str) -> None:
    """An Alembic script directory at ``root/migrations`` with one revision."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    indented = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    (versions / "0001.py").write_text(REVISION.format(body=indented))


def write_project(root: Path, base: str, body: str) -> Path:
    """A project whose ``alembic.ini`` names its migrations relatively, as ``alembic init`` does
    when edited by hand: ``script_location = migrations``. Returns the ini."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.ci-kit]\nbase-name = "{base}"\nschema = "alembic.ini"\n\n'
        '[tool.pytest.ini_options]\naddopts = "-p no:randomly"\n'
    )
    (root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    write_migrations(root, body)
    (root / "tests").mkdir()
    (root / "tests" / "test_app.py").write_text(SUITE)
    return root / "alembic.ini"


PROJECT_TABLE = 'op.create_table("from_the_project", sa.Column("id", sa.Integer, primary_key=True))'


@pytest.mark.parametrize(
    ("start", "args"),
    [
        ("backend", ()),
        ("backend/tests", ()),
        ("other", ("{root}/backend/tests",)),
        (".", ("backend/tests",)),
    ],
    ids=["project-root", "its-tests-directory", "a-sibling-with-its-own-migrations", "repo-root"],
)
def test_alembic_paths_are_relative_to_the_ini_from_any_directory(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    server_url: URL,
    admin: Admin,
    base_name: str,
    start: str,
    args: tuple[str, ...],
) -> None:
    """Every start builds the project's template: same name, same tables, named in the header."""
    ini = write_project(pytester.path / "backend", base_name, PROJECT_TABLE)
    # A decoy: the directory a run starts from has migrations of its own.
    write_migrations(pytester.path / "other", 'op.create_table("from_elsewhere")')
    monkeypatch.chdir(pytester.path / start)
    url = render(server_url.set(database=base_name))
    paths = [arg.format(root=pytester.path) for arg in args]
    result = pytester.runpytest_subprocess(*paths, "--ci-kit-url", url)

    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert f"scripts in {ini.parent / 'migrations'}" in output
    major = admin.server_version()[0]
    expected = template_database_name(
        base_name, fingerprint(AlembicSchema(ini), server_major=major)
    )
    assert f"template {expected} built" in output


def _slow_project(pytester: pytest.Pytester, base: str) -> Path:
    """A project whose migration says it started, then runs for a minute. Returns the sign."""
    started = pytester.path / "started"
    write_project(
        pytester.path,
        base,
        f"""
        import pathlib
        # pg_settings hides data_directory from the external server's role: "" there
        visible = "SELECT setting FROM pg_settings WHERE name = 'data_directory'"
        data = op.get_bind().exec_driver_sql(visible).scalar() or ""
        pathlib.Path({str(started)!r}).write_text(data)
        op.execute("SELECT pg_sleep(60)")
        """,
    )
    return started


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sent", "embedded", "workers"),
    [
        (signal.SIGINT, False, ()),
        (signal.SIGTERM, False, ()),
        (signal.SIGTERM, True, ()),
        (signal.SIGINT, False, ("-n", "2")),
        (signal.SIGTERM, True, ("-n", "2")),
    ],
    ids=[
        "ctrl-c",
        "ci-timeout-sigterm",
        "sigterm-embedded-server",
        "ctrl-c-xdist",
        "sigterm-embedded-server-xdist",
    ],
)
def test_an_interrupted_build_is_one_line_exit_2_and_leaves_nothing(
    pytester: pytest.Pytester,
    server_url: URL,
    base_name: str,
    sent: signal.Signals,
    embedded: bool,
    workers: tuple[str, ...],
) -> None:
    """The signal goes to the pytest process alone, not to the minute-long migration's:
    serially the build is the main thread's, at ``-n 2`` the controller's thread's."""
    started = _slow_project(pytester, base_name)
    url = () if embedded else ("--ci-kit-url", render(server_url.set(database=base_name)))
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *url, *workers],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(started, process)
        process.send_signal(sent)
        signalled = time.monotonic()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert time.monotonic() - signalled < 20, "the run waited for the migration to end"
    assert process.returncode == pytest.ExitCode.INTERRUPTED, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert "INTERNALERROR" not in stdout + stderr
    if workers:  # in the session: pytest's own way out carries the kit's line
        assert f"Exit: ci-kit: interrupted ({sent.name}) while preparing the run" in stdout
        assert not stderr.strip(), stderr
    else:
        (line,) = [line for line in stderr.splitlines() if line.strip()]
        assert line.startswith(f"ERROR: ci-kit: interrupted ({sent.name}) while building template ")
    if embedded:
        cluster = cluster_directory(started.read_text())
        assert not cluster.exists(), "the embedded cluster outlived the interrupted build"
    else:
        assert database_names(server_url, base_name) == set(), "the half-built template stayed"


@pytest.mark.slow
def test_a_server_stopped_mid_build_is_one_line_without_the_env_py_hint(
    pytester: pytest.Pytester, base_name: str
) -> None:
    """An immediate shutdown (``pg_ctl stop -m immediate``) while the migration runs."""
    started = pytester.path / "started"
    write_project(
        pytester.path,
        base_name,
        f"""
        import os, pathlib, signal, time
        data = op.get_bind().exec_driver_sql("SHOW data_directory").scalar()
        pathlib.Path({str(started)!r}).write_text(data)
        pid = int((pathlib.Path(data) / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
        time.sleep(1)
        op.execute("SELECT 1")
        """,
    )
    result = pytester.runpytest_subprocess()

    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    (line,) = [line for line in result.stderr.lines if line.strip()]
    assert line.startswith("ERROR: ci-kit: the PostgreSQL server at ")
    assert "went away while building the schema from Alembic" in line
    assert "env.py" not in line
    cluster = cluster_directory(started.read_text())
    assert not cluster.exists(), "the embedded cluster outlived the stopped server"
    pid_file = cluster / "data" / "postmaster.pid"
    assert not pid_file.exists() or not running(int(pid_file.read_text().split()[0]))
