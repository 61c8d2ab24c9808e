"""The kit without pytest's plugin autoload: every way to load it works, or says how to.

``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` is common in CI images and hardened setups;
pytest then loads no ``pytest11`` entry point, and the kit must be named.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import render
from tests.helpers.runs import environ_without_kit

SUITE = """
from sqlalchemy import text

def test_the_kit_database(db_connection, db_url):
    assert db_connection.scalar(text("SELECT current_database()")) == db_url.database
"""


def run(cwd: Path, url: URL, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**environ_without_kit(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env["CI_KIT_DATABASE_URL"] = render(url)
    return subprocess.run(
        [sys.executable, *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.parametrize(
    "command",
    [("-m", "ci_kit", "pytest"), ("-m", "pytest", "-p", "ci_kit.plugin")],
    ids=["python-m-ci_kit-pytest", "pytest-p-ci_kit.plugin"],
)
def test_without_autoload_the_kit_named_on_the_command_line_serves_its_fixtures(
    tmp_path: Path, server_url: URL, base_name: str, command: tuple[str, ...]
) -> None:
    (tmp_path / "test_kit.py").write_text(SUITE)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["ci_kit.plugin"]\n')
    result = run(tmp_path, server_url.set(database=base_name), *command)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_without_autoload_a_conftest_loading_the_kit_is_one_line_naming_the_fix(
    tmp_path: Path, server_url: URL, base_name: str
) -> None:
    (tmp_path / "test_kit.py").write_text(SUITE)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["ci_kit.plugin"]\n')
    result = run(tmp_path, server_url.set(database=base_name), "-m", "pytest")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("ERROR: ci-kit: the plugin was loaded by a conftest.py (pytest_plugins)")
    assert line.endswith("load it with -p ci_kit.plugin instead")
