"""The pytest plugin: options, who prepares the run, how many workers it serves.

Registered through the ``pytest11`` entry point, so every pytest process in an
environment that has the kit installed imports it, whether its project uses the
kit or not. At import it therefore loads nothing but the standard library, pytest
and the kit's light modules (``config``, ``fixtures``, ``handoff``, ``errors``);
SQLAlchemy, psycopg and the server code are imported only by a run that enables
the kit.

It holds no SQL: it decides who prepares the run (the xdist controller, or a
serial pytest process) and for how many workers, leaves the plan for the workers
(``handoff``), and turns the kit's errors into one-line usage errors.

All of that happens in ``pytest_load_initial_conftests``, before pytest imports
any ``conftest.py``: a conftest that imports the application builds its engine
from ``DATABASE_URL`` (``url-env``) at that moment, and must see the test
database, never the developer's. pytest has not parsed the command line into
``config.option`` yet then, so the plugin parses it itself, once per process.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from ci_kit.config import SETTINGS, KitConfig, is_enabled, load_config, read_pyproject_table
from ci_kit.errors import CiKitError, ConfigurationError
from ci_kit.fixtures import (
    DATABASES_KEY,
    ISOLATION_MARKER,
    db_connection,
    db_engine,
    db_session,
    db_url,
)
from ci_kit.handoff import (
    PlanHandoff,
    RefusedByController,
    hand_to_workers,
    plan_from_controller,
    set_for_the_run,
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
from ci_kit.project import check_table_is_read
from ci_kit.requested import PLUGIN_NAME as REQUESTED_PLUGIN

if TYPE_CHECKING:
    from ci_kit.background import BackgroundPreparation
    from ci_kit.lifecycle import PreparedRun
    from ci_kit.plan import RunPlan, RunReport

__all__ = ["db_connection", "db_engine", "db_session", "db_url", "phase_seconds"]

_CONFIG_KEY = pytest.StashKey[KitConfig]()
_REPORT_KEY: pytest.StashKey[RunReport] = pytest.StashKey()
_STARTED_KEY = pytest.StashKey[float]()
_NOTES_KEY = pytest.StashKey[list[str]]()
_OPTIONS_KEY = pytest.StashKey[argparse.Namespace]()
_WORKERS_KEY = pytest.StashKey[int]()
_HANDOFF_KEY = pytest.StashKey[PlanHandoff]()
_PREPARATION_KEY: pytest.StashKey[BackgroundPreparation] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ci-kit", "ci-kit: a PostgreSQL database per xdist worker")
    for setting in SETTINGS:
        group.addoption(setting.flag, **setting.option_kwargs())
        parser.addini(setting.ini, **setting.ini_kwargs())


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    config = early_config
    config.stash[_STARTED_KEY] = time.perf_counter()
    try:
        try:
            handed_over = plan_from_controller(config, os.environ)
        except RefusedByController:
            _end_quietly()
        if handed_over is not None:
            _open_own_databases(config, *handed_over)
            return
        # pytest's own parse of this moment is an undocumented attribute; this one
        # costs a tenth of a millisecond, once per process.
        config.stash[_OPTIONS_KEY] = parser.parse_known_args(args)
        if _only_informs(config):
            return
        table = read_pyproject_table(config.rootpath)
        check_table_is_read(config.rootpath, config.inipath, _start_paths(config))
        ini, cli = _ini_values(config), _cli_values(config)
        if not _requested(config) and not is_enabled(table, os.environ, cli, ini=ini):
            return
        kit = load_config(config.rootpath, table or {}, os.environ, cli, ini=ini)
        config.stash[_CONFIG_KEY] = kit
        _warn_unmanaged(config, kit)
        workers = config.stash[_WORKERS_KEY] = _planned_workers(config)
        if workers:
            _defer_preparation(config, kit)
        else:
            _open_own_databases(config, _prepare_run(config, kit), None)
    except CiKitError as error:
        raise pytest.UsageError(f"ci-kit: {_safe_message(config, error)}") from None
    except KeyboardInterrupt as interrupt:
        _stop_interrupted(interrupt)


def _stop_interrupted(interrupt: KeyboardInterrupt) -> NoReturn:
    """Ctrl-C or SIGTERM while the kit prepares, before pytest's session: one line,
    and pytest's exit code for it.

    pytest reports an interrupt itself only once its session has begun; before,
    it would be a traceback through the kit's and the user's frames.
    """
    sys.stderr.write(f"ERROR: ci-kit: {_interrupted_line(interrupt)}\n")
    sys.stderr.flush()
    raise SystemExit(pytest.ExitCode.INTERRUPTED)


def _interrupted_line(interrupt: KeyboardInterrupt) -> str:
    from ci_kit.errors import Interrupted

    said = str(interrupt) if isinstance(interrupt, Interrupted) else ""
    return said or f"interrupted ({str(interrupt) or 'SIGINT'}) while preparing the run"


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
    """No password in a failure's report; a failure every later test would share ends the run.

    Such a failure (the server went away, refuses the kit's role, lost the database)
    is one line and the last test run. Cheap for every other report: only a failure
    in a process with a kit database is looked at, and only a lost or refused
    connection makes the kit ask the server.
    """
    report = yield
    databases = item.config.stash.get(DATABASES_KEY, None)
    if report.failed and databases is not None:
        from ci_kit.outage import stopping_line
        from ci_kit.redaction import redact_report

        server_url = databases.plan.server_url
        line = None
        if call.excinfo is not None:
            line = stopping_line(call.excinfo.value, server_url, databases.url)
        if line is not None:
            report.longrepr = line
            item.session.shouldfail = line
        redact_report(report, server_url)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """A module that fails to import (an application connecting at import) shows no password."""
    report = yield
    databases = collector.config.stash.get(DATABASES_KEY, None)
    if report.failed and databases is not None:
        from ci_kit.redaction import redact_report

        redact_report(report, databases.plan.server_url)
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
    _check_loaded_in_time(config)
    _check_xdist_agrees(config)


def _check_loaded_in_time(config: pytest.Config) -> None:
    """Stop a run the kit should prepare but whose plugin came too late to do it.

    With ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``, a ``pytest_plugins = ["ci_kit.plugin"]``
    in a conftest loads the plugin while conftests are imported: after the moment it
    prepares a run, so every test would fail with "not enabled".
    """
    if _STARTED_KEY in config.stash:  # pytest_load_initial_conftests ran: in time
        return
    cli = {setting.dest: config.getoption(setting.dest, None) for setting in SETTINGS}
    table = read_pyproject_table(config.rootpath)
    if not _requested(config) and not is_enabled(table, os.environ, cli, ini=_ini_values(config)):
        return
    raise pytest.UsageError(
        "ci-kit: the plugin was loaded by a conftest.py (pytest_plugins), after the moment "
        "it prepares a run, which is before any conftest is imported; with "
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD set, load it with -p ci_kit.plugin instead"
    )


def _check_xdist_agrees(config: pytest.Config) -> None:
    """Stop the run when xdist's final say on workers contradicts the kit's early count.

    The kit counted before any conftest was loaded; a ``pytest_xdist_auto_num_workers``
    in a ``conftest.py`` answers xdist only later. Serving workers that never come,
    or none to those that do, would fail every test with a riddle; this is one line.
    """
    planned = config.stash.get(_WORKERS_KEY, None)
    started = _xdist_workers(config)
    if planned is not None and bool(planned) != bool(started):
        raise pytest.UsageError(
            f"ci-kit: the kit prepared this run for {planned or 'no'} xdist workers before "
            f"any conftest.py was loaded, and xdist starts {started or 'none'}: a "
            "pytest_xdist_auto_num_workers in a conftest.py comes too late for the kit; "
            "set PYTEST_XDIST_AUTO_NUM_WORKERS, or give -n a number"
        )


def _xdist_workers(config: pytest.Config) -> int:
    """The workers xdist starts, from its options as its ``pytest_cmdline_main`` left them."""
    distributed = config.getoption("dist", "no") != "no"
    return _tx_workers(config.getoption("tx", None) or []) if distributed else 0


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
    workers = _xdist_workers(config)
    where = f"{workers} workers" if workers else "1 process"
    seconds = time.perf_counter() - config.stash.get(_STARTED_KEY, time.perf_counter())
    start_up = start_up_summary(config)
    terminalreporter.write_line(
        f"ci-kit: {tests} tests ({detail or 'none run'}) on {where} in {seconds:.1f} s; "
        f"{report.summary()}" + (f"; {start_up}" if start_up else "")
    )


def _defer_preparation(config: pytest.Config, kit: KitConfig) -> None:
    """An xdist controller prepares on a thread while it imports the conftests and
    xdist starts the workers (:mod:`ci_kit.background`); it claims the run in
    pytest_collection.

    The workers start up (an interpreter, pytest, its plugins) meanwhile and wait
    for the plan where they need it (:mod:`ci_kit.handoff`), which the thread hands
    them as soon as it has one. The controller imports the conftests too, but has no
    database: its variables name one that exists nowhere, so an accidental
    connection fails instead of landing elsewhere.
    """
    from ci_kit.dburl import DRIVERNAME
    from ci_kit.variables import absent_database_url, rendered

    handoff = config.stash[_HANDOFF_KEY] = hand_to_workers(config)
    absent = absent_database_url(kit.url, f"{kit.base_name}_controller")
    _point_variables(config, kit.env, rendered(kit.env, absent, kit.url_driver or DRIVERNAME))
    # Imported here, not on the thread, while the conftests import the same libraries.
    import_libraries(config.stash)
    with phase(config.stash, "import"):
        from ci_kit.background import BackgroundPreparation
        from ci_kit.lifecycle import prepare_run
        from ci_kit.schema.process import ChildStart

    workers = config.stash[_WORKERS_KEY]

    def prepare(children: ChildStart) -> PreparedRun:
        with phase(config.stash, "prepare"):
            return prepare_run(kit, workers=workers, children=children)

    with _capture_suspended(config):  # the terminal, not the capture of the conftests' output
        children = ChildStart.now(stdout=os.dup(1), stderr=os.dup(2))
    preparation = BackgroundPreparation(
        prepare,
        children=children,
        level=_progress_level(config),
        on_ready=lambda run: handoff.publish(run.plan),
    )
    config.stash[_PREPARATION_KEY] = preparation
    config.add_cleanup(preparation.abandon)
    preparation.start()


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Any:
    """The controller's prepared run, claimed once xdist has started the workers.

    xdist starts them at the session's start (its ``pytest_sessionstart``, the
    last to run), so the first hook after it is where the controller waits for the
    preparation, if it is still running. A wrapper, because xdist's controller
    answers this hook first and alone. A run that cannot start ends here with one
    line; the waiting workers are told to just end.
    """
    _claim_prepared_run(session.config)
    return (yield)


def _claim_prepared_run(config: pytest.Config) -> None:
    preparation = config.stash.get(_PREPARATION_KEY, None)
    if preparation is None:
        return
    handoff = config.stash[_HANDOFF_KEY]
    try:
        run = preparation.claim(_early_log(config))
    except CiKitError as error:
        handoff.refuse()
        raise pytest.UsageError(f"ci-kit: {_safe_message(config, error)}") from None
    except KeyboardInterrupt as interrupt:
        handoff.refuse()
        # In the session: pytest's own way out (a SystemExit here is an INTERNALERROR).
        pytest.exit(
            f"ci-kit: {_interrupted_line(interrupt)}", returncode=pytest.ExitCode.INTERRUPTED
        )
    config.add_cleanup(preparation.release)  # after the run's close, added next
    _adopt_run(config, run)
    # The header was written before the run was prepared: its lines follow it.
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        for line in config.stash[_REPORT_KEY].lines():
            terminal.write_line(f"ci-kit: {line}")


def _end_quietly() -> NoReturn:
    """A worker whose controller could not prepare the run, and has said why, ends."""
    sys.stderr.flush()
    os._exit(int(pytest.ExitCode.USAGE_ERROR))


def _cli_values(config: pytest.Config) -> dict[str, object]:
    return {setting.dest: _option(config, setting.dest) for setting in SETTINGS}


def _ini_values(config: pytest.Config) -> dict[str, object]:
    """The settings as ini options: ``pytest.ini``, ``tox.ini``, ``setup.cfg``, ``-o``...

    pytest has read its files and ``-o`` by now; a value of the wrong type is
    pytest's error, given the option's name it lacks (``invalid truth value 'maybe'``).
    """
    values: dict[str, object] = {}
    for setting in SETTINGS:
        try:
            values[setting.ini] = config.getini(setting.ini)
        except pytest.UsageError as error:
            raise ConfigurationError(f"ini option {setting.ini}: {error}") from None
    return values


def _requested(config: pytest.Config) -> bool:
    """Was the kit switched on for this run whatever the configuration (``python -m ci_kit``)?"""
    return config.pluginmanager.has_plugin(REQUESTED_PLUGIN)


def _prepare_run(config: pytest.Config, kit: KitConfig) -> RunPlan:
    """A serial run's preparation, before pytest imports the conftests."""
    import_libraries(config.stash)
    with phase(config.stash, "import"):
        from ci_kit.lifecycle import prepare_run
        from ci_kit.logs import forwarded_to

    # What the preparation prints (an env.py's own logging, with alembic-logging =
    # "env") is the run's output, not start-up noise for pytest's capture to drop.
    with (
        phase(config.stash, "prepare"),
        _capture_suspended(config),
        forwarded_to(_early_log(config), level=_progress_level(config)),
    ):
        run = prepare_run(kit)
    return _adopt_run(config, run)


def _progress_level(config: pytest.Config) -> int:
    """The kit's progress (INFO), and with -v every command it runs (DEBUG), as lines
    on the terminal: pytest's logging plugin does not exist yet."""
    verbose = (_option(config, "verbose", 0) or 0) > 0
    return logging.DEBUG if verbose else logging.INFO


def _adopt_run(config: pytest.Config, run: PreparedRun) -> RunPlan:
    """The prepared run is this process's: its report, its close, its lock watch."""
    from ci_kit.logs import forwarded_to

    config.stash[_REPORT_KEY] = run.report
    record_phase(config.stash, "server", run.report.server_seconds)
    record_phase(config.stash, "template", run.report.template_seconds)
    log = _early_log(config)

    def close() -> None:
        with forwarded_to(log, level=_progress_level(config)):
            dropped = run.close()
        if dropped:
            log(f"dropped {len(dropped)} test database(s)")

    config.add_cleanup(close)
    config.pluginmanager.register(_LockWatch(run.lost_lock_line), "ci-kit-lock-watch")
    return run.plan


class _LockWatch:
    """Stops the run, once, when the server has ended its lock session.

    Without that session another run would sweep this run's databases as a crashed
    run's. Asked after each test (its teardown report) by the process that holds
    the locks: a serial run, or the xdist controller, which hears every worker's
    reports; a loss after the last test is the cleanup's warning line.
    """

    def __init__(self, lost_line: Callable[[], str | None]) -> None:
        self._lost_line = lost_line

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" and (line := self._lost_line()) is not None:
            pytest.exit(line, returncode=pytest.ExitCode.USAGE_ERROR)


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


def _open_own_databases(config: pytest.Config, plan: RunPlan, worker_id: str | None) -> None:
    """This process's clone; any failure (a driver's error too) becomes one line.

    A worker's line is one the controller recognises (:func:`_worker_error_line`);
    a serial run's is the run's usage error. Neither carries the frames whose
    locals hold the connection string.
    """
    try:
        _open_databases(config, plan, worker_id)
    except Exception as error:
        from ci_kit.connecting import driver_error_line
        from ci_kit.dburl import redact

        reason = driver_error_line(error, plan.server_url) or (
            str(error) if isinstance(error, CiKitError) else f"{type(error).__name__}: {error}"
        )
        reason = redact(" ".join(reason.split()), plan.server_url)
        if worker_id is None:
            raise pytest.UsageError(f"ci-kit: could not open the test database: {reason}") from None
        line = f"{_WORKER_ERROR}{worker_id} could not open its database: {reason}"
        raise pytest.UsageError(line) from None


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
        # A serial run's cleanup warnings are the run's own lines; a worker's reach
        # its stderr, which xdist relays, through logging's last resort.
        shown = contextlib.nullcontext() if worker_id else _lines_on_terminal(config)
        with phase(config.stash, "close"), shown:
            databases.close()

    config.add_cleanup(close)
    with phase(config.stash, "clone"):
        databases.create()
    config.stash[DATABASES_KEY] = databases
    from ci_kit.dburl import with_database

    values = plan.variables_for(with_database(plan.server_url, databases.name))
    _point_variables(config, plan.env, values)


def _lines_on_terminal(config: pytest.Config) -> contextlib.AbstractContextManager[None]:
    """The kit's warnings as ``ci-kit: ...`` lines while the block runs."""
    from ci_kit.logs import forwarded_to

    return forwarded_to(_early_log(config), level=logging.WARNING)


def _point_variables(
    config: pytest.Config, templates: Mapping[str, str], values: Mapping[str, str]
) -> None:
    """Point the project's variables at this process's database until the run ends.

    What they held before (the developer's ``DATABASE_URL`` from a ``.env``) is
    named, masked, in the run's header, and restored afterwards; the kit never
    connects to it.
    """
    from ci_kit.variables import masked_value

    before = [
        f"{name} was {masked_value(templates[name], previous)}"
        for name, value in values.items()
        if (previous := os.environ.get(name)) is not None and previous != value
    ]
    set_for_the_run(config, values)
    if before:
        _note(
            config,
            f"{', '.join(before)} before this run: every test process uses its own "
            "database instead; the kit never connects to that one",
        )


def _warn_unmanaged(config: pytest.Config, kit: KitConfig) -> None:
    """One header line when the application may find its database where the kit does not point.

    The trap it names: a project that configures the kit but not its variables
    runs the application's engine, and the conftest's writes, on the database its
    settings name, the developer's, while every test passes.
    """
    from ci_kit.variables import masked_value, suggested_template, unmanaged

    found = unmanaged(kit.env, os.environ, config.rootpath)
    if not found:
        return
    described = ", ".join(
        f"{name}={masked_value(suggested_template(name), os.environ[name])}"
        if where == "environment"
        else f"{name} (in {where})"
        for name, where in found
    )
    settings = ", ".join(f'{name} = "{suggested_template(name)}"' for name, _ in found)
    _note(
        config,
        f"{described} set, and not pointed at the test databases: code that reads "
        f"{'it' if len(found) == 1 else 'them'} reaches the database named there; add "
        f"[tool.ci-kit.env] {settings} (README: Adoption guide)",
    )


def _note(config: pytest.Config, line: str) -> None:
    """A line for the run's header, under the report's."""
    config.stash.setdefault(_NOTES_KEY, []).append(line)


def _option(config: pytest.Config, dest: str, default: Any = None) -> Any:
    """An option's value while conftests are not yet loaded: the kit's early parse."""
    return getattr(config.stash[_OPTIONS_KEY], dest, default)


def _start_paths(config: pytest.Config) -> list[Path]:
    """Where the run starts, as pytest's rootdir rule sees it: the test paths, else here."""
    here = config.invocation_params.dir
    given = [here / str(arg).partition("::")[0] for arg in _option(config, "file_or_dir") or []]
    return [path for path in given if path.exists()] or [here]


def _only_informs(config: pytest.Config) -> bool:
    """Runs that list or explain rather than test need no server."""
    informing = ("help", "version", "collectonly", "showfixtures", "show_fixtures_per_test")
    return any(_option(config, name, False) for name in (*informing, "markers"))


def _planned_workers(config: pytest.Config) -> int:
    """How many workers xdist will start, as it will count them; 0 when it starts none.

    Asked before xdist's own ``pytest_cmdline_main`` turns ``-n`` into ``--tx``, so its
    rules are applied here to the options parsed so far: ``-n auto`` counted by
    xdist's hook, none with ``--pdb`` under ``-n auto``, ``-n`` capped by
    ``--maxprocesses``, and ``--tx`` specs (``2*popen`` is two) only with a
    ``--dist`` mode: alone they distribute nothing.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return 0
    wanted = _option(config, "numprocesses")
    if wanted in ("auto", "logical"):
        if _option(config, "usepdb", False):
            return 0
        wanted = _auto_workers(config)
    if wanted is not None:
        most = _option(config, "maxprocesses")
        return min(wanted, most) if most else int(wanted)
    if not _option(config, "distload", False) and _option(config, "dist", "no") == "no":
        return 0
    return _tx_workers(_option(config, "tx") or [])


def _auto_workers(config: pytest.Config) -> int:
    """``-n auto``'s count, from xdist's hook ``pytest_xdist_auto_num_workers``.

    xdist asks it in ``pytest_cmdline_main``, with ``config.option`` parsed; here
    that parse is still to come, so the hook sees the kit's early parse there
    meanwhile (xdist's own answer reads ``numprocesses``: ``logical`` counts
    logical CPUs). Answers from ``conftest.py`` files, not loaded yet, are missed:
    :func:`_check_xdist_agrees` stops a run they would change.
    """
    options = vars(config.option)
    defaults = dict(options)
    options.update(vars(config.stash[_OPTIONS_KEY]))
    try:
        return int(config.hook.pytest_xdist_auto_num_workers(config=config))
    finally:
        options.clear()
        options.update(defaults)


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
