"""The generated CPU-bound suite (``benchmarks.cpu_suite``) runs through the kit as timed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cpu_suite import PER_FILE, TESTS, write_cpu_suite

REPO = Path(__file__).resolve().parents[2]


def test_the_suite_has_its_tests_and_its_one_table_schema(tmp_path: Path) -> None:
    directory = write_cpu_suite(tmp_path / "cpu")
    assert len(list(directory.glob("test_cpu_*.py"))) * PER_FILE == TESTS == 60
    assert 'schema = "models:metadata"' in (directory / "pyproject.toml").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "n2"])
def test_one_file_of_it_passes_through_the_kit(tmp_path: Path, workers: list[str]) -> None:
    """Each test takes its CPU seconds on a clone of the one-table template (2 s of CPU)."""
    directory = write_cpu_suite(tmp_path / "cpu")
    done = subprocess.run(
        [sys.executable, "-m", "ci_kit", "pytest", "test_cpu_0.py", "-p", "no:randomly", *workers],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"{PER_FILE} passed" in done.stdout
    assert "template built" in done.stdout
