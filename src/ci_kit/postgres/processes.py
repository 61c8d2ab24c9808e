"""Where clusters live, who owns them, and stopping their postmasters.

A killed run never reaches its teardown and its postmaster, in its own session,
outlives it: every start first sweeps the clusters whose owner is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

PREFIX = "ci-kit-pg-"
"""Temporary clusters are ``<root>/ci-kit-pg-*``, in ``/dev/shm`` or the temp dir;
:func:`sweep_orphans` looks in both."""

SHM = Path("/dev/shm")  # noqa: S108 - clusters get private 0700 dirs inside it

SETTINGS_FILE = "ci-kit.conf"  # the kit's settings in every cluster it initialises
SHM_MINIMUM_MB = 256
"""Free space ``/dev/shm`` needs for a cluster to go there, in MB.

Measured with PostgreSQL 15 and 18: ``initdb`` leaves about 40 MB; each database
(the template, a worker's clone, a ``fresh`` test's) adds about 8 MB, mostly WAL
while it is created; the first checkpoint brings a template and four clones to
90 MB. Short of room, PostgreSQL fails mid-run: ``initdb`` PANICs at 20 MB, and a
two-worker run of a two-table schema fails at 64 MB. 256 MB leaves room for a
test suite's own writes.
"""


def stop_persistent(data_dir: Path) -> bool:
    """Stop the server a persistent ``data_dir`` left running; False when none was.

    Signals the postmaster directly (SIGINT is pg_ctl's fast shutdown), so no binaries,
    and no matching major version, are needed.
    """
    return halt(Path(data_dir).absolute(), signal.SIGINT)


def discard_persistent(data_dir: Path) -> int | None:
    """Stop a kept cluster and delete its directory; the MB it freed, None if none was there.

    A kept cluster lives in RAM, where a stopped one still takes its size until
    the next boot. Only a real directory (no link) holding the kit's own settings
    file is deleted: the path is the kit's, but ``/dev/shm`` is anyone's.
    """
    data_dir = Path(data_dir).absolute()
    stop_persistent(data_dir)
    try:
        directory, conf = data_dir.lstat(), (data_dir / SETTINGS_FILE).lstat()
    except OSError:
        return None
    if not (stat.S_ISDIR(directory.st_mode) and stat.S_ISREG(conf.st_mode)):
        return None
    size = size_mb(data_dir)
    shutil.rmtree(data_dir)
    return size


def size_mb(directory: Path) -> int:
    """What a directory's files take, in whole MB; links neither followed nor counted.

    Files and directories that go meanwhile count for nothing: another process may
    be deleting the cluster (``os.walk`` skips a directory it can no longer list,
    where ``Path.rglob`` raises).
    """
    total = 0
    for folder, _, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                status = Path(folder, name).lstat()
                total += 0 if stat.S_ISLNK(status.st_mode) else status.st_size
    return total // 2**20


def sweep_orphans() -> list[Path]:
    """Stop and delete the temporary clusters whose owning process is gone.

    A directory without our ``owner.json``, or whose owner is alive, is never touched.
    """
    swept: list[Path] = []
    for base in cluster_directories():
        if not _provably_ours(base):
            continue
        try:
            owner = json.loads((base / "owner.json").read_text())
            pid, started = int(owner["pid"]), owner.get("proc_start")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if _owner_alive(pid, started):
            continue
        logger.debug(
            "removing orphaned PostgreSQL cluster %s (its owner, pid %s, is gone)", base, pid
        )
        halt(base / "data", signal.SIGQUIT)
        shutil.rmtree(base, ignore_errors=True)
        swept.append(base)
    return swept


def _provably_ours(base: Path) -> bool:
    """Whether ``base`` is a cluster directory this user's kit made, reached by no link.

    /dev/shm and /tmp are shared: anyone can plant ``ci-kit-pg-x/owner.json`` with a
    dead pid and a ``data`` link to someone else's cluster. Only a real directory,
    writable by nobody else, holding a real ``owner.json`` that this user wrote
    (nobody else can make a file of ours; as root the directory itself belongs to
    the server's user) and a real ``data`` directory, or none yet, is swept.
    """
    try:
        directory = base.lstat()
        owner = (base / "owner.json").lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(directory.st_mode) or directory.st_mode & 0o022:
        return False
    if not (stat.S_ISREG(owner.st_mode) and owner.st_uid == os.geteuid()):
        return False
    try:
        data = (base / "data").lstat()
    except FileNotFoundError:
        return True  # stopped before initdb: nothing runs there
    except OSError:
        return False
    return stat.S_ISDIR(data.st_mode)


def cluster_root() -> Path:
    """Where a new cluster goes: in RAM (``/dev/shm``) when it has room, else the temp dir.

    Cloning a template is dominated by file creation, not fsync: measured here,
    ``CREATE DATABASE ... TEMPLATE`` took about 300 ms on disk and 12 ms in RAM,
    with ``fsync`` off in both cases. A ``/dev/shm`` with less than
    :data:`SHM_MINIMUM_MB` free (Docker's default is 64 MB) would fail the run
    mid-way, so the cluster goes to the temp dir instead, and an INFO record says so.
    """
    if not _usable(SHM):
        return temp_root()
    stats = os.statvfs(SHM)
    free = stats.f_bavail * stats.f_frsize // 2**20
    if free >= SHM_MINIMUM_MB:
        return SHM
    fallback = temp_root()
    logger.info(
        "%s has %d MB free (< %d MB): the embedded cluster goes to %s, slower clones",
        SHM,
        free,
        SHM_MINIMUM_MB,
        fallback,
    )
    return fallback


def kept_cluster_dir(name: str) -> Path:
    """The directory of the kept cluster ``name``: where it already is, else where one fits.

    A cluster created in the temp dir while ``/dev/shm`` was small stays there, and
    one in ``/dev/shm`` stays there when space runs short: the next run finds it.
    """
    for root in _roots():
        if (root / name).exists():
            return root / name
    return cluster_root() / name


def cluster_directories(prefix: str = PREFIX) -> list[Path]:
    """Every cluster directory named ``prefix*`` on this machine, wherever it went:
    by default the temporary clusters, anyone's run's."""
    return sorted(path for root in _roots() for path in root.glob(f"{prefix}*"))


def _roots() -> list[Path]:
    """Every place a cluster may be: :func:`cluster_root`'s choice can change between runs."""
    shm = [SHM] if _usable(SHM) else []
    return list(dict.fromkeys([*shm, temp_root()]))  # TMPDIR may be /dev/shm itself


def _usable(directory: Path) -> bool:
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)


def temp_root() -> Path:
    """The temp dir, unless so deep that a socket path in it would outgrow ~100 bytes."""
    root = Path(tempfile.gettempdir())
    return root if len(os.fsencode(root)) <= 60 else Path("/tmp")  # noqa: S108


def write_owner(base: Path) -> None:
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


def postmaster(data: Path) -> int | None:
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


def halt(data: Path, sig: signal.Signals) -> bool:
    """Signal the postmaster of ``data`` and wait for it to go; escalate to SIGKILL."""
    pid = postmaster(data)
    if pid is None:
        return False
    for current, patience in ((sig, 60.0), (signal.SIGKILL, 10.0)):
        logger.debug("kill -%s %s  # the postmaster of %s", current.name, pid, data)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, current)
        if any(postmaster(data) != pid for _ in backing_off(patience)):
            break
    return True


def backing_off(seconds: float) -> Iterator[None]:
    """Yield at once, then after pauses from 2 ms doubling up to 50 ms, for ``seconds``.

    For watching a server change state: an immediate shutdown or a start in RAM takes
    milliseconds and is seen soon after (``pg_ctl`` looks every 100 ms), a slow one
    is not polled hard.
    """
    deadline = time.monotonic() + seconds
    pause = 0.002
    while True:
        yield
        if time.monotonic() >= deadline:
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
