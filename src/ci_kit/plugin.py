"""The pytest plugin: options, who prepares the run, the hand-off to xdist workers.

Registered through the ``pytest11`` entry point, so every pytest process in an
environment that has the kit installed imports it, whether its project uses the
kit or not. At import it therefore loads nothing but the standard library, pytest
and the kit's light modules (``config``, ``fixtures``, ``errors``); SQLAlchemy,
psycopg and the server code are imported only by a run that enables the kit.

It holds no SQL: it decides who prepares the run (the xdist controller, or a
serial pytest process), hands the plan to workers through ``workerinput`` as
pytest-xdist's own plugins do, and turns the kit's errors into one-line usage
errors.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pytest

from ci_kit.config import SETTINGS, KitConfig, is_enabled, load_config, read_pyproject_table
from ci_kit.errors import CiKitError
from ci_kit.fixtures import (
    DATABASES_KEY,
    ISOLATION_MARKER,
    db_connection,
    db_engine,
    db_session,
    db_url,
)
from ci_kit.requested import PLUGIN_NAME as REQUESTED_PLUGIN

if TYPE_CHECKING:
    from ci_kit.lifecycle import RunPlan, RunReport

__all__ = ["db_connection", "db_engine", "db_session", "db_url"]

_WIRE_KEY = "ci_kit"
_CONFIG_KEY = pytest.StashKey[KitConfig]()
_REPORT_KEY: pytest.StashKey[RunReport] = pytest.StashKey()
_STARTED_KEY = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ci-kit", "ci-kit: a PostgreSQL database per xdist worker")
    for setting in SETTINGS:
        group.addoption(setting.flag, **setting.option_kwargs())


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ISOLATION_MARKER}(mode): per-test database isolation: 'rollback' (default), "
        "'truncate' (real commits, tables emptied after) or 'fresh' (a clone of its own)",
    )
    config.stash[_STARTED_KEY] = time.perf_counter()
    try:
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        if workerinput is not None:
            if _WIRE_KEY in workerinput:
                from ci_kit.lifecycle import RunPlan

                plan = RunPlan.from_wire(workerinput[_WIRE_KEY])
                _open_databases(config, plan, workerinput["workerid"])
            return
        if _only_informs(config) or not _wanted(config):
            return
        kit = _load_config(config)
        config.stash[_CONFIG_KEY] = kit
        plan = _prepare_run(config, kit)
        if _is_xdist_controller(config):
            config.pluginmanager.register(_ControllerHooks(plan), "ci_kit_controller")
        else:
            _open_databases(config, plan, None)
    except CiKitError as error:
        raise pytest.UsageError(f"ci-kit: {_safe_message(config, error)}") from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    report = config.stash.get(_REPORT_KEY, None)
    return [f"ci-kit: {line}" for line in report.lines()] if report else []


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One closing line: tests, workers, time, server, template."""
    report = config.stash.get(_REPORT_KEY, None)
    if report is None or hasattr(config, "workerinput"):
        return
    outcomes = {
        key: len(terminalreporter.stats.get(key, []))
        for key in ("passed", "failed", "error", "skipped")
    }
    tests = sum(outcomes.values())
    detail = ", ".join(f"{count} {key}" for key, count in outcomes.items() if count)
    workers = config.getoption("numprocesses", None) if _is_xdist_controller(config) else None
    where = f"{workers} workers" if workers else "1 process"
    seconds = time.perf_counter() - config.stash[_STARTED_KEY]
    terminalreporter.write_line(
        f"ci-kit: {tests} tests ({detail or 'none run'}) on {where} in {seconds:.1f} s; "
        f"{report.summary()}"
    )


class _ControllerHooks:
    """Registered only on an xdist controller, like xdist's own ``DSession``."""

    def __init__(self, plan: RunPlan) -> None:
        self._wire = plan.to_wire()

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_WIRE_KEY] = self._wire


def _cli_values(config: pytest.Config) -> dict[str, object]:
    return {setting.dest: config.getoption(setting.dest) for setting in SETTINGS}


def _wanted(config: pytest.Config) -> bool:
    """Does this run use the kit? Cheap: asked by every pytest process."""
    if config.pluginmanager.has_plugin(REQUESTED_PLUGIN):
        return True
    return is_enabled(read_pyproject_table(config.rootpath), os.environ, _cli_values(config))


def _load_config(config: pytest.Config) -> KitConfig:
    table = read_pyproject_table(config.rootpath) or {}
    return load_config(config.rootpath, table, os.environ, _cli_values(config))


def _prepare_run(config: pytest.Config, kit: KitConfig) -> RunPlan:
    from ci_kit.lifecycle import prepare_run

    writer = config.get_terminal_writer()
    verbose = config.get_verbosity() > 0

    def log(message: str) -> None:
        writer.line(f"ci-kit: {message}")

    def echo(command: str) -> None:
        if verbose:
            log(command)

    run = prepare_run(kit, log=log, echo=echo)
    config.stash[_REPORT_KEY] = run.report

    def close() -> None:
        dropped = run.close()
        if dropped:
            log(f"dropped {len(dropped)} test database(s)")

    config.add_cleanup(close)
    return run.plan


def _open_databases(config: pytest.Config, plan: RunPlan, worker_id: str | None) -> None:
    """Clone this process's database before collection, so application imports see it."""
    from ci_kit.dburl import render
    from ci_kit.lifecycle import WorkerDatabases

    databases = WorkerDatabases(plan, worker_id)
    config.add_cleanup(databases.close)
    url = databases.create()
    config.stash[DATABASES_KEY] = databases
    if plan.url_env:
        os.environ[plan.url_env] = render(url)


def _only_informs(config: pytest.Config) -> bool:
    """Runs that list or explain rather than test need no server."""
    option = config.option
    return any(
        getattr(option, name, False)
        for name in (
            "help",
            "version",
            "collectonly",
            "showfixtures",
            "show_fixtures_per_test",
            "markers",
        )
    )


def _is_xdist_controller(config: pytest.Config) -> bool:
    return bool(
        config.pluginmanager.hasplugin("xdist")
        and config.getoption("dist", "no") != "no"
        and config.getoption("tx", None)
    )


def _safe_message(config: pytest.Config, error: CiKitError) -> str:
    """The error's text with any configured password masked, whatever raised it."""
    message = str(error)
    kit = config.stash.get(_CONFIG_KEY, None)
    if kit is not None and kit.url is not None:
        from ci_kit.dburl import redact

        message = redact(message, kit.url)
    return message
