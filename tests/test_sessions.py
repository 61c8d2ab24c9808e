"""The noxfile's helpers: commands built right, and shards that cover the suite exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ci import sessions
from ci.sessions import SuiteRun

ROOT = Path(__file__).resolve().parent.parent


def test_the_kit_and_the_sample_install_as_projects_of_their_own() -> None:
    assert sessions.KIT == ("-e", ".[embedded]")
    assert sessions.SAMPLE_APP == ("-e", "./backend_sample[smoke]")
    assert (ROOT / sessions.SAMPLE_PYPROJECT).is_file()


def test_parallel_run_uses_loadfile_and_forwards_posargs() -> None:
    command = SuiteRun(parallel=True).command(["-k", "reports", "-x"])
    assert command[:4] == ["python", "-m", "ci_kit", "pytest"]
    assert command[command.index("-n") + 1] == "auto"
    assert command[command.index("--dist") + 1] == "loadfile"
    assert command[-3:] == ["-k", "reports", "-x"]


def test_serial_run_has_no_xdist() -> None:
    assert "-n" not in SuiteRun(parallel=False).command()


def test_a_shard_splits_by_durations_and_leaves_the_floor_to_the_combination() -> None:
    command = SuiteRun(parallel=True, shard=2).command()
    assert "--splits=2" in command
    assert "--group=2" in command
    assert f"--durations-path={sessions.DURATIONS_FILE}" in command
    assert "--cov-fail-under=0" in command
    assert command[command.index("-p") + 1] == "no:randomly"


@pytest.mark.parametrize("shard", [0, sessions.SHARDS + 1])
def test_a_shard_out_of_range_is_refused(shard: int) -> None:
    with pytest.raises(ValueError, match="is not between 1 and"):
        SuiteRun(parallel=True, shard=shard).command()


def test_binaries_choice_and_a_coverage_file_per_session() -> None:
    assert SuiteRun(parallel=False, binaries="wheel").env("tests-shard(shard=1)") == {
        "CI_KIT_EMBEDDED_BINARIES": "wheel",
        "COVERAGE_FILE": ".coverage.tests-shard-shard-1",
    }


def test_coverage_combines_exactly_the_feeding_sessions_and_enforces_the_floor() -> None:
    feeding = [sessions.shard_session(1), sessions.shard_session(2)]
    commands = sessions.coverage_commands(feeding)
    assert commands[0] == [
        "coverage",
        "combine",
        "--keep",
        ".coverage.tests-shard-shard-1",
        ".coverage.tests-shard-shard-2",
    ]
    assert ["coverage", "report", f"--fail-under={sessions.COVERAGE_FLOOR}"] in commands


def test_nox_runs_coverage_after_the_session_that_feeds_it() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    names = [entry["session"] for entry in json.loads(listed.stdout)]
    assert "coverage" in names
    plan = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "coverage", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    selected = [line.split()[1] for line in plan.splitlines() if line.startswith("* ")]
    assert selected.index("tests-parallel") < selected.index("coverage")


def test_the_matrix_interpreters_are_the_kits_classifiers() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--json", "-t", "matrix"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    pythons = {entry["python"] for entry in json.loads(listed.stdout)}
    document = tomllib.loads((ROOT / "pyproject.toml").read_text())
    prefix = "Programming Language :: Python :: 3."
    classified = {
        c.removeprefix("Programming Language :: Python :: ")
        for c in document["project"]["classifiers"]
        if c.startswith(prefix)
    }
    assert pythons == classified


def test_kit_suite_runs_without_its_own_plugin() -> None:
    assert sessions.kit_command(["-x"])[-3:] == ["-p", "no:ci_kit", "-x"]


def collect(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_the_shards_together_run_every_test_exactly_once() -> None:
    everything = collect(sessions.SAMPLE_SUITE)
    shards = [
        collect(sessions.SAMPLE_SUITE, *SuiteRun(parallel=True, shard=group).shard_selection())
        for group in range(1, sessions.SHARDS + 1)
    ]
    assert len(everything) > 600
    assert all(shards), "every shard gets tests"
    assert sorted(test for shard in shards for test in shard) == sorted(everything)
