"""How the benchmarks time their runs: hyperfine in rounds, and what a run tells of itself.

Real hyperfine runs of tiny commands that log what they saw, in order: the rounds'
order, each command's own directory and settings, the environment shared by all,
parameters, untimed preparations, and a failing run. No test asserts a time bound.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks import hyperfine
from benchmarks.common import (
    BenchmarkFailed,
    Context,
    median_interval,
    rotated,
    seconds_to_first_test,
)
from benchmarks.first_test import FIRST_TEST_ENV
from tests.helpers.runs import environ_without_kit

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-in-the-environment"
LOG_ONE_LINE = (
    "import json, os, sys; open(os.environ['BENCH_TEST_LOG'], 'a').write(json.dumps("
    "[sys.argv[1], os.getcwd(), os.environ.get('MODE'), os.environ.get('SHARED')]) + '\\n')"
)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    if shutil.which(hyperfine.HYPERFINE) is None:
        if os.environ.get("CI"):
            pytest.fail("hyperfine is not installed: scripts/setup-deploy installs it")
        pytest.skip("hyperfine is not installed (apt-get install hyperfine)")
    work = tmp_path / "work"
    work.mkdir()
    return Context(ROOT, work, False, URL.create("postgresql+psycopg"), 0, lambda _: None)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Every command's environment: where they log, and a value no command line may show."""
    return {**os.environ, "BENCH_TEST_LOG": str(tmp_path / "log.jsonl"), "SHARED": SECRET}


def logging(name: str, cwd: Path | None = None, **settings: str) -> hyperfine.Command:
    return hyperfine.Command(name, [sys.executable, "-c", LOG_ONE_LINE, name], cwd, settings)


def logged(env: dict[str, str]) -> list[list[str | None]]:
    lines = Path(env["BENCH_TEST_LOG"]).read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_round_runs_each_command_once_in_order_where_and_as_it_says(
    ctx: Context, env: dict[str, str], tmp_path: Path
) -> None:
    commands = [logging("-p first", tmp_path, MODE="truncate"), logging("second")]  # not a flag
    runs = hyperfine.one_round(ctx, commands, env=env)
    assert [run.name for run in runs] == ["-p first", "second"]
    assert all(run.seconds > 0 and run.cpu_seconds >= 0 for run in runs)
    assert logged(env) == [
        ["-p first", str(tmp_path), "truncate", SECRET],
        ["second", str(Path.cwd()), None, SECRET],  # hyperfine's own directory
    ]
    assert not any(SECRET in command.line() for command in commands)


def test_rounds_rotate_the_order_so_no_command_always_runs_first(
    ctx: Context, env: dict[str, str]
) -> None:
    names = ["a", "b", "c"]
    runs = hyperfine.rounds(ctx, lambda _: [logging(n) for n in names], 3, env=env)
    assert [entry[0] for entry in logged(env)] == [*"abc", *"bca", *"cab"]
    assert {name: len(timed) for name, timed in runs.items()} == dict.fromkeys(names, 3)


def test_a_parameter_list_runs_and_names_every_value(ctx: Context, env: dict[str, str]) -> None:
    command = hyperfine.Command("mode {mode}", [sys.executable, "-c", LOG_ONE_LINE, "{mode}"])
    runs = hyperfine.one_round(ctx, [command], env=env, parameters={"mode": ["rollback", "fresh"]})
    assert [(run.name, run.parameters) for run in runs] == [
        ("mode rollback", {"mode": "rollback"}),
        ("mode fresh", {"mode": "fresh"}),
    ]
    assert [entry[0] for entry in logged(env)] == ["rollback", "fresh"]


def test_a_preparation_runs_before_its_own_command_only(
    ctx: Context, env: dict[str, str], tmp_path: Path
) -> None:
    prepared = hyperfine.Command(
        "prepared",
        [sys.executable, "-c", LOG_ONE_LINE, "prepared"],
        tmp_path,
        prepare=[sys.executable, "-c", LOG_ONE_LINE, "preparation"],
    )
    hyperfine.one_round(ctx, [logging("plain"), prepared], env=env)
    assert [entry[:2] for entry in logged(env)] == [
        ["plain", str(Path.cwd())],
        ["preparation", str(tmp_path)],
        ["prepared", str(tmp_path)],
    ]


def test_a_failing_run_stops_the_round_naming_it_with_what_it_printed(
    ctx: Context, env: dict[str, str]
) -> None:
    failing = hyperfine.Command("the failing one", ["sh", "-c", "echo boom; exit 3"])
    with pytest.raises(BenchmarkFailed, match="the failing one") as raised:
        hyperfine.one_round(ctx, [failing, logging("never")], env=env)
    assert "boom" in str(raised.value)
    assert "exit code: 3" in str(raised.value)
    assert not Path(env["BENCH_TEST_LOG"]).exists()


def test_an_untimed_run_returns_its_output_or_fails_with_it(env: dict[str, str]) -> None:
    assert hyperfine.output_of(hyperfine.Command("echo", ["echo", "hello"]), env=env) == "hello\n"
    with pytest.raises(BenchmarkFailed, match="exited 3:\nboom"):
        hyperfine.output_of(hyperfine.Command("bad", ["sh", "-c", "echo boom; exit 3"]), env=env)


def test_the_first_test_plugin_writes_the_seconds_since_its_process_started(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_one="def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    marker = tmp_path / "first-test"
    env = {**environ_without_kit(), "PYTHONPATH": str(ROOT), FIRST_TEST_ENV: str(marker)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "benchmarks.first_test", "-p", "no:ci_kit"]
    done = subprocess.run(argv, cwd=pytester.path, env=env, capture_output=True, check=False)
    assert done.returncode == 0, done.stdout
    assert 0 < seconds_to_first_test(marker) < 60
    marker.unlink()
    with pytest.raises(BenchmarkFailed, match="reached no test"):
        seconds_to_first_test(marker)


def test_rotated_starts_later_and_wraps_around() -> None:
    assert rotated("abc", 0) == ["a", "b", "c"]
    assert rotated("abc", 4) == ["b", "c", "a"]
    assert rotated([], 2) == []


@pytest.mark.parametrize(
    ("count", "interval"), [(3, (0, 2)), (10, (1, 8)), (40, (13, 26)), (100, (40, 59))]
)
def test_the_median_interval_narrows_as_rounds_add_up(
    count: int, interval: tuple[int, int]
) -> None:
    assert median_interval([float(value) for value in reversed(range(count))]) == interval
