"""Application settings, read from the environment (and a developer's ``.env``)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    DATABASE_URL: str = "postgresql+psycopg://localhost/notes_dev"


@lru_cache
def get_settings() -> Settings:
    return Settings()
