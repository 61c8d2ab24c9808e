"""The database an environment's app uses: a configured URL, or the kept embedded server."""

from __future__ import annotations

import os
from collections.abc import Callable

from sqlalchemy.engine import URL

from ci.deploy.config import DeployConfig, EnvironmentConfig
from ci_kit.config import load_config, read_pyproject_table
from ci_kit.project import find_rootdir


def resolve(config: DeployConfig, env: EnvironmentConfig, log: Callable[[str], None]) -> URL:
    """The environment's database URL, password intact, creating an embedded one if needed.

    With no ``database_url`` configured, the database (``finance_report_staging``...)
    lives on the embedded PostgreSQL this project keeps running (the one
    ``python -m ci_kit server`` prints), created if missing and never dropped by the kit.
    That server is keyed by its project root, which the kit's commands find with
    pytest's rootdir rule; the deploy applies the same rule to its project directory,
    or it would start a second server beside the one ``ci_kit server`` keeps.
    """
    if env.database_url is not None:
        return env.database_url
    from ci_kit.lifecycle import start_embedded
    from ci_kit.provision import Admin

    root = find_rootdir(config.root)
    table = read_pyproject_table(root) or {}
    kit = load_config(root, {**table, "reuse": True, "server": "embedded"}, os.environ, {})
    url = start_embedded(kit, log=log)
    admin = Admin(url)
    try:
        if admin.ensure_database(env.database):
            log(f"created database {env.database}")
    finally:
        admin.close()
    return url.set(database=env.database)
