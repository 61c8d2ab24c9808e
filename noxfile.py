"""Sessions of this repository: `nox -l` lists them; plain `nox` runs what to run before pushing.

Each session is a few lines calling ``ci.sessions``, where the commands are built
and tested. Installs come from ``pyproject.toml``: the kit and the sample backend
as projects, this repository's tools as PEP 735 dependency groups, the matrix's
interpreters from the kit's classifiers. The sample suite runs through
``python -m ci_kit pytest``, pytest with the kit enabled.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent))  # ci.sessions: this repository's, not installed

from ci import sessions

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "kit", "tests-parallel", "coverage"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
SAMPLE_PYPROJECT = nox.project.load_toml(sessions.SAMPLE_PYPROJECT)
PYTHONS = nox.project.python_versions(PYPROJECT)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (check and format) on the code, actionlint on the CI workflows."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", *sessions.LINTED)
    session.run("ruff", "format", "--check", *sessions.LINTED)
    session.run("actionlint", *Path(sessions.WORKFLOWS).glob("*.yml"))


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library (src/ci_kit) and this repository's automation (ci/)."""
    _install(session, "lint", "test", "deploy")
    session.run("mypy")


@nox.session
def kit(session: nox.Session) -> None:
    """The kit's own tests, every tier, on xdist; coverage of src/ci_kit (95 %) and ci/."""
    _run_kit(session, sessions.KitRun())


@nox.session(name="kit-fast", default=False)
def kit_fast(session: nox.Session) -> None:
    """The kit's tests less the slow tier, on xdist: what to run before pushing."""
    _run_kit(session, sessions.KitRun(fast=True))


@nox.session(tags=["sample"])
def tests(session: nox.Session) -> None:
    """The sample suite, serially (default cell: this interpreter, auto-found server)."""
    _run_suite(session, sessions.SuiteRun(parallel=False))


@nox.session(name="tests-parallel", tags=["sample"])
def tests_parallel(session: nox.Session) -> None:
    """The sample suite with -n auto --dist loadfile, a database per worker (default cell)."""
    _run_suite(session, sessions.SuiteRun(parallel=True))


@nox.session(name="tests-matrix", python=PYTHONS, tags=["matrix"], default=False)
@nox.parametrize("binaries", sessions.SERVERS)
def tests_matrix(session: nox.Session, binaries: sessions.Binaries) -> None:
    """The sample suite serially, per Python version and PostgreSQL server."""
    _run_suite(session, sessions.SuiteRun(parallel=False, binaries=binaries))


@nox.session(name="tests-parallel-matrix", python=PYTHONS, tags=["matrix"], default=False)
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
    """Refresh backend_sample/.test_durations, which tests-shard splits by."""
    _install(session, "test", sample=True)
    session.run(*sessions.durations_command(session.posargs))


@nox.session(requires=["tests-parallel"])
def coverage(session: nox.Session) -> None:
    """Coverage of tests-parallel, run just before it: fail under 95 %; HTML and XML."""
    _combine_coverage(session, ["tests-parallel"])


@nox.session(name="coverage-shards", tags=["shards"], default=False)
def coverage_shards(session: nox.Session) -> None:
    """Combine the shards' coverage (CI: downloaded from the shard jobs); fail under 95 %."""
    _combine_coverage(session, [sessions.shard_session(n) for n in range(1, sessions.SHARDS + 1)])


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios measured side by side in one run; writes docs/benchmarks/."""
    session.run("hyperfine", "--version", external=True)  # times every run; scripts/setup-deploy
    _install(session, "test", "bench", sample=True)
    session.run("python", "-m", "benchmarks", *session.posargs)


def _install(session: nox.Session, *groups: str, sample: bool = False) -> None:
    """The kit, the sample backend and its suite's needs if asked, and dependency groups."""
    requirements = list(nox.project.dependency_groups(PYPROJECT, *groups))
    if sample:
        requirements += [
            *sessions.SAMPLE_APP,
            *nox.project.dependency_groups(SAMPLE_PYPROJECT, "test"),
        ]
    session.install(*sessions.KIT, *requirements)


def _run_kit(session: nox.Session, run: sessions.KitRun) -> None:
    _install(session, "test", "deploy", sample=True)
    env = run.env(str(Path.cwd()))
    session.run(*run.command(session.posargs), env=env)
    for report in run.reports():
        session.run(*report, env=env)


def _run_suite(session: nox.Session, run: sessions.SuiteRun) -> None:
    _install(session, "test", sample=True)
    session.run(*run.command(session.posargs), env=run.env(session.name))


def _combine_coverage(session: nox.Session, feeding: list[str]) -> None:
    session.install("coverage[toml]")
    for command in sessions.coverage_commands(feeding):
        session.run(*command)
