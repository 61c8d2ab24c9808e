"""ci-kit: fast, safe, parallel PostgreSQL-backed test suites.

The pytest plugin (``ci.pytest_plugin``) is what most users touch; the names here
are for tools that prepare a run themselves. They are imported on first use, so
that ``ci.sessions`` stays importable from a noxfile without the kit's
dependencies installed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CiKitError": "ci.errors",
    "KitConfig": "ci.config",
    "load_config": "ci.config",
    "read_pyproject_table": "ci.config",
    "PreparedRun": "ci.lifecycle",
    "RunPlan": "ci.lifecycle",
    "WorkerDatabases": "ci.lifecycle",
    "prepare_run": "ci.lifecycle",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ci' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
