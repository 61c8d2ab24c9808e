"""ci-kit: fast, safe, parallel PostgreSQL-backed test suites.

The pytest plugin (``ci_kit.plugin``) is what most users touch; the names here are
for tools that prepare a run themselves. They are imported on first use: the
plugin imports this package in every pytest process, and a project that does not
use the kit must not pay for SQLAlchemy or psycopg.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CiKitError": "ci_kit.errors",
    "KitConfig": "ci_kit.config",
    "ensure_database": "ci_kit.admin",
    "forwarded_to": "ci_kit.logs",
    "load_config": "ci_kit.config",
    "read_pyproject_table": "ci_kit.config",
    "find_rootdir": "ci_kit.project",
    "PreparedRun": "ci_kit.lifecycle",
    "RunPlan": "ci_kit.plan",
    "WorkerDatabases": "ci_kit.workers",
    "prepare_run": "ci_kit.lifecycle",
    # A URL as the fixtures hand it over (``db_url``), password intact until the edge.
    "parse_database_url": "ci_kit.dburl",
    "with_database": "ci_kit.dburl",
    "render": "ci_kit.dburl",
    "mask": "ci_kit.dburl",
    "connect_kwargs": "ci_kit.connecting",
    "PostgresNotFound": "ci_kit.errors",
    # The kit's own cost in a process, as its closing line says it.
    "phase_seconds": "ci_kit.phases",
    "worker_start_share": "ci_kit.phases",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ci_kit' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
