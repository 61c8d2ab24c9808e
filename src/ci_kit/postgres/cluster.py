"""The embedded cluster: one PostgreSQL server owned by this process.

Without a data directory it is a throwaway cluster in a temporary directory, tuned
for tests (durability off), stopped and deleted when the run ends, by Ctrl-C or SIGTERM
too; with one it is kept, and reused by the next run. A kept cluster may be durable
instead (``durable=True``): PostgreSQL's own defaults, none of the test tuning, for data
that must survive a crash or a reboot.

Either way its URL is an ordinary one, ``postgresql+psycopg://postgres:<password>@
127.0.0.1:<port>/postgres``, which validators such as pydantic's ``PostgresDsn`` and
settings built from host and port accept. The server listens on 127.0.0.1 at a free
port, where every role needs its password (``scram-sha-256``): any local user can reach
that port. It listens on a private Unix socket too (trust: its directory is 0700),
through which a kept cluster made before it had a password gets one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy.engine import URL

from ci_kit.dburl import DRIVERNAME, short_hash
from ci_kit.errors import EmbeddedServerFailed
from ci_kit.postgres import interrupts
from ci_kit.postgres.binaries import PgBinaries, run, server_user, usable_bin_dir
from ci_kit.postgres.processes import (
    PREFIX,
    SETTINGS_FILE,
    backing_off,
    cluster_root,
    halt,
    postmaster,
    sweep_orphans,
    temp_root,
    write_owner,
)
from ci_kit.postgres.skeleton import Skeleton, cache_dir, skeleton_key

logger = logging.getLogger(__name__)

_LOOPBACK = "127.0.0.1"  # IPv4 only: a host line for ::1 would be one more way in
_PORT_ATTEMPTS = 5
_READY_SECONDS = 60.0
_PID_STATUS_LINE = 7
"""In ``postmaster.pid``, the postmaster's status ("starting", "ready"...): PostgreSQL 10+."""
PASSWORD_FILE = "ci-kit-password"  # noqa: S105 - a file name, not a password
"""In the data directory (0600): the next run reusing a kept cluster reads its password here."""
_HOST_LINES = (
    "# ci-kit: TCP on 127.0.0.1 only, and with the password (any local user reaches the port)\n"
    f"host    all             all             {_LOOPBACK}/32            scram-sha-256\n"
    f"host    replication     all             {_LOOPBACK}/32            scram-sha-256\n"
)
_SKELETON_OPTIONS = (
    # No password in a skeleton: every cluster copied from it gets its own. initdb
    # refuses scram without one, so trust on TCP, which _restrict_host_lines replaces.
    "--auth-local=trust",
    "--auth-host=trust",
    "--username=postgres",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
    "--no-instructions",
)
_TUNING = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    # Shared memory segments as files in the data directory rather than POSIX
    # segments in /dev/shm: a killed server's segments then go with its directory.
    "dynamic_shared_memory_type": "mmap",
}


class EmbeddedPostgres:
    """One PostgreSQL cluster owned by this process; a context manager.

    Without ``data_dir`` the cluster is ephemeral: a fresh temporary directory, gone
    after :meth:`stop`, which atexit calls too, and which SIGTERM reaches as Ctrl-C
    does (see :mod:`ci_kit.postgres.interrupts`). With it, it is persistent ("reuse"
    mode): initialised once, reused when already running, and left running by
    :meth:`stop` so that templates survive to the next run; :func:`stop_persistent`
    stops it.

    Every command it runs is logged at DEBUG, what a person should see (a small
    ``/dev/shm`` sending the cluster elsewhere) at INFO: see :mod:`ci_kit.logs`.

    ``durable`` (persistent clusters only) keeps PostgreSQL's defaults for ``fsync``,
    ``synchronous_commit`` and ``full_page_writes`` (all on), applies none of the test
    tuning, and lets ``initdb`` sync its files: a crash or a power cut loses nothing
    committed. The medium is the caller's choice: a durable cluster on tmpfs still
    dies with the machine (see :func:`~ci_kit.postgres.processes.filesystem_type`).
    """

    def __init__(
        self,
        binaries: PgBinaries,
        *,
        data_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
        durable: bool = False,
    ) -> None:
        if durable and data_dir is None:
            raise ValueError("a durable cluster needs a data_dir: an ephemeral one is deleted")
        self.binaries = binaries
        self.bin_dir = binaries.bin_dir
        """The binaries actually run: a copy when root's server user cannot reach them."""
        self.persistent_dir = None if data_dir is None else Path(data_dir).absolute()
        self.durable = durable
        self.settings = {**({} if durable else _TUNING), **(settings or {})}
        self.directory: Path | None = None
        """The temporary directory (ephemeral) or the data directory (persistent)."""
        self.url: URL | None = None
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
        if self.persistent_dir is None:
            # From here on, an interruption unwinds through stop(), whatever the step.
            interrupts.hold(self)
            atexit.register(self.stop)
        try:
            sweep_orphans()
            self._user = server_user()
            try:
                self.bin_dir = usable_bin_dir(self.binaries, self._user)
            except (OSError, subprocess.SubprocessError) as exc:
                raise self._failed("preparing the binaries", str(exc)) from exc
            if self.persistent_dir is None:
                self.url = self._start_ephemeral()
            else:
                with _locked(self.persistent_dir):
                    self.url = self._start_persistent(self.persistent_dir)
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Stop and delete an ephemeral cluster; leave a persistent one running. Idempotent."""
        atexit.unregister(self.stop)
        url, self.url = self.url, None
        if self.persistent_dir is None:
            with interrupts.deferred():
                try:
                    self._discard()
                finally:
                    interrupts.release(self)
        elif url is not None:
            logger.debug(
                "leaving PostgreSQL running from %s for the next run; "
                "stop it with: python -m ci_kit.postgres stop %s",
                self.persistent_dir,
                shlex.quote(str(self.persistent_dir)),
            )

    def _start_ephemeral(self) -> URL:
        root = cluster_root()
        with interrupts.deferred():  # never a directory that stop() would not know of
            base = self.directory = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
        write_owner(base)
        self._give(base)
        self._initdb(base / "data")
        return self._launch(base / "data", base, base / "server.log")

    def _start_persistent(self, data_dir: Path) -> URL:
        self.directory = data_dir
        url = running_url(data_dir)
        if url is not None:
            logger.debug("reusing the PostgreSQL server already running from %s", data_dir)
            return url
        self._check_reachable(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        if not (data_dir / "PG_VERSION").exists():
            self._give(data_dir)
            data_dir.chmod(0o700)
            self._initdb(data_dir)
        else:
            self._check_major(data_dir)
            if _saved_password(data_dir) is None:
                self._prepare_for_a_password(data_dir)
        socket_dir = data_dir
        if len(os.fsencode(data_dir)) > 80:  # a socket address holds ~100 bytes
            socket_dir = temp_root() / f"ci-kit-sock-{short_hash(str(data_dir))}"
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            self._give(socket_dir)
        return self._launch(data_dir, socket_dir, data_dir / "server.log")

    def _check_major(self, data_dir: Path) -> None:
        """A kept cluster of another major version cannot start: say how to go on.

        Not deleted for the user: besides templates (a cache) it may hold the
        databases of ``python -m ci_kit server --database``.
        """
        made_by = (data_dir / "PG_VERSION").read_text().strip()
        if made_by == str(self.binaries.major):
            return
        raise self._failed(
            "reusing the kept server",
            f"its data in {data_dir} was made by PostgreSQL {made_by}, which these "
            f"binaries cannot run; delete it with 'python -m ci_kit server --stop' (its "
            f"templates are rebuilt, databases made with --database are lost), or set "
            f"pg-bin-dir to PostgreSQL {made_by}'s binaries",
        )

    def _prepare_for_a_password(self, data_dir: Path) -> None:
        """A kept cluster an older kit made: trust on TCP too, no password file.

        A server of it still running listens on its socket only, and is stopped: the
        TCP listener needs a restart. Its host lines then ask for a password, which
        :meth:`_launch` sets over the socket; until then TCP lets nobody in.
        """
        if postmaster(data_dir) is not None:
            logger.info(
                "restarting the kept PostgreSQL server in %s to listen on %s with a password",
                data_dir,
                _LOOPBACK,
            )
            halt(data_dir, signal.SIGINT)
        _restrict_host_lines(data_dir)

    def _initdb(self, data: Path) -> None:
        """Make the cluster in ``data``: a copy of the cached skeleton when there can be one.

        A durable cluster is always made by ``initdb`` (with checksums, synced), and so is
        any cluster the cache cannot serve: off, unsafe, failing, or ``data`` not empty
        (``initdb`` then says why it will not go on). See :mod:`ci_kit.postgres.skeleton`.
        """
        skeleton = None if self.durable else self._skeleton()
        if skeleton is None or not self._from_skeleton(skeleton, data):
            self._initdb_with_password(data)
            return
        self._finish_initdb(data)

    def _from_skeleton(self, skeleton: Skeleton, data: Path) -> bool:
        """A passwordless cluster in ``data``, copied or made then cached; False: not served.

        On a miss ``initdb`` runs into ``data`` itself, then ``data`` is cached: as root
        the server user makes it, and may not reach the cache (under /root).
        """
        existed = data.exists()
        try:
            if existed and any(data.iterdir()):
                return False
            skeleton.prepare()
            copied = skeleton.copy_to(data)
            if copied:
                self._give_tree(data)
        except OSError as exc:
            logger.debug("not using the cache of initialised clusters (%s): running initdb", exc)
            _undo_copy(data, existed)
            return False
        if not copied:
            self._run_initdb(data, _SKELETON_OPTIONS)
            skeleton.store(data)
        return True

    def _skeleton(self) -> Skeleton | None:
        """The cache entry for these binaries and options; None when the cache is off."""
        if self.directory is None:
            return None
        root = cache_dir(beside=self.directory.parent)  # the clusters' directory
        if root is None:
            return None
        initdb = self.binaries.bin_dir / "initdb"  # the installation, not root's copy of it
        key = skeleton_key(initdb, self.binaries.version, _SKELETON_OPTIONS)
        return Skeleton(root, key, self.binaries.major)

    def _initdb_with_password(self, data: Path) -> None:
        """Plain ``initdb``, the password set and saved at once: no cache in the way."""
        password = secrets.token_urlsafe(24)
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256"]
        flags = ["--username=postgres", "--encoding=UTF8", "--locale=C"]
        # Durable: initdb syncs what it wrote, and checksums reveal pages the disk mangled.
        flags.append("--data-checksums" if self.durable else "--no-sync")
        with self._password_file(password) as pwfile:
            self._run_initdb(data, [*auth, f"--pwfile={pwfile}", *flags, "--no-instructions"])
        self._finish_initdb(data)
        self._save_password(data, password)

    def _run_initdb(self, data: Path, options: Sequence[str]) -> None:
        done = self._exec("initdb", [self.bin_dir / "initdb", "-D", data, *options])
        if done.returncode != 0:
            raise self._failed("initdb", _last_line(done.stderr + done.stdout))

    def _finish_initdb(self, data: Path) -> None:
        """The kit's settings file included, and its host lines: per cluster, never cached."""
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude_if_exists = '{SETTINGS_FILE}'\n")
        _restrict_host_lines(data)

    @contextlib.contextmanager
    def _password_file(self, password: str) -> Iterator[Path]:
        """initdb's ``--pwfile``: 0600, readable by the server's user, gone after."""
        handle, name = tempfile.mkstemp(prefix="ci-kit-pw-", dir=temp_root())
        path = Path(name)
        try:
            with os.fdopen(handle, "w") as pwfile:
                pwfile.write(f"{password}\n")
            self._give(path)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _save_password(self, data: Path, password: str) -> None:
        """Written last, atomically: a cluster with this file is one whose role has it."""
        staging = data / f"{PASSWORD_FILE}.tmp"
        staging.unlink(missing_ok=True)
        handle = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(handle, "w") as file:
            file.write(f"{password}\n")
        self._give(staging)
        staging.replace(data / PASSWORD_FILE)

    def _set_password(self, data: Path, socket_dir: Path, port: int) -> str:
        """Give a kept cluster of an older kit its password, over the (trusted) socket."""
        import psycopg
        from psycopg import sql

        password = secrets.token_urlsafe(24)
        alter = sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(password))
        try:
            with psycopg.connect(
                host=str(socket_dir), port=port, user="postgres", dbname="postgres", autocommit=True
            ) as conn:
                conn.execute("SET password_encryption = 'scram-sha-256'")
                conn.execute(alter)
        except psycopg.Error as exc:
            raise self._failed("setting the postgres password", _last_line(str(exc))) from None
        self._save_password(data, password)
        return password

    def _launch(self, data: Path, socket_dir: Path, logfile: Path) -> URL:
        """``pg_ctl start``, retrying TCP ports another process took since we picked them.

        ``pg_ctl -W`` (no wait), then the kit waits itself (:func:`_await_ready`):
        ``pg_ctl -w`` looks every 100 ms, and a cluster in RAM is ready in ~30 ms.
        """
        attempt = 0
        while True:
            attempt += 1
            port = _free_port()
            self._configure(data, port, socket_dir)
            offset = logfile.stat().st_size if logfile.exists() else 0
            stale = _pid_file(data)
            done = self._exec("pg_ctl start", [*self._ctl(data), "-l", logfile, "-W", "start"])
            failure = (
                _await_ready(data, logfile, offset, stale)
                if done.returncode == 0
                else _read_from(logfile, offset) or done.stderr
            )
            if failure is None:
                password = _saved_password(data) or self._set_password(data, socket_dir, port)
                return _url(port, password)
            if "already in use" in failure and attempt < _PORT_ATTEMPTS:
                continue
            raise self._failed("starting the server", _last_line(failure))

    def _configure(self, data: Path, port: int, socket_dir: Path) -> None:
        """Rewritten at each start: a reused data directory may need another port."""
        values = {
            **self.settings,
            "port": str(port),
            "listen_addresses": _LOOPBACK,
            "unix_socket_directories": str(socket_dir),
        }
        quote = {ord("'"): "''", ord("\\"): "\\\\"}
        conf = data / SETTINGS_FILE
        conf.write_text("".join(f"{k} = '{v.translate(quote)}'\n" for k, v in values.items()))
        self._give(conf)

    def _discard(self) -> None:
        """Stop the server, if any, and delete the temporary directory."""
        base, self.directory = self.directory, None
        if base is None or self.persistent_dir is not None:
            return
        # Immediate shutdown (SIGQUIT): no checkpoint, no waiting for sessions to
        # end, for data that is deleted the moment the server is gone.
        halt(base / "data", signal.SIGQUIT)
        shutil.rmtree(base, ignore_errors=True)

    def _check_reachable(self, data_dir: Path) -> None:
        """As root, refuse a data directory the server's user cannot get to, saying why.

        Otherwise ``initdb`` or ``pg_ctl`` fails on it with a bare "permission denied".
        One ``test -x`` as that user answers for every directory above it, ACLs and
        groups included; the directories are tried one by one only to name the culprit.
        """
        if self._user is None or self._can_enter(data_dir.parent):
            return
        blocked = next(
            (path for path in reversed(data_dir.parents) if not self._can_enter(path)),
            data_dir.parent,
        )
        try:
            mode = f"mode {stat.S_IMODE(blocked.stat().st_mode):o}"
        except OSError as exc:
            mode = exc.strerror or "unreadable"
        raise self._failed(
            "preparing the data directory",
            f"the {self._user.pw_name} user, who runs the server for root, cannot enter "
            f"{blocked} ({mode}); let it through (chmod o+x {shlex.quote(str(blocked))}) "
            "or keep the data directory elsewhere",
        )

    def _can_enter(self, directory: Path) -> bool:
        return self._exec("checking access", ["test", "-x", directory]).returncode == 0

    def _ctl(self, data: Path) -> list[str | Path]:
        return [self.bin_dir / "pg_ctl", "-D", data]

    def _exec(self, step: str, argv: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
        try:
            return run(argv, self._user)
        except (OSError, subprocess.SubprocessError) as exc:
            raise self._failed(step, str(exc)) from exc

    def _give(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _give_tree(self, top: Path) -> None:
        """``_give`` for a whole copied data directory, links themselves rather than targets."""
        if self._user is None:
            return
        uid, gid = self._user.pw_uid, self._user.pw_gid
        os.lchown(top, uid, gid)
        for directory, subdirectories, files in os.walk(top):
            for name in (*subdirectories, *files):
                os.lchown(Path(directory, name), uid, gid)

    def _failed(self, step: str, detail: str) -> EmbeddedServerFailed:
        origin = f"PostgreSQL {self.binaries.version} ({self.binaries.origin})"
        return EmbeddedServerFailed(f"embedded {origin}: {step} failed: {detail}")


def running_url(data: Path) -> URL | None:
    """The URL of a server already running from ``data`` and answering, read off its pid file.

    Never starts one: ``python -m ci_kit clean`` asks this to find the kept server
    without bringing up a server only to empty it. The pid file's fourth line is the
    port, its sixth the address listened on: empty for a server of an older kit,
    which listened on its socket only and has no password file, so None (the next
    start restarts it with both).
    """
    if postmaster(data) is None:
        return None
    lines = _pid_file(data)
    try:
        port, address = int(lines[3]), lines[5].strip()
    except (IndexError, ValueError):
        return None
    password = _saved_password(data)
    if not _says_ready(lines) or address != _LOOPBACK or password is None:
        return None
    return _url(port, password) if _answers((_LOOPBACK, port)) else None


def _saved_password(data: Path) -> str | None:
    """The password a cluster's ``postgres`` role was given, None before it had one."""
    try:
        return (data / PASSWORD_FILE).read_text().strip() or None
    except OSError:
        return None


def _restrict_host_lines(data: Path) -> None:
    """Replace pg_hba.conf's TCP lines by the kit's: 127.0.0.1 only, and a password.

    initdb writes lines for ::1 too, where the server does not listen; an older kit's
    trusted every local user. Comments and the socket's ``local`` lines stay.
    """
    hba = data / "pg_hba.conf"
    kept = [
        line
        for line in hba.read_text().splitlines(keepends=True)
        if not (line.split() or [""])[0].startswith("host")
    ]
    hba.write_text("".join(kept).rstrip("\n") + "\n\n" + _HOST_LINES)


def _undo_copy(data: Path, existed: bool) -> None:
    """Whatever a failed copy left, gone: ``data`` as it was before (missing, or empty)."""
    if not existed:
        shutil.rmtree(data, ignore_errors=True)
        return
    for child in data.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _answers(address: tuple[str, int]) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(address)
        except OSError:
            return False
        return True


def _url(port: int, password: str) -> URL:
    """An ordinary URL: host and port as PostgresDsn and settings from parts expect them."""
    return URL.create(
        DRIVERNAME,
        username="postgres",
        password=password,
        host=_LOOPBACK,
        port=port,
        database="postgres",
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((_LOOPBACK, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """Serialise runs sharing a persistent cluster: the second reuses the first's server."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with (data_dir.parent / f".{data_dir.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _await_ready(data: Path, logfile: Path, offset: int, stale: list[str]) -> str | None:
    """Wait for the server ``pg_ctl -W`` started in ``data``: None once it is ready, else
    what its log says went wrong.

    Looked at from 2 ms up (:func:`~ci_kit.postgres.processes.backing_off`): ~80 ms
    off every start against ``pg_ctl -w``'s 100 ms steps. Ready: its pid file's status
    line says so and its postmaster lives. Failed: a FATAL or PANIC in its log with no
    live postmaster (a client's FATAL while it starts is not the server's), a
    postmaster that died after writing its pid file (``stale``: the file as it was
    before the start, whose dead pid a new postmaster replaces), or 60 s gone, as
    ``pg_ctl -t 60`` would.
    """
    for _ in backing_off(_READY_SECONDS):
        lines = _pid_file(data)
        alive = postmaster(data) is not None
        if alive and _says_ready(lines):
            return None
        log = _read_from(logfile, offset)
        if not alive and ("FATAL:" in log or "PANIC:" in log or lines[:1] not in ([], stale[:1])):
            return log or "the server exited while starting"
    return _read_from(logfile, offset) or f"the server was not ready after {_READY_SECONDS:.0f} s"


def _pid_file(data: Path) -> list[str]:
    """The lines of ``data``'s ``postmaster.pid``, none when there is no such file."""
    try:
        return (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return []


def _says_ready(pid_file: list[str]) -> bool:
    """Whether a postmaster's pid file gives its status as ready for connections."""
    return len(pid_file) > _PID_STATUS_LINE and pid_file[_PID_STATUS_LINE].strip() == "ready"


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
    if lines[last].endswith("could not create any TCP/IP sockets"):  # why: a LOG line before
        why = [line for line in lines[:last] if "could not bind" in line]
        return f"{lines[last]} ({why[-1]})" if why else lines[last]
    return lines[last]
