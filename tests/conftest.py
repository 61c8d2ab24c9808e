"""Shared fixtures of the kit's own tests: a real PostgreSQL, and names nobody else uses.

The external server is the local PostgreSQL that ``scripts/setup`` starts, reached
as role ``ci_kit`` whose password contains ``@ : / % # ? +`` and a space. Set
``CI_KIT_TEST_SERVER_URL`` to use another. Without a server the tests that need
one are skipped locally and fail in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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

from ci_kit.dburl import DRIVERNAME, mask, parse_database_url, redact, with_database
from ci_kit.provision import Admin, connect_kwargs
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


@pytest.fixture
def base_name(server_url: URL) -> Iterator[str]:
    """A base test database name unique to this test; whatever it left is dropped."""
    base = f"kit_{uuid.uuid4().hex[:8]}_test"
    yield base
    with psycopg.connect(**connect_kwargs(server_url), autocommit=True) as conn:
        names = conn.execute(
            "SELECT datname, datconnlimit = -2 FROM pg_database WHERE datname LIKE %s",
            (base + "%",),
        ).fetchall()
        for name, invalid in names:
            ident = sql.Identifier(name)
            if not invalid:  # an invalid database takes DROP only; ALTER is FATAL
                conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(ident))
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))


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
