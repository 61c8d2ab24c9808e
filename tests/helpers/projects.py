"""An inner project for ``pytester``: a model, a suite that records what each test saw.

Every test of the suite records which database it saw and how many rows it found
before writing one; a leak between tests would show as a count above zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MODELS = """
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
"""

# Every test records which database it saw and how many rows it found before
# writing one; a leak between tests would show as a count above zero.
SUITE = """
import json, os
import pytest
from sqlalchemy import func, select, text
from models import Item

def record(db_url, seen):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "serial")
    with open({log!r}, "a") as log:
        log.write(json.dumps({{"worker": worker, "db": db_url.database, "seen": seen}}) + "\\n")

@pytest.mark.parametrize("n", range({count}))
def test_writes_and_commits(db_session, db_url, n):
    seen = db_session.scalar(select(func.count()).select_from(Item))
    db_session.add(Item(name=f"item {{n}}"))
    db_session.commit()
    record(db_url, seen)
    assert seen == 0
"""


def write_project(pytester: pytest.Pytester, base: str, count: int = 6, **extra: str) -> Path:
    """An inner project: pyproject with [tool.ci-kit], a model, and a suite; returns its log."""
    settings = "".join(f'{key} = "{value}"\n' for key, value in extra.items())
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.ci-kit]\nbase-name = "{base}"\nschema = "models:Base"\n{settings}',
    )
    return write_suite(pytester, count)


def write_suite(pytester: pytest.Pytester, count: int = 6) -> Path:
    """The model and the suite of an inner project, configured elsewhere; returns its log."""
    log = pytester.path / "seen.jsonl"
    pytester.makepyfile(models=MODELS)
    for part in ("a", "b"):
        pytester.makepyfile(**{f"test_{part}": SUITE.format(log=str(log), count=count)})
    return log


def seen(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


ALEMBIC_ENV = """
from alembic import context

context.configure(connection=context.config.attributes["connection"], target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""


def write_alembic_project(pytester: pytest.Pytester, base: str, migration: str) -> None:
    """An inner project whose schema is one Alembic revision, on the connection the kit hands."""
    pytester.makefile(
        ".toml", pyproject=f'[tool.ci-kit]\nbase-name = "{base}"\nschema = "alembic.ini"\n'
    )
    pytester.makefile(".ini", alembic="[alembic]\nscript_location = %(here)s/migrations\n")
    versions = pytester.mkdir("migrations") / "versions"
    versions.mkdir()
    (pytester.path / "migrations" / "env.py").write_text(ALEMBIC_ENV)
    (versions / "0001_only.py").write_text(migration)
