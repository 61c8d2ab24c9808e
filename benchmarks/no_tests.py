"""``-p benchmarks.no_tests``: a run that starts and ends like the suite's but runs no test.

The floor under a run's fixed seconds: what an xdist run of the sample suite costs
before its first test and after its last one with no kit at all: the controller's
and every worker's interpreter, pytest and its plugins, the application imported
through the conftests, collection, and the processes' ends. Loaded with
``-p no:ci_kit``: every collected test is deselected (in each worker, where xdist
collects), the kit's marker is declared so ``--strict-markers`` still collects the
files that use it, and "no tests ran" is a success, so hyperfine times it.
"""

from __future__ import annotations

import pytest

from ci_kit.fixtures import ISOLATION_MARKER


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ISOLATION_MARKER}: the kit's, declared for collection")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.hook.pytest_deselected(items=list(items))
    items.clear()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
