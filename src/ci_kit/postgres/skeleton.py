"""A per-user cache of initialised data directories: ``initdb`` once, a copy after.

``initdb`` costs about half a second of CPU before any test can run; a copy of the
directory it made takes a tenth of that. So the first non-durable cluster made by
given binaries with given flags is copied into the cache (a "skeleton"), and later
clusters are copies of it. A skeleton holds no password: it is made with ``trust``
host lines, which the kit replaces by its own before any start, and each cluster
gets its own random password over its private socket when it first starts.

The cache lives beside the clusters, in ``ci-kit-initdb-<uid>`` (``/dev/shm`` when it
has room: about 40 MB per PostgreSQL version, until the next boot), or in
``$CI_KIT_CACHE_DIR`` (``off`` turns it off; empty is unset, as for every ``CI_KIT_*``
variable); each skeleton in ``initdb/<key>/data``. What another user could have
planted is never used: every directory on the way must be a real directory (no
symlink) of ours that nobody else can write to. And a
cache never makes a run fail: whatever goes wrong with it, the cluster is made by
``initdb`` as if there were none.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci_kit.dburl import short_hash

logger = logging.getLogger(__name__)

CACHE_ENV = "CI_KIT_CACHE_DIR"
DISABLED = "off"
"""The value of :data:`CACHE_ENV` that turns the cache off."""
_FORMAT = "1"
"""Part of every key: bumped when what a skeleton holds changes, so old ones are not used."""


def cache_dir(beside: Path, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The cache's directory, None when the cache is off.

    By default beside the clusters (``beside``: ``/dev/shm`` when it has room), so
    that caching a skeleton and copying one are both copies within RAM: about 0.05 s
    each, where a cache on disk made a run that fills it 0.3 s slower, the cost a
    one-off CI runner pays every time. ``$CI_KIT_CACHE_DIR`` puts it elsewhere, a
    directory a CI runner keeps between jobs for instance.
    """
    configured = environ.get(CACHE_ENV, "")
    if configured.strip().lower() == DISABLED:
        return None
    if configured:
        return Path(configured).expanduser().absolute()
    return beside / f"ci-kit-initdb-{os.geteuid()}"


def skeleton_key(initdb: Path, version: str, flags: Sequence[str]) -> str:
    """Which skeleton fits: other binaries, another version or other flags make another one.

    The binary's resolved path, not its directory as given: two symlinked paths to one
    installation share a skeleton, and a minor upgrade in place changes ``version``.
    """
    return short_hash("\0".join([_FORMAT, str(initdb.resolve()), version, *flags]))


@dataclass(frozen=True)
class Skeleton:
    """The cache entry ``<root>/initdb/<key>``, for binaries of PostgreSQL ``major``."""

    root: Path
    key: str
    major: int

    @property
    def entry(self) -> Path:
        return self.root / "initdb" / self.key

    @property
    def data(self) -> Path:
        return self.entry / "data"

    def prepare(self) -> None:
        """Make the cache's directories if missing; raise OSError unless they are safe.

        Unsafe: a directory that is a symlink, another user's, or writable by others.
        A skeleton in it could be anyone's.
        """
        for directory in (self.root, self.root / "initdb"):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _check_private(directory)

    def copy_to(self, data: Path) -> bool:
        """Copy the skeleton into ``data`` (missing or empty); False when there is none yet.

        Raises OSError when the entry is not safe (it is left alone: not ours to delete)
        or the copy fails. An entry of ours that is not whole is never copied: it is
        moved aside, and False has the caller make a cluster and :meth:`store` it.
        """
        if not os.path.lexists(self.entry):
            return False
        _check_private(self.entry)
        if os.path.lexists(self.data):  # missing: a broken entry, rebuilt below
            _check_private(self.data)
        problem = self._broken()
        if problem is not None:
            logger.debug("rebuilding the cached cluster in %s: %s", self.entry, problem)
            self._discard()
            return False
        logger.debug("copying the initialised cluster from %s to %s", self.data, data)
        copy_tree(self.data, data)
        data.chmod(0o700)
        return True

    def store(self, data: Path) -> None:
        """Cache a copy of ``data``, fresh from ``initdb``, for the next clusters.

        Copied beside the entry then renamed into place, so that a reader sees a whole
        skeleton or none. When two runs store at once one rename wins; the other's copy
        is deleted (its own cluster is already made). Failing to store is only logged.
        """
        staging: Path | None = None
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{self.key}-", dir=self.entry.parent))
            copy_tree(data, staging / "data")
            try:
                staging.rename(self.entry)
            except OSError:
                if not (self.data / "PG_VERSION").is_file():  # no other run won: a failure
                    raise
                logger.debug("another run cached the initialised cluster in %s", self.entry)
            else:
                staging = None
                logger.debug("caching the initialised cluster in %s", self.entry)
        except OSError as exc:
            logger.debug("could not cache the initialised cluster in %s: %s", self.entry, exc)
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)

    def _broken(self) -> str | None:
        """Why the entry is not a whole skeleton for these binaries, None when it is."""
        try:
            made_by = (self.data / "PG_VERSION").read_text().strip()
        except OSError as exc:
            return f"no PG_VERSION ({exc.strerror or exc})"
        if made_by != str(self.major):
            return f"made by PostgreSQL {made_by}, not {self.major}"
        return None

    def _discard(self) -> None:
        """Renamed aside first: a run copying from it meanwhile never sees it half deleted."""
        doomed = self.entry.parent / f".{self.key}-stale-{os.getpid()}"
        try:
            self.entry.rename(doomed)
        except OSError:
            return  # another run moved it first
        shutil.rmtree(doomed, ignore_errors=True)


def copy_tree(source: Path, target: Path) -> None:
    """Copy a data directory into ``target`` (missing or empty), links kept as links.

    ``shutil.copytree`` reports every file's failure at once (a full disk: hundreds);
    the first reason is enough, as an OSError like every other failure of the cache.
    """
    try:
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    except shutil.Error as error:
        reason = error.args[0][0][2]
        raise OSError(f"copying {source} failed: {reason}") from None


def _check_private(directory: Path) -> None:
    """Raise unless ``directory`` is a real directory of ours that only we can write to."""
    status = directory.lstat()
    if not stat.S_ISDIR(status.st_mode):
        raise OSError(f"{directory} is not a directory (a symlink?)")
    if status.st_uid != os.geteuid():
        raise OSError(f"{directory} belongs to uid {status.st_uid}, not to us")
    if status.st_mode & 0o022:
        raise OSError(f"{directory} is writable by others (mode {stat.S_IMODE(status.st_mode):o})")
