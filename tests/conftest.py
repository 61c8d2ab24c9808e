"""Shared fixtures of the kit's own tests: a real PostgreSQL, and names nobody else uses.

The external server is the local PostgreSQL that ``scripts/setup`` starts, reached
as role ``ci_kit`` whose password contains ``@ : / % # ? +`` and a space. Set
``CI_KIT_TEST_SERVER_URL`` to use another. Without a server the tests that need
one are skipped locally and fail in CI.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import alembic.ddl.postgresql  # noqa: F401  (see below)
import psycopg
import pytest
import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401  (see below)
from sqlalchemy.engine import URL, make_url

from ci_kit.admin import Admin
from ci_kit.config import SETTINGS
from ci_kit.connecting import connect_kwargs
from ci_kit.dburl import DRIVERNAME, mask, parse_database_url, redact
from ci_kit.errors import PostgresNotFound
from ci_kit.logs import forwarded_to
from ci_kit.postgres import (
    EmbeddedPostgres,
    PgBinaries,
    find_binaries,
    reuse_data_dir,
    running_url,
    stop_persistent,
)
from tests.helpers.clusters import MakeServer
from tests.helpers.runs import run_kit
from tests.helpers.server import (
    TEST_PASSWORD,
    database_names,
    drop_leftover,
    live_run,
    new_base_name,
)

# The imports marked "see below" are loaded before any test runs on purpose:
# pytester removes, after each test, the modules first imported during it, and
# SQLAlchemy's PostgreSQL dialect registers SQL functions globally when imported;
# imported a second time it warns, and filterwarnings=error turns that into a
# failure that depends on test order.


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal sends it, even when a shell started this run in the background.

    POSIX shells without job control start background commands with SIGINT
    ignored, and an ignored signal stays ignored through every exec: the tests that
    send real Ctrl-Cs to runs and servers would see them dropped and time out. A
    handler, unlike SIG_IGN, is reset by exec, so xdist's workers and every run a
    test starts get the default again.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_DEFAULT_SERVER = URL.create(
    DRIVERNAME,
    username="ci_kit",
    password=TEST_PASSWORD,
    host="127.0.0.1",
    port=5432,
    database="postgres",
)


@pytest.fixture(scope="session")
def server_url() -> URL:
    """The maintenance URL of the external server, as a role with CREATEDB."""
    raw = os.environ.get("CI_KIT_TEST_SERVER_URL")
    url = parse_database_url(make_url(raw)) if raw else _DEFAULT_SERVER
    try:
        psycopg.connect(**{"connect_timeout": 5, **connect_kwargs(url)}).close()
    except psycopg.OperationalError as error:
        message = (
            f"no test PostgreSQL at {mask(url)} ({redact(str(error), url)}); run scripts/setup"
        )
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture
def base_name(server_url: URL) -> Iterator[str]:
    """A base test database name unique to this test; whatever it left is dropped."""
    base = new_base_name()
    yield base
    for name in database_names(server_url, base):
        drop_leftover(server_url, name)


@pytest.fixture
def no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``CI_KIT_*`` variable of this process reaches an inner run: each says exactly
    where its server is (CI sets ``CI_KIT_DATABASE_URL`` for the sample suite)."""
    for setting in SETTINGS:
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)


@pytest.fixture
def kit_log() -> Iterator[list[str]]:
    """The kit's log messages during the test, commands (DEBUG) included: what ``-v`` shows."""
    lines: list[str] = []
    with forwarded_to(lines.append, level=logging.DEBUG):
        yield lines


@pytest.fixture
def run_id(server_url: URL) -> Iterator[str]:
    """This test's own run: a unique id whose run lock a connection holds, as a live run's
    does, so that a concurrent test's sweep never takes its databases for a crashed run's.

    Every database a test marks as the kit's on the shared server belongs to such a
    run; a mark naming a run nobody holds is a crashed run's, for any sweep to take.
    """
    run = f"run{uuid.uuid4().hex[:8]}"
    with live_run(server_url, run):
        yield run


@pytest.fixture
def dead_run_id() -> str:
    """A crashed run: a unique id whose run lock nobody holds."""
    return f"dead{uuid.uuid4().hex[:8]}"


@pytest.fixture
def other_run_id() -> str:
    """The id of ``other_run``: its own per test, as run locks are server-wide and a
    concurrent test's other run must not keep this one's alive."""
    return f"other{uuid.uuid4().hex[:8]}"


@pytest.fixture
def other_run(server_url: URL, other_run_id: str) -> Iterator[Admin]:
    """A second, live run: its own connection holding its run lock."""
    with live_run(server_url, other_run_id) as other:
        yield other


@pytest.fixture
def admin(server_url: URL) -> Iterator[Admin]:
    admin = Admin(server_url)
    yield admin
    admin.close()


@pytest.fixture(scope="module")
def private_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project whose kept embedded server is running: a server of this module's own.

    For tests whose verdict a concurrent test could change on the shared server: a
    sweep or ``clean`` takes every crashed run's databases server-wide, so under
    xdist another test's run could take the leftovers a test expects its own next
    run to drop, and the shared server's checkpointer is everyone's.
    """
    root = tmp_path_factory.mktemp("private_project")
    started = run_kit(root, "server")
    assert started.returncode == 0, started.stderr
    yield root
    run_kit(root, "server", "--stop")
    data_dir = reuse_data_dir(root)
    shutil.rmtree(data_dir, ignore_errors=True)
    (data_dir.parent / f".{data_dir.name}.lock").unlink(missing_ok=True)


@pytest.fixture
def private_url(private_project: Path) -> URL:
    """The maintenance URL of ``private_project``'s server (its superuser, TCP, a password)."""
    url = running_url(reuse_data_dir(private_project))
    assert url is not None
    return url


@pytest.fixture(scope="module")
def system() -> PgBinaries:
    """The system's PostgreSQL binaries, the ones the embedded server runs by default."""
    try:
        return find_binaries(allow_wheel=False)
    except PostgresNotFound:
        pytest.skip("no system PostgreSQL installed")


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    """Embedded servers the test makes, stopped (and kept ones deleted) after it."""
    made: list[EmbeddedPostgres] = []

    def make(binaries: PgBinaries, **options: Any) -> EmbeddedPostgres:
        made.append(EmbeddedPostgres(binaries, **options))
        return made[-1]

    yield make
    for server in made:
        server.stop()
        if server.persistent_dir is not None:
            stop_persistent(server.persistent_dir)


@pytest.fixture
def reachable_temp() -> Iterator[Path]:
    """A new 0755 temp directory: as root, the postgres user must reach what is made
    inside (tmp_path is 0700). Removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="ci-kit-test-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


@pytest.fixture
def persistent_dir(reachable_temp: Path) -> Iterator[Path]:
    """A data directory the postgres user can reach; its server is stopped at the end."""
    yield reachable_temp / "pgdata"
    stop_persistent(reachable_temp / "pgdata")
