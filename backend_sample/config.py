"""Application settings.

Settings are read through :func:`get_settings` instead of at import time so that
importing the package never touches the environment or the database; tests and
the app factory pass explicit :class:`Settings` objects instead.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration, taken from environment variables."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    DATABASE_URL: str | None = None
    """SQLAlchemy URL of the application database (``postgresql+psycopg://...``)."""

    ADMIN_TOKEN: str | None = None
    """Secret for the ``POST /workspaces`` bootstrap endpoint; unset disables it."""

    APP_COMMIT: str = "unknown"
    """Commit the running build came from, reported by ``/healthz``."""


def get_settings() -> Settings:
    """Read the settings from the environment now (deliberately not cached)."""
    return Settings()
