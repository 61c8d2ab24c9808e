"""Where every second of a run went: the probe's records turned into a wall-time breakdown.

The benchmark launches ``python -m ci_kit pytest ... -p benchmarks.probe`` at
``started`` (``time.time()``) and measures its wall time from outside; each pytest
process wrote a :class:`~benchmarks.probe.ProcessRecord`. :func:`account` cuts the
interval ``[started, started + wall]`` at the moments the serial process or the
controller saw (ready, first test, last test, end of clean-up), so that the top-level
rows add up to the wall time exactly; ``unaccounted`` is what came after the last
moment the probe could see (interpreter exit) and should be small.

The test phase of a parallel run, from the first test any worker started to the
last test any worker finished, is ``workers`` worker-seconds per second. Each
worker spends it starting late, running tests, between tests (pytest's own work,
and waiting for xdist to hand it more) or idle at the end; the rows give the
average worker's share, so they add up to the phase, and the details give each
worker's own. The idle tail is what ``--dist loadfile`` costs: a worker that ran
out of files waits for the other to finish its last one.

No I/O but :func:`load_records`: the rest is arithmetic on records, so tests feed
it synthetic ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from benchmarks.probe import CONTROLLER, SERIAL, ProcessRecord

Section = Literal["wall", "cpu", "limit"]

KIT_PHASES = {
    "libraries": "importing the kit's libraries (SQLAlchemy, psycopg)",
    "import": "importing the kit's own modules",
    "prepare": "server start, template build or check, trial clone",
    "server": "part of prepare: finding or starting the server (initdb, pg_ctl start)",
    "template": "part of prepare: building the template (migrations) or finding it built",
    "clone": "cloning this process's database from the template",
    "engine": "creating this process's engine",
    "close": "at the end: dropping this process's databases, disconnecting",
}
"""What the kit's own phase timings (``ci_kit.phase_seconds``) mean."""


@dataclass(frozen=True)
class Row:
    """One line of a breakdown.

    ``level`` 0 rows of the ``wall`` section add up to the wall time; a row of a
    deeper level details the nearest shallower row above it (its explanation says
    when its siblings overlap, per worker, rather than add up).
    """

    name: str
    seconds: float
    explanation: str
    level: int = 0
    section: Section = "wall"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WorkerTimes:
    """One xdist worker's life, in seconds: how it started, worked and ended."""

    id: str
    tests: int
    spawn: float
    """xdist's node setup → the worker's process start (workers are spawned one by one)."""
    interpreter: float
    """Process start → initial conftests: interpreter, execnet bootstrap, pytest, plugins."""
    kit_open: float
    """The kit's ``tryfirst`` start-up in the worker: its database clone."""
    conftests: float
    """The conftests (the application's import) and the rest of configuration."""
    collection: float
    to_first_test: float
    """Collection finished → first test: xdist's scheduler waits for every worker's list."""
    late_start: float
    """Its first test → the earliest first test of any worker."""
    busy: float
    between: float
    idle_tail: float
    """The last test any worker finished → this worker's last: idle at the end."""
    end_of_session: float
    """Its last test → its ``pytest_sessionfinish`` done (plugins' session-finish hooks)."""
    cleanup: float
    """Session finished → its clean-up done (unconfigure, the kit's database drop)."""
    cpu: float
    kit: dict[str, float] = field(default_factory=dict)

    @property
    def startup(self) -> float:
        """xdist's node setup → its first test."""
        return (
            self.spawn
            + self.interpreter
            + self.kit_open
            + self.conftests
            + self.collection
            + self.to_first_test
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "startup": self.startup}


@dataclass(frozen=True)
class Breakdown:
    """A run's wall time cut into named seconds, its CPU, and the best it could do."""

    wall: float
    cores: int
    tests: int
    workers: tuple[WorkerTimes, ...]
    """Empty for a serial run."""

    # The wall time, in order: these add up to ``wall``.
    launch_to_ready: float
    """Launch → ``pytest_configure`` of the serial process or controller."""
    to_first_test: float
    """Ready → the first test: collection (serial), or the workers' start-up (parallel)."""
    late_start: float
    """Mean over workers of their first test's lateness after the earliest (0 serial)."""
    busy: float
    """Mean over workers (serial: the process) of setup + call + teardown durations."""
    between_tests: float
    """Mean over workers of their test span not in tests: pytest's and xdist's own work."""
    idle_tail: float
    """Mean over workers of their idle time at the end of the test phase (0 serial)."""
    teardown: float
    """Last test → the last moment the probe saw (its atexit handler, else the end of the
    clean-ups): session end, database drops, server stop."""
    unaccounted: float
    """The rest of the wall time: interpreter finalisation, process exit and reaping."""

    # Parts of the rows above.
    process_launch: float
    """Launch → the OS started the process (fork and exec; ~10 ms resolution)."""
    interpreter: float
    """Process start → initial conftests: interpreters (``python -m ci_kit`` execs pytest),
    pytest and its plugins."""
    kit_preparation: float
    """The kit's ``tryfirst`` start-up in the serial process or controller."""
    conftests: float
    """Initial conftests (the application's import) and the rest of configuration."""
    collection: float
    """Serial: configure → collection finished. Parallel: the slowest worker's collection."""
    xdist_setup: float
    """Parallel: the controller's configure → xdist starts spawning workers."""
    end_of_session: float
    """The last test → ``pytest_sessionfinish`` done (serial process or controller)."""
    unconfigure: float
    """Session finished → ``pytest_unconfigure`` of the probe."""
    kit_cleanup: float
    """Unconfigure → every config clean-up done: the kit's database drops, server stop."""
    exit_handlers: float
    """Clean-ups done → the probe's atexit handler: pytest returning, later atexit handlers."""
    kit: dict[str, float]
    """The kit's own phase timings in the serial process or controller."""

    # CPU seconds.
    test_cpu: float
    """Pytest processes and the commands they waited for (RUSAGE_CHILDREN of the launcher)."""
    server_cpu: float
    server_cpu_source: str
    probe_cpu: float
    """The pytest processes' own CPU, as each reported it at its end (a cross-check)."""
    test_phase_cpu: float
    """CPU of the test phase: each process's from its first test to its last, plus the
    server's from the first test to the end of the session (when sampled)."""
    machine_cpu: float | None
    """The whole machine's busy CPU during the run, when the caller sampled it."""

    # The best this machine could do for this run.
    balanced_test_phase: float
    """The test phase had no worker idled at the end: late start + busy + between tests."""
    cpu_floor: float
    """The test phase's CPU spread over every core: no test phase can be shorter."""
    limit: float
    """Fixed parts (the wall outside the test phase) + max(balanced, CPU floor)."""

    @property
    def parallel(self) -> bool:
        return bool(self.workers)

    @property
    def test_phase(self) -> float:
        return self.late_start + self.busy + self.between_tests + self.idle_tail

    @property
    def fixed(self) -> float:
        """The wall outside the test phase: start-up and teardown, as serial as they are."""
        return self.wall - self.test_phase

    @property
    def longest_idle_tail(self) -> float:
        return max((worker.idle_tail for worker in self.workers), default=0.0)

    @property
    def total_cpu(self) -> float:
        return self.test_cpu + self.server_cpu

    @property
    def other_cpu(self) -> float | None:
        """CPU other processes used during the run: what competed with it for the cores."""
        return None if self.machine_cpu is None else self.machine_cpu - self.total_cpu

    @property
    def cpu_utilisation(self) -> float:
        """Total CPU / (wall x cores): 1.0 is every core busy for the whole run."""
        return self.total_cpu / (self.wall * self.cores) if self.wall > 0 else 0.0

    def wall_rows(self) -> list[Row]:
        """The level-0 rows of the wall section: they add up to ``wall``."""
        return [row for row in self.rows() if row.section == "wall" and row.level == 0]

    def rows(self) -> list[Row]:
        return [*self._wall_rows(), *self._cpu_rows(), *self._limit_rows()]

    def _wall_rows(self) -> list[Row]:
        rows = [
            Row(
                "launch to pytest ready",
                self.launch_to_ready,
                "launch → pytest_configure: interpreter, plugins, the kit's preparation, "
                "the application's import through the conftests",
            ),
            Row("process launch", self.process_launch, "fork and exec (10 ms resolution)", 1),
            Row(
                "interpreter, pytest and plugins",
                self.interpreter,
                "python -m ci_kit, its exec of pytest, pytest's and the plugins' imports",
                1,
            ),
            Row(
                "kit preparation",
                self.kit_preparation,
                "the kit's start-up before the conftests: its imports; the preparation runs "
                "on a thread beside the conftests and the workers' start-up (its rows below "
                "overlap them)"
                if self.parallel
                else "the kit's start-up before the conftests: its imports, server start, "
                "template build or check, this process's database",
                1,
            ),
            *_kit_rows(self.kit, level=2),
            Row(
                "conftests",
                self.conftests,
                "the initial conftests (the application's import) and the rest of configuration",
                1,
            ),
        ]
        if self.parallel:
            rows += self._worker_start_rows()
        else:
            rows += [
                Row(
                    "collection",
                    self.to_first_test,
                    "pytest_configure → the first test: collecting the tests and starting",
                ),
                Row("collecting", self.collection, "configure → collection finished", 1),
            ]
        rows += self._test_phase_rows()
        rows += self._teardown_rows()
        rows.append(
            Row(
                "unaccounted",
                self.unaccounted,
                "after the last moment the probe saw: interpreter finalisation (module "
                "teardown, garbage collection), process exit, the launcher noticing it",
            )
        )
        return rows

    def _worker_start_rows(self) -> list[Row]:
        rows = [
            Row(
                "worker start-up",
                self.to_first_test,
                "the controller's configure → the first test of the first worker ready",
            ),
            Row("xdist set-up", self.xdist_setup, "configure → xdist spawns its workers", 1),
        ]
        for worker in self.workers:
            rows += [
                Row(
                    f"{worker.id} start-up",
                    worker.startup,
                    "xdist's set-up → its first test (per worker: they overlap)",
                    1,
                ),
                Row(f"{worker.id} spawn", worker.spawn, "set-up → its process started", 2),
                Row(
                    f"{worker.id} interpreter",
                    worker.interpreter,
                    "interpreter, execnet bootstrap, pytest and plugins",
                    2,
                ),
                Row(f"{worker.id} kit", worker.kit_open, "the kit's start-up: its clone", 2),
                *_kit_rows(worker.kit, level=3, prefix=f"{worker.id} "),
                Row(
                    f"{worker.id} conftests",
                    worker.conftests,
                    "the application's import and the rest of configuration",
                    2,
                ),
                Row(f"{worker.id} collection", worker.collection, "collecting every test", 2),
                Row(
                    f"{worker.id} to first test",
                    worker.to_first_test,
                    "collection finished → first test: the scheduler waits for all workers",
                    2,
                ),
            ]
        return rows

    def _test_phase_rows(self) -> list[Row]:
        n = max(len(self.workers), 1)
        per_worker = f"mean of {n} workers" if self.parallel else "one process"
        rows: list[Row] = []
        if self.parallel:
            rows.append(
                Row(
                    "late start",
                    self.late_start,
                    f"{per_worker}: first test after the earliest worker's first test",
                )
            )
            rows += [
                Row(f"{w.id} late start", w.late_start, "", 1) for w in self.workers if w.late_start
            ]
        rows.append(
            Row("tests", self.busy, f"{per_worker}: setup + call + teardown of {self.tests} tests")
        )
        rows += [Row(f"{w.id} tests", w.busy, f"{w.tests} tests", 1) for w in self.workers]
        rows.append(
            Row(
                "between tests",
                self.between_tests,
                f"{per_worker}: first to last test, outside the tests: pytest's reporting"
                + (", waiting for xdist to hand out work" if self.parallel else ""),
            )
        )
        rows += [Row(f"{w.id} between tests", w.between, "", 1) for w in self.workers]
        if self.parallel:
            rows.append(
                Row(
                    "idle tail",
                    self.idle_tail,
                    f"{per_worker}: idle while another worker finished its last tests",
                )
            )
            rows += [Row(f"{w.id} idle tail", w.idle_tail, "", 1) for w in self.workers]
            rows.append(Row("longest idle tail", self.longest_idle_tail, "the worst worker's", 1))
        return rows

    def _teardown_rows(self) -> list[Row]:
        end = "the workers' end and exit" if self.parallel else "plugins' session-finish hooks"
        rows = [
            Row(
                "teardown",
                self.teardown,
                "the last test → the probe's atexit handler: session end, database drops, "
                "server stop",
            ),
            Row(
                "end of session",
                self.end_of_session,
                f"last test → pytest_sessionfinish done: {end}, the terminal summary",
                1,
            ),
        ]
        for worker in self.workers:
            rows += [
                Row(
                    f"{worker.id} end of session",
                    worker.end_of_session,
                    "its last test → its session-finish hooks done",
                    2,
                ),
                Row(
                    f"{worker.id} clean-up",
                    worker.cleanup,
                    "its unconfigure and config clean-ups, the kit's close among them",
                    2,
                ),
            ]
        rows += [
            Row("unconfigure", self.unconfigure, "session finished → pytest_unconfigure", 1),
            Row(
                "kit clean-up",
                self.kit_cleanup,
                "unconfigure → clean-ups done: database drops, the embedded server's stop",
                1,
            ),
            Row(
                "exit handlers",
                self.exit_handlers,
                "clean-ups done → the probe's atexit handler: pytest returning, atexit handlers",
                1,
            ),
        ]
        return rows

    def _cpu_rows(self) -> list[Row]:
        rows = [
            Row(
                "test processes CPU",
                self.test_cpu,
                "pytest processes and the commands they waited for (initdb, pg_ctl)",
                section="cpu",
            ),
            Row("server CPU", self.server_cpu, self.server_cpu_source, section="cpu"),
            Row("total CPU", self.total_cpu, "test processes + server", section="cpu"),
            Row(
                "pytest processes' own CPU",
                self.probe_cpu,
                "as each process reported it (excludes the commands they ran)",
                1,
                "cpu",
            ),
            Row(
                "test phase CPU",
                self.test_phase_cpu,
                "first → last test: every pytest process, and the server when sampled",
                1,
                "cpu",
            ),
        ]
        if self.other_cpu is not None:
            rows.append(
                Row(
                    "other processes' CPU",
                    self.other_cpu,
                    "the machine's busy CPU during the run less the run's: competition for "
                    "the cores (near 0 on a quiet machine)",
                    section="cpu",
                )
            )
        return rows

    def _limit_rows(self) -> list[Row]:
        return [
            Row(
                "fixed parts",
                self.fixed,
                "the wall outside the test phase: start-up and teardown",
                section="limit",
            ),
            Row(
                "balanced test phase",
                self.balanced_test_phase,
                "the test phase with no idle tail: every worker busy to the end",
                section="limit",
            ),
            Row(
                "CPU floor of the test phase",
                self.cpu_floor,
                f"test phase CPU / {self.cores} cores: no test phase can be shorter",
                section="limit",
            ),
            Row(
                "limit",
                self.limit,
                "fixed parts + max(balanced test phase, CPU floor): this run on this machine "
                "with perfect balance between workers",
                section="limit",
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "wall": self.wall,
            "cores": self.cores,
            "tests": self.tests,
            "workers": [worker.to_json() for worker in self.workers],
            "cpu_utilisation": self.cpu_utilisation,
            "other_cpu": self.other_cpu,
            "longest_idle_tail": self.longest_idle_tail,
            "limit": self.limit,
            "rows": [row.to_json() for row in self.rows()],
        }


def _kit_rows(kit: dict[str, float], *, level: int, prefix: str = "") -> list[Row]:
    return [
        Row(f"{prefix}kit: {name}", seconds, KIT_PHASES.get(name, "the kit's own timing"), level)
        for name, seconds in kit.items()
    ]


def efficiency(serial_wall: float, parallel_wall: float, workers: int) -> float:
    """Parallel efficiency: the speed-up divided by the workers; 1.0 is perfect."""
    return serial_wall / (parallel_wall * workers)


def load_records(directory: Path) -> list[ProcessRecord]:
    """Every record the probe wrote to ``directory``: the main process first, then gw0, gw1..."""
    records = [
        ProcessRecord.from_json(json.loads(path.read_text()))
        for path in Path(directory).glob("*.json")
    ]
    return sorted(records, key=_record_order)


def _record_order(record: ProcessRecord) -> tuple[int, int, str]:
    if not record.is_worker:
        return (0, 0, record.role)
    digits = record.role.removeprefix("gw")
    return (1, int(digits) if digits.isdigit() else 0, record.role)


def _main_record(records: Sequence[ProcessRecord]) -> ProcessRecord:
    mains = [record for record in records if record.role in (SERIAL, CONTROLLER)]
    if len(mains) != 1:
        roles = sorted(record.role for record in records)
        raise ValueError(f"expected one serial or controller record, got roles {roles}")
    return mains[0]


class _Chain:
    """Consecutive moments: each missing one stands at the previous, so spans add up."""

    def __init__(self, start: float) -> None:
        self.at = start

    def to(self, moment: float | None) -> float:
        """The span from the current moment to ``moment`` (0 when missing); moves there."""
        if moment is None:
            return 0.0
        span, self.at = moment - self.at, moment
        return span


def _first(*moments: float | None) -> float | None:
    return next((moment for moment in moments if moment is not None), None)


def account(
    records: Sequence[ProcessRecord],
    *,
    wall: float,
    started: float,
    test_cpu: float,
    server_cpu: float | None = None,
    cores: int,
    machine_cpu: float | None = None,
) -> Breakdown:
    """Cut ``wall`` seconds launched at ``started`` into rows that add up to it.

    ``test_cpu``: the CPU of every pytest process (the launcher's RUSAGE_CHILDREN).
    ``server_cpu``: the server's CPU during the run, sampled before and after it by
    the caller; None takes it from the probe's samples (a server the run started
    itself cannot be sampled from outside: it is gone when the run ends).
    ``machine_cpu``: the whole machine's busy CPU during the run
    (:func:`benchmarks.server_cpu.machine_cpu_seconds` before and after), to tell
    how much other processes competed with the run; None when not measured.
    """
    main = _main_record(records)
    workers = [record for record in records if record.is_worker]
    if main.role == CONTROLLER and not workers:
        raise ValueError("a controller record without any worker record")
    if main.configure is None:
        raise ValueError(f"the {main.role} record has no configure moment")
    end = started + wall

    chain = _Chain(started)
    process_launch = chain.to(main.process_start)
    interpreter = chain.to(main.preparse)
    kit_preparation = chain.to(main.kit_ready)
    conftests = chain.to(main.configure)
    launch_to_ready = main.configure - started
    ready = main.configure

    # The test phase: from the first test any process started to the last it finished.
    runners = workers or [main]
    firsts = [r.first_test_start for r in runners if r.first_test_start is not None]
    lasts = [r.last_test_end for r in runners if r.last_test_end is not None]
    first = min(firsts, default=_first(main.collection_finish, ready))
    assert first is not None
    last = max(lasts, default=first)
    worker_times = tuple(_worker_times(w, main, first=first, last=last) for w in workers)

    if workers:
        n = len(workers)
        late_start = sum(w.late_start for w in worker_times) / n
        busy = sum(w.busy for w in worker_times) / n
        between = sum(w.between for w in worker_times) / n
        idle_tail = sum(w.idle_tail for w in worker_times) / n
        collection = max(w.collection for w in worker_times)
        xdist_setup = _span(ready, main.setup_nodes)
        tests = sum(w.tests for w in workers)
    else:
        late_start = idle_tail = xdist_setup = 0.0
        busy = main.busy
        between = (last - first) - busy
        collection = _span(ready, main.collection_finish)
        tests = main.tests

    chain = _Chain(last)
    end_of_session = chain.to(_first(main.session_finished, main.session_finish))
    unconfigure = chain.to(main.unconfigure)
    kit_cleanup = chain.to(main.cleanup_end)
    exit_handlers = chain.to(main.exit)
    seen_until = chain.at
    teardown = seen_until - last

    sampled_server, source = _server_cpu_from_probe(main, started)
    if server_cpu is None:
        server_cpu = sampled_server
    else:
        source = "the server's CPU sampled by the caller before and after the run"
    test_phase_cpu = sum(
        r.cpu_at_last_test - r.cpu_at_first_test
        for r in records
        if r.cpu_at_first_test is not None and r.cpu_at_last_test is not None
    ) + _server_test_phase_cpu(main)

    balanced = late_start + busy + between
    cpu_floor = test_phase_cpu / cores
    test_phase = last - first
    limit = wall - test_phase + max(balanced, cpu_floor)

    return Breakdown(
        wall=wall,
        cores=cores,
        tests=tests,
        workers=worker_times,
        launch_to_ready=launch_to_ready,
        to_first_test=first - ready,
        late_start=late_start,
        busy=busy,
        between_tests=between,
        idle_tail=idle_tail,
        teardown=teardown,
        unaccounted=end - seen_until,
        process_launch=process_launch,
        interpreter=interpreter,
        kit_preparation=kit_preparation,
        conftests=conftests,
        collection=collection,
        xdist_setup=xdist_setup,
        end_of_session=end_of_session,
        unconfigure=unconfigure,
        kit_cleanup=kit_cleanup,
        exit_handlers=exit_handlers,
        kit=dict(main.kit),
        test_cpu=test_cpu,
        server_cpu=server_cpu,
        server_cpu_source=source,
        probe_cpu=sum(r.cpu for r in records),
        test_phase_cpu=test_phase_cpu,
        machine_cpu=machine_cpu,
        balanced_test_phase=balanced,
        cpu_floor=cpu_floor,
        limit=limit,
    )


def _span(start: float | None, end: float | None) -> float:
    return 0.0 if start is None or end is None else end - start


def _worker_times(
    worker: ProcessRecord, main: ProcessRecord, *, first: float, last: float
) -> WorkerTimes:
    """One worker's times; one that ran no test idled through the whole test phase."""
    start = main.workers.get(worker.role)
    setup = _first(
        main.setup_nodes, start.gateway if start else None, worker.process_start, main.configure
    )
    chain = _Chain(setup if setup is not None else first)
    spawn = chain.to(worker.process_start)
    interpreter = chain.to(worker.preparse)
    kit_open = chain.to(worker.kit_ready)
    conftests = chain.to(worker.configure)
    collection = chain.to(worker.collection_finish)
    own_first = worker.first_test_start if worker.first_test_start is not None else first
    own_last = worker.last_test_end if worker.last_test_end is not None else first
    to_first_test = chain.to(own_first)
    session_done = _first(worker.session_finished, worker.session_finish)
    end_of_session = _span(own_last, session_done)
    cleanup = _span(session_done, _first(worker.cleanup_end, worker.unconfigure))
    return WorkerTimes(
        id=worker.role,
        tests=worker.tests,
        spawn=spawn,
        interpreter=interpreter,
        kit_open=kit_open,
        conftests=conftests,
        collection=collection,
        to_first_test=to_first_test,
        late_start=own_first - first,
        busy=worker.busy,
        between=(own_last - own_first) - worker.busy,
        idle_tail=last - own_last,
        end_of_session=end_of_session,
        cleanup=cleanup,
        cpu=worker.cpu,
        kit=dict(worker.kit),
    )


def _server_cpu_from_probe(main: ProcessRecord, started: float) -> tuple[float, str]:
    """The server's CPU in the run, from the samples the serial process or controller took."""
    server = main.server
    if server is None or "unconfigure" not in server.cpu:
        return 0.0, "unknown: no server sampled (pass it, or set BENCH_POSTMASTER_PID)"
    at_end = server.cpu["unconfigure"]
    if server.start is not None and server.start >= started:
        return at_end, (
            "the run's own server, from its start to unconfigure (its stop not included)"
        )
    at_configure = server.cpu.get("configure", 0.0)
    return at_end - at_configure, "the server from configure to unconfigure (probe samples)"


def _server_test_phase_cpu(main: ProcessRecord) -> float:
    server = main.server
    if server is None or not {"first_test", "session_finish"} <= server.cpu.keys():
        return 0.0
    return server.cpu["session_finish"] - server.cpu["first_test"]
