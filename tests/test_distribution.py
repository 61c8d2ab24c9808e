"""The kit as users get it: its built wheel, installed into a fresh environment, in a project
that is not ours.

The project under test has what real repositories have and the first version broke
on: a root package of its own named ``ci``, a ``conftest.py`` that defines
``--db-url`` and a ``db_session`` fixture of its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import render
from tests.helpers.runs import environ_without_kit
from tests.helpers.server import TEST_PASSWORD

# A wheel built and installed into fresh venvs: the slow tier.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

FOREIGN_CONFTEST = """
import pytest

def pytest_addoption(parser):
    parser.addoption("--db-url", default="postgresql://their/own_db", help="the project's own")

@pytest.fixture
def db_session():
    return "the project's own db_session"
"""

FOREIGN_TESTS = """
import json, os
import ci
from sqlalchemy import func, select
from models import Item

def test_the_projects_own_ci_package_and_option(request):
    assert ci.OWNER == "the project"
    assert request.config.getoption("--db-url") == "postgresql://their/own_db"

def test_the_projects_own_fixture_wins(db_session):
    assert db_session == "the project's own db_session"

def test_kit_database(db_connection, db_url):
    with open(os.environ["SEEN_LOG"], "a") as log:
        log.write(json.dumps({"db": db_url.database}) + "\\n")
    assert db_connection.scalar(select(func.count()).select_from(Item.__table__)) == 0
"""


@pytest.fixture(scope="module")
def kit_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kit's wheel, built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [_uv(), "build", "--wheel", "--out-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("ci_kit-*.whl")
    return wheel


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, kit_wheel: Path) -> Path:
    """A new virtual environment with the kit's wheel and pytest-xdist, nothing else."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([_uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            str(kit_wheel),
            "pytest-xdist",
        ],
        check=True,
        timeout=300,
    )
    return venv


@pytest.fixture
def foreign_project(tmp_path: Path) -> Path:
    project = tmp_path / "their_project"
    (project / "ci").mkdir(parents=True)
    (project / "ci" / "__init__.py").write_text('OWNER = "the project"\n')
    (project / "conftest.py").write_text(FOREIGN_CONFTEST)
    (project / "models.py").write_text(
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n"
        "class Base(DeclarativeBase):\n    pass\n\n"
        "class Item(Base):\n    __tablename__ = 'items'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
    )
    (project / "test_theirs.py").write_text(FOREIGN_TESTS)
    return project


def test_the_wheel_ships_the_library_and_nothing_else(kit_wheel: Path) -> None:
    names = zipfile.ZipFile(kit_wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"ci_kit", kit_wheel.name.split("-py")[0] + ".dist-info"}
    assert "ci_kit/py.typed" in names
    metadata = zipfile.ZipFile(kit_wheel).read(next(n for n in names if n.endswith("METADATA")))
    text = metadata.decode()
    assert "Classifier: Framework :: Pytest" in text
    assert "Provides-Extra: embedded" in text
    extras = {
        line.split(": ")[1] for line in text.splitlines() if line.startswith("Provides-Extra")
    }
    assert extras == {"embedded"}
    assert "Requires-Dist: psycopg>=" in text, "a library leaves the psycopg flavour to the app"


def test_a_project_with_its_own_ci_package_and_db_options_runs_on_the_kit(
    fresh_venv: Path, foreign_project: Path, server_url: URL, base_name: str
) -> None:
    (foreign_project / "pyproject.toml").write_text(
        f'[tool.ci-kit]\nbase-name = "{base_name}"\nschema = "models:Base"\n'
    )
    log = foreign_project / "seen.jsonl"
    result = _run(
        fresh_venv,
        foreign_project,
        ["-m", "pytest", "-n", "2", "-p", "no:cacheprovider"],
        CI_KIT_DATABASE_URL=render(server_url.set(database=base_name)),
        SEEN_LOG=str(log),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ci-kit: 3 tests (3 passed) on 2 workers" in output
    assert TEST_PASSWORD not in output
    seen = {line.split('"db": "')[1].split('"')[0] for line in log.read_text().splitlines()}
    assert seen <= {f"{base_name}_gw0", f"{base_name}_gw1"}
    assert seen, "the kit's fixtures ran"


def test_without_the_kit_enabled_pytest_imports_no_database_library(
    fresh_venv: Path, foreign_project: Path
) -> None:
    result = _run(fresh_venv, foreign_project, ["-X", "importtime", "-m", "pytest", "-k", "own"])
    assert result.returncode == 0, result.stdout + result.stderr
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "ci_kit" in imported, "the plugin is installed and loaded"
    assert not imported & {"sqlalchemy", "psycopg", "alembic"}


def _run(venv: Path, cwd: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environment = environ_without_kit()
    environment.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(venv / "bin" / "python"), *args],
        cwd=cwd,
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    found = str(uv) if uv.is_file() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to build and install the wheel (dependency group 'test')")
    return found
