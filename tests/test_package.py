"""The public namespaces, ``ci_kit`` and ``ci_kit.postgres``: their names, and nothing else.

Both resolve some names on first use, so that importing the package costs nothing
heavy; a name they do not offer must still fail as any missing name does. The
names a tool outside the kit needs (the URL helpers, the kit's phase timings)
are tested here as such a tool uses them.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

import ci_kit
import ci_kit.postgres

MODELS = """
from sqlalchemy import Column, Integer
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
"""


def test_every_public_name_of_the_kit_is_its_modules_own() -> None:
    for name in ci_kit.__all__:
        value = getattr(ci_kit, name)
        assert getattr(importlib.import_module(value.__module__), name) is value


def test_importing_the_kit_alone_imports_no_database_library() -> None:
    code = (
        "import sys, ci_kit; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("package", ["ci_kit", "ci_kit.postgres"])
def test_a_name_a_package_does_not_offer_is_an_ordinary_import_error(package: str) -> None:
    with pytest.raises(ImportError, match="cannot import name 'no_such_name'"):
        exec(f"from {package} import no_such_name")  # noqa: S102 - a constant statement
    assert not hasattr(importlib.import_module(package), "no_such_name")


def test_a_url_keeps_its_password_until_it_is_rendered_at_the_edge() -> None:
    url = ci_kit.parse_database_url("postgres://app:p%40ss%20w%3Ard@db.example:5433/app_test")
    assert url.drivername == "postgresql+psycopg"
    worker = ci_kit.with_database(url, "app_test_gw1")
    assert (worker.database, worker.password, worker.port) == ("app_test_gw1", "p@ss w:rd", 5433)
    assert ci_kit.parse_database_url(ci_kit.render(worker)) == worker
    assert ci_kit.mask(worker) == "postgresql+psycopg://app:***@db.example:5433/app_test_gw1"


def test_connect_kwargs_reach_the_database_a_url_names(server_url: URL) -> None:
    """The test role's password holds ``@ : / % # ? +`` and a space: no conninfo quoting."""
    url = ci_kit.with_database(server_url, "template1")
    with psycopg.connect(**ci_kit.connect_kwargs(url)) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("template1",)


def test_no_server_binaries_is_a_public_error_naming_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ci_kit.PostgresNotFound, match=str(tmp_path)) as raised:
        ci_kit.postgres.find_binaries(tmp_path, search=False, allow_wheel=False)
    assert isinstance(raised.value, ci_kit.CiKitError)


def test_a_process_phases_are_public_and_its_share_is_what_the_run_says(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str
) -> None:
    log = pytester.path / "phases.json"
    pytester.makepyprojecttoml(
        f'[tool.ci-kit]\nbase-name = "{base_name}"\nschema = "models:Base"\n'
    )
    pytester.makepyfile(
        models=MODELS,
        test_phases=f"""
        import json
        from ci_kit import phase_seconds, worker_start_share

        def test_reads_its_phases(request, db_engine):
            phases = phase_seconds(request.config)
            with open({str(log)!r}, "w") as out:
                json.dump({{"phases": phases, "share": worker_start_share(phases)}}, out)
        """,
    )
    monkeypatch.setenv("CI_KIT_DATABASE_URL", ci_kit.render(server_url.set(database=base_name)))
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    found = json.loads(log.read_text())
    assert {"import", "clone", "engine"} <= found["phases"].keys()
    start_up = sum(found["phases"][name] for name in ("import", "clone", "engine"))
    assert found["share"] == pytest.approx(start_up)
    result.stdout.fnmatch_lines(
        [f"*kit's share of the run's start {found['share'] * 1000:.0f} ms*"]
    )
