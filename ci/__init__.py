"""ci-kit: fast, safe, parallel PostgreSQL-backed test suites.

The pytest plugin (``ci.pytest_plugin``) is what most users touch; the names here
are for tools that prepare a run themselves, such as a nox session.
"""

from ci.config import KitConfig, load_config, read_pyproject_table
from ci.errors import CiKitError
from ci.lifecycle import PreparedRun, RunPlan, WorkerDatabases, prepare_run

__all__ = [
    "CiKitError",
    "KitConfig",
    "PreparedRun",
    "RunPlan",
    "WorkerDatabases",
    "load_config",
    "prepare_run",
    "read_pyproject_table",
]
