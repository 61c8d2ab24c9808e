"""The noxfile's helpers: commands built right, and shards that cover the suite exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ci import sessions
from ci.sessions import SAMPLE_PYPROJECT, KitRun, SuiteRun

ROOT = Path(__file__).resolve().parents[2]


def nox(*args: str) -> str:
    """What ``nox ARGS`` prints, asked of nox itself in this repository."""
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def listed_sessions(*args: str) -> dict[str, bool]:
    """``nox --list ARGS``: each session, and whether plain ``nox`` (or ARGS) selects it."""
    plan = nox("--list", *args)
    return {
        line.split()[1]: line[0] == "*" for line in plan.splitlines() if line[:2] in ("* ", "- ")
    }


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
        "PYTHONDONTWRITEBYTECODE": None,  # nox removes it: bytecode caches are written
    }


def test_the_sample_suite_is_measured_by_the_samples_own_coverage_settings() -> None:
    assert f"--cov-config={SAMPLE_PYPROJECT}" in SuiteRun(parallel=True).command()
    sample = tomllib.loads((ROOT / SAMPLE_PYPROJECT).read_text())["tool"]["coverage"]
    assert sample["run"]["source_pkgs"] == ["backend_sample"]
    kit = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["coverage"]
    assert kit["run"]["source_pkgs"] == ["ci_kit", "ci"]
    assert {"subprocess", "execv", "_exit"} <= set(kit["run"]["patch"])


def test_no_report_folds_another_sessions_data_into_its_figure() -> None:
    """A coverage report combines ``<data file>.*`` first: no session's file may match."""
    sample = tomllib.loads((ROOT / SAMPLE_PYPROJECT).read_text())["tool"]["coverage"]["run"]
    kit = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["coverage"]["run"]
    assert kit["data_file"] == sessions.KIT_COVERAGE_FILE
    session_files = [
        sessions.coverage_file(name)
        for name in ("tests", "tests-parallel", *map(sessions.shard_session, (1, 2)))
    ]
    for data_file in (sample["data_file"], kit["data_file"]):
        others = [*session_files, sample["data_file"], kit["data_file"]]
        assert not [other for other in others if other.startswith(f"{data_file}.")]


def test_coverage_combines_exactly_the_feeding_sessions_and_enforces_the_floor() -> None:
    feeding = [sessions.shard_session(1), sessions.shard_session(2)]
    commands = sessions.coverage_commands(feeding)
    config = f"--rcfile={SAMPLE_PYPROJECT}"
    assert commands[0] == [
        "coverage",
        "combine",
        config,
        "--keep",
        ".coverage.tests-shard-shard-1",
        ".coverage.tests-shard-shard-2",
    ]
    assert ["coverage", "report", config, f"--fail-under={sessions.COVERAGE_FLOOR}"] in commands


def test_nox_runs_coverage_after_the_session_that_feeds_it() -> None:
    names = [entry["session"] for entry in json.loads(nox("-l", "--json"))]
    assert "coverage" in names
    selected = [name for name, chosen in listed_sessions("-s", "coverage").items() if chosen]
    assert selected.index("tests-parallel") < selected.index("coverage")


def test_the_matrix_interpreters_are_the_kits_classifiers() -> None:
    listed = nox("-l", "--json", "-t", "matrix")
    pythons = {entry["python"] for entry in json.loads(listed)}
    document = tomllib.loads((ROOT / "pyproject.toml").read_text())
    prefix = "Programming Language :: Python :: 3."
    classified = {
        c.removeprefix("Programming Language :: Python :: ")
        for c in document["project"]["classifiers"]
        if c.startswith(prefix)
    }
    assert pythons == classified


def test_kit_suite_runs_without_its_own_plugin_on_xdist_and_forwards_posargs() -> None:
    for run in (KitRun(), KitRun(fast=True)):
        command = run.command(["-x"])
        assert command[:5] == ["python", "-m", "pytest", "tests", "-p"]
        assert command[command.index("-p") + 1] == "no:ci_kit"
        assert command[command.index("-n") + 1] == "auto"
        assert command[command.index("--dist") + 1] == "loadgroup"
        assert command[-1] == "-x"


def test_the_whole_kit_run_measures_coverage_and_holds_the_library_to_the_floor() -> None:
    run = KitRun()
    assert "--cov" in run.command()
    assert "-m" not in run.command()[3:], "every tier runs"
    assert run.env("/repo") == {
        "COVERAGE_FILE": "/repo/.coverage.kit",
        "PYTHONDONTWRITEBYTECODE": None,
    }
    automation, library = run.reports()
    assert "--include=ci/*" in automation
    assert not any(arg.startswith("--fail-under") for arg in automation)
    assert library[-2:] == ["--include=src/ci_kit/*", f"--fail-under={sessions.COVERAGE_FLOOR}"]


def test_the_fast_tier_leaves_out_the_slow_marker_and_coverage() -> None:
    command = KitRun(fast=True).command()
    assert command[command.index("-m", 3) + 1] == "not slow"
    assert "--cov" not in command
    assert KitRun(fast=True).reports() == []


def test_kit_runs_by_default_and_kit_fast_on_request() -> None:
    listed = listed_sessions()
    assert listed["kit"]
    assert not listed["kit-fast"]


def test_the_slow_marker_is_registered_and_selects_a_tier() -> None:
    slow = collect(sessions.KIT_SUITE, "-p", "no:ci_kit", "-m", "slow")
    fast = collect(sessions.KIT_SUITE, "-p", "no:ci_kit", "-m", "not slow")
    assert slow
    assert fast
    assert not set(slow) & set(fast)
    assert any("test_deploy_runners.py" in test for test in slow)
    assert not any("test_distribution.py" in test for test in fast)


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


@pytest.mark.slow
def test_the_shards_together_run_every_test_exactly_once() -> None:
    everything = collect(sessions.SAMPLE_SUITE)
    shards = [
        collect(sessions.SAMPLE_SUITE, *SuiteRun(parallel=True, shard=group).shard_selection())
        for group in range(1, sessions.SHARDS + 1)
    ]
    assert len(everything) > 600
    assert all(shards), "every shard gets tests"
    assert sorted(test for shard in shards for test in shard) == sorted(everything)
