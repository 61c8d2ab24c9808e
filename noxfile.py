"""Sessions of the kit: `nox -l` lists them; plain `nox` runs what to run before pushing.

Each session is a few lines calling ``ci.sessions``, where the commands are built
and tested. The sample suite runs through ``python -m ci pytest``, which starts or
finds the server and builds or reuses the template before pytest starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent))  # ci.sessions, without installing the kit

from ci import sessions

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "kit", "tests-parallel", "coverage"]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (check and format) on the code, actionlint on the CI workflows."""
    session.install(*sessions.install_args(sessions.LINT_EXTRAS))
    session.run("ruff", "check", *sessions.LINTED)
    session.run("ruff", "format", "--check", *sessions.LINTED)
    session.run("actionlint", *Path(sessions.WORKFLOWS).glob("*.yml"))


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on ci/."""
    session.install(*sessions.install_args((*sessions.LINT_EXTRAS, *sessions.KIT_EXTRAS)))
    session.run("mypy")


@nox.session
def kit(session: nox.Session) -> None:
    """The kit's own tests: pure units, real servers, pytester runs serial and -n 2/-n 4."""
    session.install(*sessions.install_args(sessions.KIT_EXTRAS))
    session.run(*sessions.kit_command(session.posargs))


@nox.session(tags=["sample"])
def tests(session: nox.Session) -> None:
    """The sample suite, serially (default cell: this interpreter, auto-found server)."""
    _run_suite(session, sessions.SuiteRun(parallel=False))


@nox.session(name="tests-parallel", tags=["sample"])
def tests_parallel(session: nox.Session) -> None:
    """The sample suite with -n auto --dist loadfile, a database per worker (default cell)."""
    _run_suite(session, sessions.SuiteRun(parallel=True))


@nox.session(name="tests-matrix", python=sessions.PYTHONS, tags=["matrix"], default=False)
@nox.parametrize("binaries", sessions.SERVERS)
def tests_matrix(session: nox.Session, binaries: sessions.Binaries) -> None:
    """The sample suite serially, per Python version and PostgreSQL server."""
    _run_suite(session, sessions.SuiteRun(parallel=False, binaries=binaries))


@nox.session(name="tests-parallel-matrix", python=sessions.PYTHONS, tags=["matrix"], default=False)
@nox.parametrize("binaries", sessions.SERVERS)
def tests_parallel_matrix(session: nox.Session, binaries: sessions.Binaries) -> None:
    """The sample suite in parallel, per Python version and PostgreSQL server."""
    _run_suite(session, sessions.SuiteRun(parallel=True, binaries=binaries))


@nox.session(name="tests-shard", tags=["shards"], default=False)
@nox.parametrize("shard", range(1, sessions.SHARDS + 1))
def tests_shard(session: nox.Session, shard: int) -> None:
    """One shard of the sample suite (pytest-split by recorded durations), itself on xdist."""
    _run_suite(session, sessions.SuiteRun(parallel=True, shard=shard))


@nox.session(default=False)
def durations(session: nox.Session) -> None:
    """Refresh .test_durations, which tests-shard splits by."""
    session.install(*sessions.install_args(sessions.SUITE_EXTRAS))
    session.run(*sessions.durations_command(session.posargs))


@nox.session
def coverage(session: nox.Session) -> None:
    """Combine coverage of every run and shard; fail under 95 %; HTML and XML reports."""
    session.install("coverage[toml]")
    for command in sessions.coverage_commands():
        session.run(*command)


def _run_suite(session: nox.Session, run: sessions.SuiteRun) -> None:
    session.install(*sessions.install_args(sessions.SUITE_EXTRAS))
    session.run(*run.command(session.posargs), env=run.env(session.name))


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios measured side by side in one run; writes docs/benchmarks/."""
    session.install(*sessions.install_args(("sample", "test", "embedded", "bench")))
    session.run("python", "-m", "benchmarks", *session.posargs)
