"""The floor run (``benchmarks.no_tests``): the suite starts and ends, no test runs, exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Module-level work stands for the application a conftest imports: it must happen
# in every process, as in a real run, while no test body does.
SUITE = """
import os
import pytest

open(os.path.join({marks!r}, "imported-" + os.environ.get("PYTEST_XDIST_WORKER", "serial")), "w")

@pytest.mark.db_isolation("truncate")
def test_marked():
    raise AssertionError("ran")

@pytest.mark.parametrize("n", range(5))
def test_many(n):
    raise AssertionError("ran")
"""


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "n2"])
def test_every_test_is_collected_and_none_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: tuple[str, ...]
) -> None:
    marks = pytester.mkdir("marks")
    pytester.makepyfile(test_floor=SUITE.format(marks=str(marks)))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this test's own worker's
    result = pytester.runpytest_subprocess(
        "--strict-markers",
        "-p",
        "no:ci_kit",
        "-p",
        "no:randomly",
        "-p",
        "benchmarks.no_tests",
        *xdist,
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.no_fnmatch_line("*passed*")
    result.stdout.no_fnmatch_line("*failed*")
    expected = {"imported-gw0", "imported-gw1"} if xdist else {"imported-serial"}
    assert {path.name for path in marks.iterdir()} >= expected
    if not xdist:
        result.stdout.fnmatch_lines(["*6 deselected*"])
