"""``python -m ci_kit pytest``: preparation before pytest starts, as nox sessions use it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import render
from tests.conftest import TEST_PASSWORD, database_names
from tests.test_plugin import seen, write_project


def run_cli(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci_kit", *args],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_prepares_once_and_pytest_workers_only_clone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str
) -> None:
    log = write_project(pytester, base_name, count=4)
    monkeypatch.setenv("CI_KIT_DATABASE_URL", render(server_url.set(database=base_name)))
    result = run_cli(pytester, "pytest", "-n", "2", "-p", "no:randomly")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "ci-kit: building template" in out
    assert "ci-kit: prepared in" in out
    assert "ci-kit: 8 tests (8 passed) on 2 workers" in out
    assert out.count("building template") == 1
    assert TEST_PASSWORD not in out + result.stderr
    assert {row["db"] for row in seen(log)} <= {f"{base_name}_gw0", f"{base_name}_gw1"}
    assert database_names(server_url, f"{base_name}_gw") == set()


def test_pytest_failures_set_the_exit_code(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str
) -> None:
    write_project(pytester, base_name, count=1)
    pytester.makepyfile(test_fails="def test_fails(db_url):\n    assert False\n")
    monkeypatch.setenv("CI_KIT_DATABASE_URL", render(server_url.set(database=base_name)))
    result = run_cli(pytester, "pytest", "-p", "no:randomly")
    assert result.returncode == 1
    assert "ci-kit: 3 tests (2 passed, 1 failed) on 1 process" in result.stdout
    assert "cleaned up" in result.stdout


def test_configuration_errors_are_one_line(pytester: pytest.Pytester) -> None:
    write_project(pytester, "app_test")
    result = run_cli(pytester, "pytest", "--ci-kit-url", "mysql://u:hunter2@h/app_test")
    assert result.returncode == 4
    assert result.stderr.strip().startswith("ci-kit: error:")
    assert "is not a PostgreSQL URL" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_explains_the_command(pytester: pytest.Pytester) -> None:
    result = run_cli(pytester, "--help")
    assert result.returncode == 0
    assert "prepare a ci-kit run" in result.stdout
    assert "{pytest,server}" in result.stdout
    assert run_cli(pytester).returncode == 2


def test_server_keeps_an_embedded_postgres_for_local_development(
    pytester: pytest.Pytester,
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        first = run_cli(pytester, "server", "--database", "app_dev")
        assert first.returncode == 0, first.stderr
        url = make_url(first.stdout.strip())
        assert url.database == "app_dev"
        engine = create_engine(url)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT current_database()")) == "app_dev"
        engine.dispose()
        again = run_cli(pytester, "server", "--database", "app_dev")
        assert again.stdout == first.stdout
        assert "created database" not in again.stderr
    finally:
        stopped = run_cli(pytester, "server", "--stop")
    assert "stopped the server" in stopped.stdout
