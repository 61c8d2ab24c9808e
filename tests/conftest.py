"""Shared fixtures of the kit's own tests: a real PostgreSQL, and names nobody else uses.

The external server is the local PostgreSQL that ``scripts/setup`` starts, reached
as role ``ci_kit`` whose password contains ``@ : / % # ? +`` and a space. Set
``CI_KIT_TEST_SERVER_URL`` to use another. Without a server the tests that need
one are skipped locally and fail in CI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import alembic.ddl.postgresql  # noqa: F401  (see below)
import psycopg
import pytest
import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401  (see below)
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from ci_kit.admin import Admin, ensure_template, run_lock
from ci_kit.connecting import connect_kwargs
from ci_kit.dburl import DRIVERNAME, mask, parse_database_url, redact, render, with_database
from ci_kit.postgres import reuse_data_dir, running_url
from tests.deploy_helpers import (
    BASE,
    REGISTRY_PASSWORD,
    USER,
    Registry,
    Sshd,
    free_port,
    registry_unavailable,
    running_sshd,
    sshd_unavailable,
    write_yaml,
)

# The imports marked "see below" are loaded before any test runs on purpose:
# pytester removes, after each test, the modules first imported during it, and
# SQLAlchemy's PostgreSQL dialect registers SQL functions globally when imported;
# imported a second time it warns, and filterwarnings=error turns that into a
# failure that depends on test order.

TEST_PASSWORD = "p@ss:w/rd%20 #?+"
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


def new_base_name() -> str:
    """A base name no other test uses, that looks like a test database's to the kit."""
    return f"kit_{uuid.uuid4().hex[:8]}_test"


@pytest.fixture
def base_name(server_url: URL) -> Iterator[str]:
    """A base test database name unique to this test; whatever it left is dropped."""
    base = new_base_name()
    yield base
    for name in database_names(server_url, base):
        drop_leftover(server_url, name)


def drop_leftover(url: URL, name: str) -> None:
    """Drop a database a test left, whatever state a concurrent sweep puts it in meanwhile.

    Under xdist another test's run may be sweeping it at this very moment (its run
    is over): it may turn invalid (a DROP under way) or vanish between the listing
    and these statements. A template must stop being one before it can be dropped;
    an invalid database takes DROP only, and a refused ALTER ends the session, hence
    a connection of its own.
    """
    ident = sql.Identifier(name)
    with (
        psycopg.connect(**connect_kwargs(url), autocommit=True) as conn,
        contextlib.suppress(psycopg.Error),
    ):
        conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(ident))
    with psycopg.connect(**connect_kwargs(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


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


@contextlib.contextmanager
def live_run(server_url: URL, run: str) -> Iterator[Admin]:
    """A connection holding ``run``'s run lock, as a live run's does, until the block ends."""
    holder = Admin(server_url)
    try:
        holder.lock(run_lock(run))
        yield holder
    finally:
        holder.close()


@pytest.fixture
def deploy_database(server_url: URL, base_name: str) -> URL:
    """An empty database for a deploy test, password in the URL; ``base_name`` drops it."""
    create_unmarked(server_url, base_name)
    return with_database(server_url, base_name)


@pytest.fixture
def admin(server_url: URL) -> Iterator[Admin]:
    admin = Admin(server_url)
    yield admin
    admin.close()


def environ_without_kit() -> dict[str, str]:
    """This process's environment less the kit's settings: an inner run configures its own."""
    return {key: value for key, value in os.environ.items() if not key.startswith("CI_KIT_")}


def run_kit(cwd: Path, *args: str, url: URL | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m ci_kit ARGS`` in ``cwd``, configured by nothing but ``url``, if given."""
    env = environ_without_kit()
    if url is not None:
        env["CI_KIT_DATABASE_URL"] = render(url)
    return subprocess.run(
        [sys.executable, "-m", "ci_kit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


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
    """The maintenance URL of ``private_project``'s server (its superuser, a socket)."""
    url = running_url(reuse_data_dir(private_project))
    assert url is not None
    return url


def as_superuser(statement: str) -> None:
    """Run ``statement`` as the local server's superuser (root on a Debian machine)."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and the local server's postgres user")
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1", "-c", statement],
        check=True,
        capture_output=True,
        timeout=60,
    )


def database_names(url: URL, prefix: str) -> set[str]:
    """The databases on the server whose names start with ``prefix``."""
    with psycopg.connect(**connect_kwargs(url)) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    return {name for (name,) in rows}


def connect_to(url: URL, database: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(**connect_kwargs(with_database(url, database)), autocommit=True)


def running(pid: int) -> bool:
    """Alive and not a zombie: a reparented postmaster's zombie may linger unreaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def make_table(url: URL, database: str) -> None:
    with connect_to(url, database) as conn:
        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items (name) VALUES ('seed')")


def build_template(admin: Admin, name: str, base: str, run: str = "run1") -> bool:
    return ensure_template(
        admin,
        name,
        base=base,
        run_id=run,
        build=lambda url: make_table(url, str(url.database)),
    )


def create_unmarked(url: URL, name: str) -> None:
    """A database the kit did not create: it must survive everything the kit does."""
    with psycopg.connect(**connect_kwargs(url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def password_in_query(url: URL, password: str, **query: str) -> URL:
    """The same server, its password given as libpq's ``password`` query parameter."""
    return URL.create(
        url.drivername,
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query={"password": password, **query},
    )


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Poll ``condition`` until it holds; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real sshd on loopback accepting one generated key (see ``running_sshd``)."""
    if reason := sshd_unavailable():
        pytest.skip(reason)
    with running_sshd(tmp_path / "sshd") as server:
        (tmp_path / "known_hosts").write_text(server.known_hosts + "\n")
        yield server


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A real OCI registry (docker-registry) on loopback, htpasswd authentication."""
    if reason := registry_unavailable():
        pytest.skip(reason)
    root = tmp_path / "registry"
    root.mkdir()
    subprocess.run(
        ["htpasswd", "-iBc", str(root / "htpasswd"), USER],
        input=REGISTRY_PASSWORD, text=True, check=True, capture_output=True,
    )  # fmt: skip
    address = f"127.0.0.1:{free_port()}"
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": address, "secret": "test-only"},
        "auth": {"htpasswd": {"realm": "ci-kit-test", "path": str(root / "htpasswd")}},
    }
    write_yaml(root / "config.yml", config)
    with (root / "registry.log").open("wb") as log:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log
        )
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://{address}/v2/", timeout=1)
        except urllib.error.HTTPError as error:
            if error.code == 401:  # up, and asking for credentials
                break
        except OSError:
            pass
        assert process.poll() is None, (root / "registry.log").read_text()
        assert time.monotonic() < deadline, "the registry did not start"
        time.sleep(0.1)
    yield Registry(address)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def podman_args(tmp_path: Path) -> Iterator[list[str]]:
    """Podman storage private to the test, holding a base image made from a tarball."""
    if reason := registry_unavailable():
        pytest.skip(reason)
    # podman refuses a runroot path over 50 characters; pytest's tmp_path is longer.
    runroot = tempfile.mkdtemp(prefix="ci-kit-", dir="/tmp")
    args = ["--root", str(tmp_path / "storage"), "--runroot", runroot]
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "os-release").write_text("NAME=ci-kit-test-base\n")
    with tarfile.open(tmp_path / "base.tar", "w") as tar:
        tar.add(rootfs, arcname=".")
    subprocess.run(
        ["podman", "--storage-driver", "vfs", *args, "import", str(tmp_path / "base.tar"), BASE],
        check=True, capture_output=True,
    )  # fmt: skip
    yield args
    shutil.rmtree(runroot, ignore_errors=True)
