"""``-p benchmarks.probe``: every pytest process of a run notes when each of its phases began.

To account for every second of a parallel run, the benchmark needs the moments
only the processes themselves know: when the interpreter started, when the kit had
prepared (or cloned), when the conftests (the application) were imported, when
collection ended, when the first and the last test ran, and when the kit's
clean-up had finished. Each process writes them to ``<BENCH_PROBE_DIR>/<role>-<pid>.json``
(``role``: ``serial``, ``controller`` or the worker id ``gw0``...); xdist hands the
controller's ``-p`` options to its workers, so one ``-p`` covers them all.
:mod:`benchmarks.breakdown` turns the files into a breakdown of the run's wall time.

Times are ``time.time()`` values, comparable across processes (and with the moment
the benchmark launched pytest); CPU seconds are ``getrusage`` of the process itself.
Without ``BENCH_PROBE_DIR`` the plugin does nothing but look the variable up once.

The file is written at ``pytest_unconfigure``; again, with ``cleanup_end``, from a
config clean-up registered before the kit's (pytest runs clean-ups last-in first-out,
so that one runs after the kit has dropped its databases and stopped its server); and
a last time, with ``exit``, from an ``atexit`` handler.

The serial process or controller also samples the CPU of the run's server (see
:mod:`benchmarks.server_cpu`) at a few moments: the server named by
``BENCH_POSTMASTER_PID``, else the temporary cluster this process started. The kit's
embedded server dies with the run, so the benchmark cannot sample it from outside.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import resource
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks.procstat import process_start
from benchmarks.server_cpu import owned_postmaster, server_cpu_seconds
from ci_kit import phase_seconds

PROBE_DIR_ENV = "BENCH_PROBE_DIR"
"""The directory the records go to; the probe is enabled only when it is set."""
POSTMASTER_PID_ENV = "BENCH_POSTMASTER_PID"
"""The pid of the server whose CPU to sample, when it is not a cluster the run starts."""

SERIAL = "serial"
CONTROLLER = "controller"

MOMENTS = (
    "process_start",
    "preparse",
    "kit_ready",
    "conftests_loaded",
    "configure",
    "collection_finish",
    "first_test_start",
    "last_test_end",
    "session_finish",
    "session_finished",
    "unconfigure",
    "cleanup_end",
    "exit",
)
"""A process's moments, in the order they happen (any may be missing)."""

SERVER_MOMENTS = ("configure", "first_test", "session_finish", "unconfigure")
"""When the serial process or the controller samples the server's CPU."""


@dataclass
class ServerSamples:
    """The run's server as the serial process or controller saw it."""

    pid: int
    start: float | None
    """When the postmaster started (``time.time()``): after the launch, the run started it."""
    cpu: dict[str, float] = field(default_factory=dict)
    """Server CPU seconds so far, at each of :data:`SERVER_MOMENTS` it was sampled."""


@dataclass
class WorkerStart:
    """How the controller saw one worker start."""

    gateway: float | None = None
    """``pytest_xdist_newgateway``: xdist has spawned the worker's interpreter."""
    ready: float | None = None
    """``pytest_testnodeready``: the worker's session started (configured, not yet collected)."""


@dataclass
class ProcessRecord:
    """One pytest process of a run: the JSON file it wrote."""

    role: str
    pid: int
    process_start: float | None = None
    """When the OS started the process (``/proc/self/stat``, 10 ms resolution)."""
    preparse: float | None = None
    """``pytest_load_initial_conftests`` entered: pytest and its plugins are imported."""
    kit_ready: float | None = None
    """The ``tryfirst`` initial-conftest hooks are done: the kit has prepared (controller,
    serial) or cloned (worker)."""
    conftests_loaded: float | None = None
    """The initial conftests, and so the application, are imported."""
    configure: float | None = None
    collection_finish: float | None = None
    first_test_start: float | None = None
    last_test_end: float | None = None
    session_finish: float | None = None
    """``pytest_sessionfinish`` begins: the test loop is over."""
    session_finished: float | None = None
    """Every ``pytest_sessionfinish`` is done: session-scoped fixtures torn down, the
    summary written (serial), the workers shut down (controller)."""
    unconfigure: float | None = None
    cleanup_end: float | None = None
    """Every config clean-up has run (the kit's database drops and server stop); only
    in the file's second writing."""
    exit: float | None = None
    """The probe's ``atexit`` handler, registered before most others so run after them:
    only interpreter finalisation is left. Only in the file's third writing, which an
    xdist worker ending with ``os._exit`` never reaches."""
    tests: int = 0
    """Tests finished. The controller sees its workers' tests too: it counts them all."""
    busy: float = 0.0
    """Sum of the setup, call and teardown durations of those tests."""
    cpu: float = 0.0
    """User + system CPU seconds of the process itself, at its last writing."""
    cpu_at_first_test: float | None = None
    cpu_at_last_test: float | None = None
    kit: dict[str, float] = field(default_factory=dict)
    """``ci_kit.phase_seconds(config)`` when the kit has it: ``{"prepare": ...}``."""
    setup_nodes: float | None = None
    """Controller: ``pytest_xdist_setupnodes``, xdist about to spawn its workers."""
    workers: dict[str, WorkerStart] = field(default_factory=dict)
    """Controller: each worker's start, by worker id."""
    server: ServerSamples | None = None

    @property
    def is_worker(self) -> bool:
        return self.role not in (SERIAL, CONTROLLER)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRecord:
        values = dict(data)
        values["workers"] = {
            worker: WorkerStart(**start) for worker, start in values.get("workers", {}).items()
        }
        server = values.get("server")
        values["server"] = None if server is None else ServerSamples(**server)
        return cls(**values)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Probe:
    """The enabled probe of one process: registered as a plugin, fills in its record."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.record = ProcessRecord(role=SERIAL, pid=os.getpid())
        with contextlib.suppress(OSError):
            self.record.process_start = process_start()

    def write(self, config: pytest.Config | None) -> None:
        """Atomically: the benchmark may read the directory while a worker still writes.

        ``config``: refresh the kit's timings from it (not at exit: the run is over).
        """
        self.record.cpu = own_cpu()
        if config is not None:
            self.record.kit = phase_seconds(config)
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{self.record.role}-{self.record.pid}.json"
        staging = self.directory / f".{name}.tmp"
        staging.write_text(json.dumps(self.record.to_json(), indent=1))
        staging.replace(self.directory / name)

    def sample_server(self, moment: str) -> None:
        server = self.record.server
        if server is None:
            return
        with contextlib.suppress(OSError):
            server.cpu[moment] = server_cpu_seconds(server.pid)

    def _find_server(self) -> None:
        named = os.environ.get(POSTMASTER_PID_ENV, "")
        pid = int(named) if named.isdigit() else owned_postmaster(os.getpid())
        if pid is None:
            return
        try:
            start: float | None = process_start(pid)
        except OSError:
            start = None
        self.record.server = ServerSamples(pid=pid, start=start)

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        self.record.configure = time.time()
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if worker and hasattr(config, "workerinput"):
            self.record.role = worker
        elif _is_xdist_controller(config):
            self.record.role = CONTROLLER
            config.pluginmanager.register(_ControllerHooks(self.record), "benchmarks-probe-xdist")
        if not self.record.is_worker:
            self._find_server()
            self.sample_server("configure")

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.record.collection_finish = time.time()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: object) -> None:
        if self.record.first_test_start is None:
            self.record.first_test_start = time.time()
            self.record.cpu_at_first_test = own_cpu()
            if self.record.server is None and not self.record.is_worker:
                self._find_server()  # an xdist controller starts it after configure
            self.sample_server("first_test")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.record.busy += report.duration

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str, location: object) -> None:
        self.record.last_test_end = time.time()
        self.record.cpu_at_last_test = own_cpu()
        self.record.tests += 1

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        """Around every other plugin's: the terminal summary, xdist's wait for its workers."""
        self.record.session_finish = time.time()
        self.sample_server("session_finish")
        yield
        self.record.session_finished = time.time()

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.record.unconfigure = time.time()
        self.sample_server("unconfigure")
        self.write(config)

    def cleanup(self, config: pytest.Config) -> None:
        """The last clean-up of the run: after the kit's database drops and server stop."""
        if self.record.unconfigure is None:  # never configured (a usage error): nothing to say
            return
        self.record.cleanup_end = time.time()
        with contextlib.suppress(OSError):
            self.write(config)

    def at_exit(self) -> None:
        """Interpreter exit: after the atexit handlers registered later than this one."""
        if self.record.cleanup_end is None:
            return
        self.record.exit = time.time()
        with contextlib.suppress(OSError):
            self.write(None)


class _ControllerHooks:
    """xdist's hooks, registered only in a controller (xdist is then installed)."""

    def __init__(self, record: ProcessRecord) -> None:
        self.record = record

    def _worker(self, worker_id: str) -> WorkerStart:
        return self.record.workers.setdefault(worker_id, WorkerStart())

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: object) -> None:
        self.record.setup_nodes = time.time()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_newgateway(self, gateway: Any) -> None:
        self._worker(str(gateway.id)).gateway = time.time()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        self._worker(str(node.gateway.id)).ready = time.time()


def _is_xdist_controller(config: pytest.Config) -> bool:
    """Does this process hand tests to xdist workers? (``-n 0`` and ``-p no:xdist`` do not.)"""
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return False
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


_PROBE_KEY = pytest.StashKey[_Probe]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    """Enable the probe before the kit prepares: the first moment it can see."""
    directory = os.environ.get(PROBE_DIR_ENV)
    if not directory:
        yield
        return
    probe = _Probe(Path(directory))
    probe.record.preparse = time.time()
    early_config.stash[_PROBE_KEY] = probe
    # Registered before the kit's (its hook runs inside this wrapper): runs after it.
    early_config.add_cleanup(lambda: probe.cleanup(early_config))
    atexit.register(probe.at_exit)
    early_config.pluginmanager.register(probe, "benchmarks-probe")
    yield
    probe.record.conftests_loaded = time.time()


@pytest.hookimpl(specname="pytest_load_initial_conftests")
def pytest_load_initial_conftests_after_kit(early_config: pytest.Config) -> None:
    """A plain hook runs after the ``tryfirst`` ones (the kit's) and before conftests load."""
    probe = early_config.stash.get(_PROBE_KEY, None)
    if probe is not None:
        probe.record.kit_ready = time.time()


__all__ = [
    "MOMENTS",
    "POSTMASTER_PID_ENV",
    "PROBE_DIR_ENV",
    "SERVER_MOMENTS",
    "ProcessRecord",
    "ServerSamples",
    "WorkerStart",
]
