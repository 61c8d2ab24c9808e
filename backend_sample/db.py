"""Declarative base, engine and session plumbing.

Nothing here connects at import time: :func:`make_engine` is called by the app
factory, and the FastAPI dependency :func:`get_session` takes the session factory
from ``request.app.state`` so tests can override it with their own session.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy import URL, Engine, MetaData, create_engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from backend_sample.errors import ServiceUnavailable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Stable constraint names, so migrations can refer to them and autogenerate agrees."""


class Base(DeclarativeBase):
    """Declarative base for every ORM model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str | URL) -> Engine:
    """Create the application's engine; ``pool_pre_ping`` survives database restarts."""
    return create_engine(make_url(url), pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Session factory used per request; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one session per request, closed afterwards.

    Services commit explicitly; anything left uncommitted is rolled back on close.
    """
    factory: sessionmaker[Session] | None = getattr(request.app.state, "sessionmaker", None)
    if factory is None:
        raise ServiceUnavailable("no database configured (set DATABASE_URL)")
    with factory() as session:
        yield session
