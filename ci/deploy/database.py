"""The database an environment's app uses: a configured URL, or the deploy's own cluster.

With no ``database_url``, an environment's database (``finance_report_staging``...)
lives on a PostgreSQL cluster of the deploy's own, at ``<machine_dir>/postgres``:
outside any clone, on disk, durable (PostgreSQL's defaults for ``fsync``,
``synchronous_commit`` and ``full_page_writes``, none of the test cluster's tuning).
It is the kit's :class:`~ci_kit.postgres.EmbeddedPostgres` with a kept data directory,
started when it is not running and left running for the deployed apps; its databases
are created when missing and never dropped.
"""

from __future__ import annotations

import logging
import os
import shlex
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

from ci.deploy.config import DeployConfig, EnvironmentConfig
from ci.deploy.errors import DeployConfigError, DeployError
from ci.deploy.mounts import RAM_FILESYSTEMS, filesystem_type
from ci.deploy.shell import Log
from ci_kit.config import load_config, read_pyproject_table
from ci_kit.errors import CiKitError
from ci_kit.project import find_rootdir

if TYPE_CHECKING:
    from ci_kit.postgres import PgBinaries


def resolve(config: DeployConfig, env: EnvironmentConfig, log: Log) -> URL:
    """The environment's database URL, password intact; the deploy's cluster's if none is set.

    A configured ``database_url`` wins. Otherwise the deploy's own cluster is
    started (or found running) and the environment's database created if missing.
    """
    if env.database_url is not None:
        return env.database_url
    from ci_kit import ensure_database

    url = start_cluster(config, log)
    try:
        if ensure_database(url, env.database):
            log(f"created database {env.database}")
    except CiKitError as error:
        raise DeployError(f"the deploy's PostgreSQL at {cluster_dir(config)}: {error}") from None
    return url.set(database=env.database)


def cluster_dir(config: DeployConfig) -> Path:
    """The data directory of the deploy's own PostgreSQL cluster on this machine."""
    return config.machine_dir / "postgres"


def start_cluster(config: DeployConfig, log: Log) -> URL:
    """Start the deploy's durable cluster unless it runs; its maintenance URL (``postgres``).

    Refused on a filesystem in memory, where a reboot would take every database.
    """
    from ci_kit.logs import forwarded_to
    from ci_kit.postgres import EmbeddedPostgres

    data_dir = cluster_dir(config).absolute()
    kind = filesystem_type(data_dir)
    if kind in RAM_FILESYSTEMS:
        raise DeployConfigError(
            f"the deploy's PostgreSQL would keep its data in {data_dir}, on {kind} (memory), "
            "which a reboot empties; set deploy.state_root to a directory on disk"
        )
    try:
        binaries = _binaries(config)
    except CiKitError as error:
        raise DeployConfigError(f"the deploy's PostgreSQL: {error}") from None
    _prepare_directories(config, log)
    server = EmbeddedPostgres(binaries, data_dir=data_dir, durable=True)
    try:
        with forwarded_to(log, level=logging.DEBUG):  # every command, as the deploy shows its own
            url = server.start()
    except CiKitError as error:
        raise DeployError(
            f"the deploy's PostgreSQL at {data_dir} (below deploy.state_root) "
            f"did not start: {error}"
        ) from None
    log(
        f"the deployed apps' PostgreSQL runs from {data_dir} (durable, left running); "
        f"stop it with: python -m ci_kit.postgres stop {shlex.quote(str(data_dir))}"
    )
    return url


def _prepare_directories(config: DeployConfig, log: Log) -> None:
    """Make ``machine_dir``; as root, let the server's user through the kit's own directories.

    As root the server runs as ``postgres``, which must traverse every directory
    above its data directory. ``state_root`` and those below it are the kit's: they
    get search permission for others (``o+x``: entering, not listing). Directories
    above ``state_root`` are not ours to loosen; if one is in the way, the cluster
    refuses to start and names it.
    """
    machine_dir = config.machine_dir.absolute()
    machine_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    state_root = config.state_root.absolute()
    ours = [
        p for p in (machine_dir, *machine_dir.parents) if p == state_root or state_root in p.parents
    ]
    for directory in reversed(ours):
        status = directory.stat()
        if status.st_uid == 0 and not status.st_mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(status.st_mode) | stat.S_IXOTH)
            log(f"chmod o+x {shlex.quote(str(directory))}  # the postgres user must pass through")


def _binaries(config: DeployConfig) -> PgBinaries:
    """The server binaries the project's ``[tool.ci-kit]`` names, as its test runs find them."""
    from ci_kit.postgres import configured_binaries

    root = find_rootdir(config.root)
    table = read_pyproject_table(root) or {}
    return configured_binaries(load_config(root, {**table, "server": "embedded"}, os.environ, {}))
