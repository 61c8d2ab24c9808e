"""Alembic environment.

Connection precedence (first found wins):

1. ``config.attributes["connection"]``: an open SQLAlchemy Connection handed over
   by the caller (the ci-kit test plugin migrates its template database this way;
   Alembic cookbook, "Sharing a Connection across one or more programmatic
   migration commands"). We neither commit nor close it: the caller owns it.
2. ``sqlalchemy.url`` from the Config (set programmatically, never in alembic.ini).
3. ``DATABASE_URL`` from the application settings.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.engine import create_engine, make_url

from backend_sample import models  # noqa: F401  (registers the tables on Base.metadata)
from backend_sample.config import get_settings
from backend_sample.db import Base

config = context.config
target_metadata = Base.metadata

if (
    config.config_file_name is not None
    and "connection" not in config.attributes
    and config.attributes.get("configure_logger", True)
):
    # Command-line use only: a program handing us a connection owns its logging.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or get_settings().DATABASE_URL
    if not url:
        raise RuntimeError(
            "no database to migrate: pass a connection in config.attributes['connection'], "
            "set sqlalchemy.url, or set DATABASE_URL"
        )
    return url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=False,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``)."""
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database, reusing a shared connection when given one."""
    shared: Connection | None = config.attributes.get("connection")
    if shared is not None:
        _configure(shared)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(make_url(_url()), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
