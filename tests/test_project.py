"""The project root: the kit's commands find the directory pytest takes as its rootdir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ci_kit.project import find_rootdir
from tests.helpers.runs import environ_without_kit

PYTEST_TABLE = "[tool.pytest.ini_options]\naddopts = []\n"

# Each layout: files to write (relative path -> content), and where the run starts.
LAYOUTS: dict[str, tuple[dict[str, str], str]] = {
    "pyproject with pytest settings above": (
        {"pyproject.toml": PYTEST_TABLE, "pkg/sub/x.txt": ""},
        "pkg/sub",
    ),
    "nested project with its own pytest settings": (
        {"pyproject.toml": PYTEST_TABLE, "app/pyproject.toml": PYTEST_TABLE, "app/tests/x": ""},
        "app/tests",
    ),
    "nearest pyproject without pytest settings loses to one with them": (
        {"pyproject.toml": PYTEST_TABLE, "lib/pyproject.toml": "[project]\nname='x'\n"},
        "lib",
    ),
    "pytest.ini beats a pyproject in the same directory": (
        {"pytest.ini": "[pytest]\n", "pyproject.toml": "[tool.ci-kit]\n", "a/x": ""},
        "a",
    ),
    "tox.ini with a pytest section": ({"tox.ini": "[pytest]\n", "t/x": ""}, "t"),
    "setup.cfg with tool:pytest": ({"setup.cfg": "[tool:pytest]\n", "s/x": ""}, "s"),
    "only a pyproject without pytest settings": ({"p/pyproject.toml": "", "p/q/x": ""}, "p/q"),
    "only setup.py": ({"setup.py": "", "d/x": ""}, "d"),
    "nothing at all": ({"n/x": ""}, "n"),
}


def write_layout(base: Path, files: dict[str, str]) -> None:
    for relative, content in files.items():
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def pytest_rootdir(start: Path) -> Path:
    """The rootdir pytest itself reports for a run in ``start``."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-p", "no:ci_kit", "-p", "no:randomly"],
        cwd=start,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    for line in result.stdout.splitlines():
        if line.startswith("rootdir: "):
            return Path(line.removeprefix("rootdir: ").split(",")[0])
    raise AssertionError(f"pytest printed no rootdir:\n{result.stdout}{result.stderr}")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_root_is_the_rootdir_pytest_chooses(tmp_path: Path, layout: str) -> None:
    files, start = LAYOUTS[layout]
    write_layout(tmp_path, files)
    assert find_rootdir(tmp_path / start) == pytest_rootdir(tmp_path / start)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("pyproject.toml", b"[tool.pytest.ini_options\n"),
        ("pyproject.toml", b"\xff\xfe[tool.pytest.ini_options]\n"),
        ("tox.ini", b"addopts = -x\n[pytest]\n"),
        ("setup.cfg", b"[tool:pytest]\naddopts = \xff\n"),
    ],
    ids=["invalid-toml", "not-utf8-toml", "ini-without-section", "not-utf8-ini"],
)
def test_a_configuration_file_nobody_can_read_is_passed_over(
    tmp_path: Path, name: str, content: bytes
) -> None:
    """pytest itself stops on such a file; the kit's commands keep looking upwards."""
    write_layout(tmp_path, {"pytest.ini": "[pytest]\n", "app/tests/x": ""})
    (tmp_path / "app" / name).write_bytes(content)
    assert find_rootdir(tmp_path / "app" / "tests") == tmp_path


KIT_TABLE = '[tool.ci-kit]\nbase-name = "app_test"\n'

# Each case: files, where pytest runs, its arguments, and the kit table pytest passes over
# (None: the table is the rootdir's, and is read).
TABLE_LAYOUTS: dict[str, tuple[dict[str, str], str, tuple[str, ...], str | None]] = {
    "a parent setup.cfg with tool:pytest": (
        {"setup.cfg": "[tool:pytest]\n", "proj/pyproject.toml": KIT_TABLE, "proj/tests/x": ""},
        "proj",
        (),
        "proj/pyproject.toml",
    ),
    "a parent setup.cfg, the tests given as a path": (
        {"setup.cfg": "[tool:pytest]\n", "proj/pyproject.toml": KIT_TABLE, "proj/tests/x": ""},
        ".",
        ("proj/tests",),
        "proj/pyproject.toml",
    ),
    "-c another ini file": (
        {"pyproject.toml": KIT_TABLE, "ci/other.ini": "[pytest]\n", "tests/x": ""},
        ".",
        ("-c", "ci/other.ini"),
        "pyproject.toml",
    ),
    "the rootdir's own table": (
        {"pyproject.toml": PYTEST_TABLE + KIT_TABLE, "tests/x": ""},
        "tests",
        (),
        None,
    ),
    "a table above the rootdir belongs to another project": (
        {"pyproject.toml": KIT_TABLE, "app/pytest.ini": "[pytest]\n", "app/tests/x": ""},
        "app",
        (),
        None,
    ),
}


@pytest.mark.parametrize("layout", sorted(TABLE_LAYOUTS))
def test_a_kit_table_pytest_passes_over_is_one_line_naming_both_files(
    tmp_path: Path, layout: str
) -> None:
    """Real pytest runs: a table near the tests that the rootdir rule skips is never silent."""
    files, start, args, skipped = TABLE_LAYOUTS[layout]
    write_layout(tmp_path, files)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-q", *args],
        cwd=tmp_path / start,
        env=environ_without_kit(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if skipped is None:
        assert "ci-kit" not in result.stderr, result.stderr
        return
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith(f"ERROR: ci-kit: [tool.ci-kit] in {tmp_path / skipped} is not read: ")
    assert "the kit reads [tool.ci-kit] from the rootdir's pyproject.toml only" in line
