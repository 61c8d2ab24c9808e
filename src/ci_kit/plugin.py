"""The pytest plugin: options, who prepares the run, the hand-off to xdist workers.

Registered through the ``pytest11`` entry point, so every pytest process in an
environment that has the kit installed imports it, whether its project uses the
kit or not. At import it therefore loads nothing but the standard library, pytest
and the kit's light modules (``config``, ``fixtures``, ``errors``); SQLAlchemy,
psycopg and the server code are imported only by a run that enables the kit.

It holds no SQL: it decides who prepares the run (the xdist controller, or a
serial pytest process), hands the plan to the workers, and turns the kit's errors
into one-line usage errors.

All of that happens in ``pytest_load_initial_conftests``, before pytest imports
any ``conftest.py``: a conftest that imports the application builds its engine
from ``DATABASE_URL`` (``url-env``) at that moment, and must see the test
database, never the developer's. For the same reason the plan reaches xdist
workers through their environment, which they inherit from the controller,
rather than through ``workerinput``, which a worker receives only after its
conftests are loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
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
from ci_kit.phases import (
    WORKER_OUTPUT_KEY,
    import_libraries,
    keep_worker_phases,
    phase,
    phase_seconds,
    start_up_summary,
)
from ci_kit.phases import record as record_phase
from ci_kit.requested import PLUGIN_NAME as REQUESTED_PLUGIN

if TYPE_CHECKING:
    from ci_kit.plan import RunPlan, RunReport

__all__ = ["db_connection", "db_engine", "db_session", "db_url", "phase_seconds"]

_PLAN_ENV = "CI_KIT_RUN_PLAN"
_CONFIG_KEY = pytest.StashKey[KitConfig]()
_REPORT_KEY: pytest.StashKey[RunReport] = pytest.StashKey()
_STARTED_KEY = pytest.StashKey[float]()
_NOTES_KEY = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ci-kit", "ci-kit: a PostgreSQL database per xdist worker")
    for setting in SETTINGS:
        group.addoption(setting.flag, **setting.option_kwargs())


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    config = early_config
    config.stash[_STARTED_KEY] = time.perf_counter()
    try:
        handed_over = _plan_from_controller(config, os.environ)
        if handed_over is not None:
            _open_worker_databases(config, *handed_over)
            return
        if _only_informs(config):
            return
        table = read_pyproject_table(config.rootpath)
        if not _wanted(config, table):
            return
        kit = load_config(config.rootpath, table or {}, os.environ, _cli_values(config))
        config.stash[_CONFIG_KEY] = kit
        workers = _planned_workers(config)
        plan = _prepare_run(config, kit, workers=workers)
        if workers:
            _hand_to_workers(config, plan)
        else:
            _open_databases(config, plan, None)
    except CiKitError as error:
        raise pytest.UsageError(f"ci-kit: {_safe_message(config, error)}") from None


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # xdist's hook: xdist may be absent
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """A worker that could not open its database ends the run, once.

    xdist replaces a worker that dies, so a worker failing at its clone would be
    restarted, fail again and finally leave the run to the workers that could
    start: the run might even pass. The worker's one line travels in the error
    xdist hands over; stopping here, before xdist's own reporter prints the
    traceback and before it clones the worker, makes it the run's one line.
    """
    keep_worker_phases(node.config, node.gateway.id, getattr(node, "workeroutput", {}))
    line = _worker_error_line(error)
    if line is not None:
        pytest.exit(line, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A test failing because the server went away is one line, and the last test run.

    Cheap for every other report: only a failure in a process with a kit database
    is looked at, and only a lost connection makes the kit ask the server.
    """
    report = yield
    if report.failed and call.excinfo is not None:
        databases = item.config.stash.get(DATABASES_KEY, None)
        if databases is not None:
            from ci_kit.outage import lost_server_line

            line = lost_server_line(call.excinfo.value, databases.plan.server_url)
            if line is not None:
                report.longrepr = line
                item.session.shouldfail = line
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker hands its phases to the controller, for the run's closing line."""
    output = getattr(session.config, "workeroutput", None)
    phases = phase_seconds(session.config)
    if output is not None and phases:
        output[WORKER_OUTPUT_KEY] = phases


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ISOLATION_MARKER}(mode): per-test database isolation: 'rollback' (default), "
        "'truncate' (real commits, tables emptied after) or 'fresh' (a clone of its own)",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    report = config.stash.get(_REPORT_KEY, None)
    lines = [*(report.lines() if report else []), *config.stash.get(_NOTES_KEY, [])]
    return [f"ci-kit: {line}" for line in lines]


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
    distributed = config.getoption("dist", "no") != "no"  # xdist's options, resolved by now
    workers = _tx_workers(config.getoption("tx", None) or []) if distributed else 0
    where = f"{workers} workers" if workers else "1 process"
    seconds = time.perf_counter() - config.stash.get(_STARTED_KEY, time.perf_counter())
    start_up = start_up_summary(config)
    terminalreporter.write_line(
        f"ci-kit: {tests} tests ({detail or 'none run'}) on {where} in {seconds:.1f} s; "
        f"{report.summary()}" + (f"; {start_up}" if start_up else "")
    )


def _hand_to_workers(config: pytest.Config, plan: RunPlan) -> None:
    """Put the plan where the workers xdist is about to start will find it.

    It carries the server's password, so it lives in the environment (never argv),
    only for this run, and each worker takes it out of its own environment at once.
    The controller's pid travels along: a pytest started by a test inside a worker
    inherits the variable, but not as a child of the controller, so it ignores it.
    """
    wire = {"controller": os.getpid(), "plan": plan.to_wire()}
    _set_for_the_run(config, _PLAN_ENV, json.dumps(wire))
    if plan.url_env:
        # The controller imports conftests too, but has no database: a name that
        # exists nowhere makes an accidental connection fail instead of landing elsewhere.
        _point_url_env(config, plan, plan.base_name + "_controller")


def _set_for_the_run(config: pytest.Config, name: str, value: str) -> None:
    """``os.environ[name] = value`` until the run ends, then what it was."""
    from ci_kit.workers import environment_variable

    restore = contextlib.ExitStack()
    restore.enter_context(environment_variable(name, value))
    config.add_cleanup(restore.close)


def _plan_from_controller(
    config: pytest.Config, environ: Mapping[str, str]
) -> tuple[RunPlan, str] | None:
    """This worker's plan and id, when this process is an xdist worker of a kit run."""
    raw = environ.get(_PLAN_ENV)
    worker_id = environ.get("PYTEST_XDIST_WORKER")
    if not raw or not worker_id:
        return None
    wire = json.loads(raw)
    if wire["controller"] != os.getppid():
        return None
    del os.environ[_PLAN_ENV]  # the password goes no further than this worker
    import_libraries(config.stash)
    with phase(config.stash, "import"):
        from ci_kit.plan import RunPlan

    return RunPlan.from_wire(wire["plan"]), worker_id


def _cli_values(config: pytest.Config) -> dict[str, object]:
    return {setting.dest: _option(config, setting.dest) for setting in SETTINGS}


def _wanted(config: pytest.Config, table: Mapping[str, object] | None) -> bool:
    """Does this run use the kit? Cheap: asked by every pytest process."""
    if config.pluginmanager.has_plugin(REQUESTED_PLUGIN):
        return True
    return is_enabled(table, os.environ, _cli_values(config))


def _prepare_run(config: pytest.Config, kit: KitConfig, *, workers: int) -> RunPlan:
    import_libraries(config.stash)
    with phase(config.stash, "import"):
        from ci_kit.lifecycle import prepare_run

    log = _early_log(config)
    verbose = (_option(config, "verbose", 0) or 0) > 0

    def echo(command: str) -> None:
        if verbose:
            log(command)

    # What the preparation prints (an env.py's own logging, with alembic-logging =
    # "env") is the run's output, not start-up noise for pytest's capture to drop.
    with (
        phase(config.stash, "prepare"),
        _capture_suspended(config),
        _project_modules_forgotten(config.rootpath),
    ):
        run = prepare_run(kit, log=log, echo=echo, workers=workers)
    config.stash[_REPORT_KEY] = run.report
    record_phase(config.stash, "server", run.report.server_seconds)
    record_phase(config.stash, "template", run.report.template_seconds)

    def close() -> None:
        dropped = run.close()
        if dropped:
            log(f"dropped {len(dropped)} test database(s)")

    config.add_cleanup(close)
    return run.plan


@contextlib.contextmanager
def _project_modules_forgotten(root: Path) -> Iterator[None]:
    """Forget the project's modules that building the template imported.

    An ``env.py`` importing the application runs its module-level code (an engine
    from ``DATABASE_URL``, cached settings) while ``url-env`` names the template.
    Forgotten, they are imported afresh by the conftests, with this process's own
    database; libraries (anything in a site-packages) stay, as pytester keeps them.
    """
    before = set(sys.modules)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            if _is_project_module(sys.modules[name], root):
                del sys.modules[name]


def _is_project_module(module: ModuleType, root: Path) -> bool:
    location = getattr(module, "__file__", None)
    if not location:
        return False
    path = Path(location)
    return path.is_relative_to(root) and not {"site-packages", "dist-packages"} & set(path.parts)


def _capture_suspended(config: pytest.Config) -> contextlib.AbstractContextManager[None]:
    """Past pytest's start-up capture, which swallows output unless start-up fails."""
    capture = config.pluginmanager.getplugin("capturemanager")
    return capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()


def _early_log(config: pytest.Config) -> Callable[[str], None]:
    """Progress lines before pytest's terminal exists."""

    def log(message: str) -> None:
        with _capture_suspended(config):
            sys.stdout.write(f"ci-kit: {message}\n")
            sys.stdout.flush()

    return log


_WORKER_ERROR = "ci-kit: worker "


def _open_worker_databases(config: pytest.Config, plan: RunPlan, worker_id: str) -> None:
    """A worker's clone; any failure becomes one line the controller recognises."""
    try:
        _open_databases(config, plan, worker_id)
    except Exception as error:
        from ci_kit.dburl import redact

        reason = str(error) if isinstance(error, CiKitError) else f"{type(error).__name__}: {error}"
        message = redact(f"{worker_id} could not open its database: {reason}", plan.server_url)
        raise pytest.UsageError(_WORKER_ERROR + message) from None


def _worker_error_line(error: object | None) -> str | None:
    """The kit's line in a dead worker's error, if the kit is what stopped it."""
    lines = str(error or "").splitlines()
    for line in reversed(lines):
        start = line.find(_WORKER_ERROR)
        if start >= 0 and "UsageError" in line[:start]:
            return line[start:]
    return None


def _open_databases(config: pytest.Config, plan: RunPlan, worker_id: str | None) -> None:
    """Clone this process's database, and point ``url-env`` at it for the conftests."""
    from ci_kit.workers import WorkerDatabases

    databases = WorkerDatabases(plan, worker_id)

    def close() -> None:
        with phase(config.stash, "close"):
            databases.close()

    config.add_cleanup(close)
    with phase(config.stash, "clone"):
        databases.create()
    config.stash[DATABASES_KEY] = databases
    if plan.url_env:
        _point_url_env(config, plan, databases.name)


def _point_url_env(config: pytest.Config, plan: RunPlan, database: str) -> None:
    """Set ``url-env`` to ``database`` on the run's server until the run ends.

    A value it held before (the developer's ``DATABASE_URL`` from a ``.env``) is
    named, masked, in the run's header, and restored afterwards; the kit never
    connects to it.
    """
    from ci_kit.dburl import render, with_database

    name = plan.url_env
    assert name is not None
    previous = os.environ.get(name)
    url = render(with_database(plan.server_url, database))
    _set_for_the_run(config, name, url)
    if previous is not None and previous != url:
        config.stash[_NOTES_KEY] = [
            f"{name} was {_masked(previous)} before this run: every test process "
            f"uses its own database instead; the kit never connects to that one"
        ]


def _masked(raw: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from ci_kit.dburl import mask

    try:
        return mask(make_url(raw))
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "a value that is not a URL"


def _option(config: pytest.Config, dest: str, default: Any = None) -> Any:
    """An option's value while conftests are not yet loaded: pytest's early parse."""
    return getattr(config.known_args_namespace, dest, default)


def _only_informs(config: pytest.Config) -> bool:
    """Runs that list or explain rather than test need no server."""
    informing = ("help", "version", "collectonly", "showfixtures", "show_fixtures_per_test")
    return any(_option(config, name, False) for name in (*informing, "markers"))


def _planned_workers(config: pytest.Config) -> int:
    """How many workers xdist will start, as it will count them; 0 when it starts none.

    Asked before xdist's own ``pytest_cmdline_main`` turns ``-n`` into ``--tx``, so its
    rules are applied here to the options parsed so far: ``-n`` capped by
    ``--maxprocesses``, none with ``--pdb`` under ``-n auto``, and ``--tx`` specs
    (``2*popen`` is two) only with a ``--dist`` mode: alone they distribute nothing.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return 0
    wanted = _option(config, "numprocesses")
    if wanted in ("auto", "logical"):
        if _option(config, "usepdb", False):
            return 0
        # xdist's own count (its hook reads options not parsed yet): the override,
        # else the CPUs this process may run on. Only names are checked with it.
        override = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "")
        wanted = int(override) if override.isdigit() else len(os.sched_getaffinity(0))
    if wanted is not None:
        most = _option(config, "maxprocesses")
        return min(wanted, most) if most else int(wanted)
    if not _option(config, "distload", False) and _option(config, "dist", "no") == "no":
        return 0
    return _tx_workers(_option(config, "tx") or [])


def _tx_workers(specs: Sequence[str]) -> int:
    """The workers a list of ``--tx`` specs starts, counted as xdist counts them."""
    count = 0
    for spec in specs:
        number, star, _ = spec.partition("*")
        count += int(number) if star and number.isdigit() else 1
    return count


def _safe_message(config: pytest.Config, error: CiKitError) -> str:
    """The error's text with any configured password masked, whatever raised it."""
    message = str(error)
    kit = config.stash.get(_CONFIG_KEY, None)
    if kit is not None and kit.url is not None:
        from ci_kit.dburl import redact

        message = redact(message, kit.url)
    return message
