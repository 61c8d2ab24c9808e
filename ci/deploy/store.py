"""Where an environment's state lives: with the environment, not with the clone.

A deploy reads and writes three things that every runner must see alike: the
history (what is live, what was before it), the releases that went live (their
manifests and artifacts, so any runner can roll back to them or promote them),
and the lock that keeps two deploys of one environment apart. A CI runner's
clone is thrown away after its job, so none of it may live there.

The location is Terraform's idea of a backend, kept to the two kinds a deploy
already has access to: a directory (``local``: this machine's, outside any clone;
or a shared mount) and a directory on a host reached over SSH (``ssh``: the host
the environment runs on). The ``command`` target names one explicitly with
``state: ssh://user@host/path`` or ``state: /shared/path``, since the platform it
drives has no place the deploy could write to by itself.

Writes replace a file in one rename; the lock is an ``flock``: held by this
process (through :mod:`filelock`) for a directory, and by a remote ``flock``
process tied to this deploy's SSH session for a host, so a deploy killed at any
moment never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import shlex
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import filelock

from ci.deploy.config import DeployConfig, EnvironmentConfig, SshLocation
from ci.deploy.errors import DeployConfigError, DeployLocked
from ci.deploy.shell import Log

LOCK_NAME = "deploy.lock"


class Store(Protocol):
    """Files of one environment's state, by relative name, and its lock."""

    @property
    def where(self) -> str: ...
    def read(self, name: str) -> bytes | None: ...
    def write(self, name: str, data: bytes, *, private: bool = False) -> None: ...
    def locked(self, *, timeout: float, log: Log) -> contextlib.AbstractContextManager[None]: ...


class DirectoryStore:
    """State in a directory of this machine (or a mount every runner shares)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def where(self) -> str:
        return str(self.root)

    def read(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None

    def write(self, name: str, data: bytes, *, private: bool = False) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, mode=0o600 if private else 0o644)

    @contextmanager
    def locked(self, *, timeout: float, log: Log) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.root / LOCK_NAME)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            log(f"waiting for another deploy holding {self.root / LOCK_NAME}")
            try:
                lock.acquire(timeout=timeout)
            except filelock.Timeout:
                raise DeployLocked(_locked_message(self.where, timeout)) from None
        try:
            yield
        finally:
            lock.release()


class SshStore:
    """State in a directory of a host, over the deploy's SSH connection (SFTP, flock)."""

    def __init__(self, connection: Callable[[], Any], host: str, root: str) -> None:
        self._connection = connection
        self.host = host
        self.root = root

    @property
    def where(self) -> str:
        return f"{self.host}:{self.root}"

    def _path(self, name: str) -> str:
        return str(PurePosixPath(self.root) / name)

    def read(self, name: str) -> bytes | None:
        try:
            with self._connection().sftp().open(self._path(name), "rb") as stream:
                return bytes(stream.read())
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes, *, private: bool = False) -> None:
        path = self._path(name)
        directory = str(PurePosixPath(path).parent)
        temporary = f"{directory}/.{PurePosixPath(path).name}.{uuid.uuid4().hex}.tmp"
        connection = self._connection()
        connection.run(f"mkdir -p {shlex.quote(directory)}", hide=True, in_stream=False)
        sftp = connection.sftp()
        with sftp.open(temporary, "wb") as stream:
            stream.chmod(0o600 if private else 0o644)
            stream.write(data)
        sftp.posix_rename(temporary, path)

    @contextmanager
    def locked(self, *, timeout: float, log: Log) -> Iterator[None]:
        """An ``flock`` held by a remote process for as long as this session lives.

        The remote shell takes the lock on fd 9, then becomes ``cat``, which keeps
        fd 9 open until its input ends: when this block ends, or when this process
        or its connection dies and sshd closes the session.
        """
        lock = shlex.quote(self._path(LOCK_NAME))
        script = (
            f"mkdir -p {shlex.quote(self.root)} && exec 9>>{lock} && "
            f"{{ flock -n 9 || {{ echo waiting; flock -w {int(timeout)} 9; }}; }} && "
            "echo locked && exec cat >/dev/null"
        )
        connection = self._connection()
        connection.open()
        channel = connection.client.get_transport().open_session()
        channel.exec_command(f"sh -c {shlex.quote(script)}")
        replies = channel.makefile("r")
        try:
            for line in replies:
                if line.strip() == "waiting":
                    log(f"waiting for another deploy holding {self.where}/{LOCK_NAME}")
                elif line.strip() == "locked":
                    break
            else:
                raise DeployLocked(_locked_message(self.where, timeout))
            yield
        finally:
            channel.shutdown_write()
            channel.close()


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` in one step: readers see the old content or the new.

    The temporary file is private until it has its final mode, so a secret is
    never readable by others, not even for a moment.
    """
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(data.encode() if isinstance(data, str) else data)
    Path(tmp.name).chmod(mode)
    Path(tmp.name).replace(path)


def _locked_message(where: str, timeout: float) -> str:
    return (
        f"another deploy of this environment has held its lock ({where}) for "
        f"{timeout:g} s; let it finish, or find it with invoke deploy.status"
    )


def store_for(config: DeployConfig, env: EnvironmentConfig) -> Store:
    """The environment's state location: its ``state`` setting, else its target's own.

    ``ssh``: ``<remote_path>/state`` on the environment's host. ``local``: this
    machine's ``machine_dir``, shared by every clone here. ``command``: only where
    configured, since no default would be seen by the next runner.
    """
    if isinstance(env.state, Path):
        return DirectoryStore(env.state)
    if env.state is not None:
        return _ssh_store(config, env.state)
    if env.target == "ssh":
        assert env.ssh_host is not None  # checked with the configuration
        assert env.remote_path is not None
        location = SshLocation(env.ssh_host, env.ssh_user, env.ssh_port, env.remote_path)
        return _ssh_store(config, location, subdirectory="state")
    if env.target == "local":
        return DirectoryStore(local_environment_dir(config, env.name))
    raise DeployConfigError(
        f"environment {env.name}: the command target needs a state location every runner "
        "shares, for its history, releases and lock: set state to ssh://user@host/path "
        "or to a shared directory"
    )


def local_environment_dir(config: DeployConfig, name: str) -> Path:
    """Where the local target keeps an environment: outside the clone, one per machine."""
    return config.machine_dir / "environments" / name


def _ssh_store(config: DeployConfig, location: SshLocation, subdirectory: str = "") -> SshStore:
    from ci.deploy.remote import connect

    opened: list[Any] = []

    def connection() -> Any:
        if not opened:
            opened.append(connect(location.host, location.user, location.port, config))
        return opened[0]

    root = str(PurePosixPath(location.path) / subdirectory) if subdirectory else location.path
    return SshStore(connection, location.host, root)
