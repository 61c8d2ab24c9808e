"""The run breakdown of the benchmarks: the probe's records, their accounting, server CPU.

The accounting is checked on synthetic records, whose every second is known; the
probe and the server sampling on real runs: a small part of the sample suite at
``-n 2``, and an embedded server made to work. No test asserts a time bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from benchmarks.breakdown import Breakdown, account, efficiency, load_records
from benchmarks.probe import (
    CONTROLLER,
    MOMENTS,
    PROBE_DIR_ENV,
    SERIAL,
    ProcessRecord,
    ServerSamples,
    WorkerStart,
)
from benchmarks.procstat import machine_cpu_seconds, process_start, read_stat
from benchmarks.server_cpu import data_directory, owned_postmaster, server_cpu_seconds
from ci_kit import PostgresNotFound, connect_kwargs
from ci_kit.postgres import EmbeddedPostgres, find_binaries, postmaster
from tests.helpers.runs import environ_without_kit

ROOT = Path(__file__).resolve().parents[2]
WORK = "SELECT sum(i::bigint * i) FROM generate_series(1, 3000000) AS i"  # CPU for the server
T0 = 1_000_000.0  # the launch, in synthetic records


def wall_sum(breakdown: Breakdown) -> float:
    return sum(row.seconds for row in breakdown.wall_rows())


def serial_record(**changes: Any) -> ProcessRecord:
    """Launch at T0, ready at +5, tests +6..+16 (9 s busy), clean-up done +18, exit +18.2."""
    values: dict[str, Any] = {
        "role": SERIAL,
        "pid": 100,
        "process_start": T0 + 0.01,
        "preparse": T0 + 1.0,
        "kit_ready": T0 + 3.5,
        "conftests_loaded": T0 + 4.9,
        "configure": T0 + 5.0,
        "collection_finish": T0 + 5.8,
        "first_test_start": T0 + 6.0,
        "last_test_end": T0 + 16.0,
        "session_finish": T0 + 16.01,
        "session_finished": T0 + 16.5,
        "unconfigure": T0 + 16.5,
        "cleanup_end": T0 + 18.0,
        "exit": T0 + 18.2,
        "tests": 40,
        "busy": 9.0,
        "cpu": 8.0,
        "cpu_at_first_test": 3.0,
        "cpu_at_last_test": 10.0,
        "kit": {"prepare": 2.0},
        "server": ServerSamples(
            pid=7,
            start=T0 + 2.0,
            cpu={"configure": 0.5, "first_test": 0.6, "session_finish": 3.6, "unconfigure": 3.7},
        ),
    }
    values.update(changes)
    return ProcessRecord(**values)


def worker_record(
    role: str, first: float, last: float, busy: float, **changes: Any
) -> ProcessRecord:
    values: dict[str, Any] = {
        "role": role,
        "pid": 200 + int(role[2:]),
        "process_start": T0 + 5.3,
        "preparse": T0 + 6.5,
        "kit_ready": T0 + 6.8,
        "conftests_loaded": T0 + 8.0,
        "configure": T0 + 8.1,
        "collection_finish": T0 + 8.6,
        "first_test_start": first,
        "last_test_end": last,
        "session_finish": last + 0.01,
        "session_finished": last + 1.0,
        "unconfigure": last + 1.0,
        "cleanup_end": last + 1.2,
        "exit": last + 1.3,
        "tests": 20,
        "busy": busy,
        "cpu": 6.0,
        "cpu_at_first_test": 3.0,
        "cpu_at_last_test": 3.0 + busy * 0.8,
        "kit": {"clone": 0.05},
    }
    values.update(changes)
    return ProcessRecord(**values)


def parallel_records() -> list[ProcessRecord]:
    """gw0 runs +8.7..+12 and idles 3 s; gw1 +9..+15; the controller cleans up until +17."""
    controller = serial_record(
        role=CONTROLLER,
        collection_finish=None,
        first_test_start=T0 + 8.72,
        last_test_end=T0 + 15.02,
        session_finish=T0 + 15.03,
        session_finished=T0 + 16.4,
        unconfigure=T0 + 16.4,
        cleanup_end=T0 + 17.0,
        exit=T0 + 17.1,
        busy=6.0,
        cpu_at_last_test=3.5,
        server=ServerSamples(
            pid=7,
            start=T0 + 2.0,
            cpu={"configure": 0.5, "first_test": 0.6, "session_finish": 1.6, "unconfigure": 1.7},
        ),
        setup_nodes=T0 + 5.2,
        workers={
            "gw0": WorkerStart(gateway=T0 + 5.35, ready=T0 + 8.2),
            "gw1": WorkerStart(gateway=T0 + 5.45, ready=T0 + 8.3),
        },
    )
    return [
        controller,
        worker_record("gw0", T0 + 8.7, T0 + 12.0, busy=3.0),
        worker_record("gw1", T0 + 9.0, T0 + 15.0, busy=5.5, process_start=T0 + 5.4),
    ]


def test_a_serial_run_is_accounted_to_the_second() -> None:
    breakdown = account(
        [serial_record()], wall=18.5, started=T0, test_cpu=12.0, cores=2, machine_cpu=20.0
    )
    assert wall_sum(breakdown) == pytest.approx(18.5)
    assert not breakdown.parallel
    assert breakdown.launch_to_ready == pytest.approx(5.0)
    assert breakdown.kit_preparation == pytest.approx(2.5)
    assert breakdown.to_first_test == pytest.approx(1.0)
    assert breakdown.collection == pytest.approx(0.8)
    assert (breakdown.busy, breakdown.between_tests) == pytest.approx((9.0, 1.0))
    assert (breakdown.late_start, breakdown.idle_tail, breakdown.longest_idle_tail) == (0, 0, 0)
    assert breakdown.teardown == pytest.approx(2.2)
    assert breakdown.kit_cleanup == pytest.approx(1.5)
    assert breakdown.unaccounted == pytest.approx(0.3)
    # The server started after the launch: all of its CPU up to unconfigure is the run's.
    assert breakdown.server_cpu == pytest.approx(3.7)
    assert breakdown.total_cpu == pytest.approx(15.7)
    assert breakdown.cpu_utilisation == pytest.approx(15.7 / (18.5 * 2))
    assert breakdown.other_cpu == pytest.approx(20.0 - 15.7)
    assert breakdown.test_phase_cpu == pytest.approx(7.0 + 3.0)
    # One process cannot be balanced better: its limit is its own wall time.
    assert breakdown.limit == pytest.approx(18.5)
    names = [row.name for row in breakdown.wall_rows()]
    assert names == [
        "launch to pytest ready",
        "collection",
        "tests",
        "between tests",
        "teardown",
        "unaccounted",
    ]
    assert "kit: prepare" in [row.name for row in breakdown.rows()]


def test_two_workers_idle_tail_and_limit() -> None:
    breakdown = account(parallel_records(), wall=17.4, started=T0, test_cpu=20.0, cores=2)
    assert wall_sum(breakdown) == pytest.approx(17.4)
    assert [worker.id for worker in breakdown.workers] == ["gw0", "gw1"]
    gw0, gw1 = breakdown.workers
    assert (gw0.idle_tail, gw1.idle_tail) == pytest.approx((3.0, 0.0))
    assert breakdown.idle_tail == pytest.approx(1.5)
    assert breakdown.longest_idle_tail == pytest.approx(3.0)
    assert (gw0.late_start, gw1.late_start) == pytest.approx((0.0, 0.3))
    assert (gw0.between, gw1.between) == pytest.approx((0.3, 0.5))
    assert breakdown.to_first_test == pytest.approx(3.7)  # configure +5 → first test +8.7
    assert gw0.startup == pytest.approx(3.5)  # xdist set-up +5.2 → its first test
    assert gw1.spawn == pytest.approx(0.2)
    assert breakdown.tests == 40
    assert breakdown.test_phase == pytest.approx(15.0 - 8.7)
    assert breakdown.teardown == pytest.approx(17.1 - 15.0)
    # Perfect balance removes the idle tail, and nothing else.
    assert breakdown.balanced_test_phase == pytest.approx(6.3 - 1.5)
    assert breakdown.limit == pytest.approx(17.4 - 1.5)
    assert breakdown.limit == pytest.approx(breakdown.fixed + breakdown.balanced_test_phase)
    names = [row.name for row in breakdown.wall_rows()]
    assert names[1] == "worker start-up"
    assert {"late start", "idle tail"} <= set(names)
    assert {"gw1 idle tail", "longest idle tail"} <= {row.name for row in breakdown.rows()}
    published = json.loads(json.dumps(breakdown.to_json()))
    assert published["workers"][0]["startup"] == pytest.approx(3.5)


def test_the_cpu_floor_bounds_the_limit() -> None:
    """Workers that only waited for CPU cannot be balanced below what the cores allow."""
    records = parallel_records()
    records[1].cpu_at_last_test = 3.0 + 20.0  # 20 CPU seconds in 3.3 s: a test phase CPU-bound
    breakdown = account(records, wall=17.4, started=T0, test_cpu=40.0, cores=2)
    assert breakdown.cpu_floor > breakdown.balanced_test_phase
    assert breakdown.limit == pytest.approx(breakdown.fixed + breakdown.cpu_floor)


def test_missing_kit_timings_and_moments_still_add_up() -> None:
    """An older kit (no phase timings), a probe that missed moments: the rest absorbs them."""
    record = serial_record(
        kit={}, preparse=None, kit_ready=None, cleanup_end=None, exit=None, server=None
    )
    breakdown = account([record], wall=18.5, started=T0, test_cpu=12.0, cores=2)
    assert wall_sum(breakdown) == pytest.approx(18.5)
    assert breakdown.kit_preparation == 0.0
    assert breakdown.unaccounted == pytest.approx(18.5 - 16.5)
    assert not [row for row in breakdown.rows() if row.name.startswith("kit:")]
    assert breakdown.server_cpu == 0.0
    assert breakdown.server_cpu_source.startswith("unknown")
    assert breakdown.other_cpu is None
    assert "other processes' CPU" not in [row.name for row in breakdown.rows()]


def test_a_worker_without_tests_idles_through_the_test_phase() -> None:
    records = parallel_records()
    records[1] = worker_record(
        "gw0", T0 + 15.0, T0 + 15.0, busy=0.0, first_test_start=None, last_test_end=None, tests=0
    )
    breakdown = account(records, wall=17.4, started=T0, test_cpu=20.0, cores=2)
    assert wall_sum(breakdown) == pytest.approx(17.4)
    assert breakdown.workers[0].idle_tail == pytest.approx(6.0)
    assert breakdown.workers[0].busy == 0.0


def test_server_cpu_given_or_sampled() -> None:
    given = account([serial_record()], wall=18.5, started=T0, test_cpu=1.0, server_cpu=2.5, cores=2)
    assert given.server_cpu == 2.5
    # A server older than the run: only its CPU between configure and unconfigure counts.
    older = serial_record(
        server=ServerSamples(7, T0 - 100, {"configure": 10.0, "unconfigure": 11.5})
    )
    sampled = account([older], wall=18.5, started=T0, test_cpu=1.0, cores=2)
    assert sampled.server_cpu == pytest.approx(1.5)


def test_efficiency() -> None:
    assert efficiency(100.0, 50.0, 2) == pytest.approx(1.0)
    assert efficiency(100.0, 80.0, 2) == pytest.approx(0.625)


def test_records_load_in_order_and_must_have_one_main(tmp_path: Path) -> None:
    for record in [*parallel_records(), worker_record("gw10", T0 + 9, T0 + 10, busy=1.0)]:
        path = tmp_path / f"{record.role}-{record.pid}.json"
        path.write_text(json.dumps(record.to_json()))
    (tmp_path / ".gw3-1.json.tmp").write_text("{half a record")
    records = load_records(tmp_path)
    assert [record.role for record in records] == [CONTROLLER, "gw0", "gw1", "gw10"]
    assert records[0] == parallel_records()[0]
    with pytest.raises(ValueError, match="one serial or controller"):
        account(records[1:], wall=1.0, started=T0, test_cpu=0.0, cores=2)
    with pytest.raises(ValueError, match="without any worker"):
        account(records[:1], wall=1.0, started=T0, test_cpu=0.0, cores=2)


def ordered(record: ProcessRecord, *names: str) -> None:
    moments = [getattr(record, name) for name in names]
    assert None not in moments, (record.role, dict(zip(names, moments, strict=True)))
    assert moments == sorted(moments), (record.role, dict(zip(names, moments, strict=True)))


def test_the_probe_is_silent_unless_asked_and_writes_a_serial_record(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_tiny="def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    env = {**environ_without_kit(), "PYTHONPATH": str(ROOT)}
    env.pop(PROBE_DIR_ENV, None)
    argv = [sys.executable, "-m", "pytest", "-p", "benchmarks.probe", "-p", "no:randomly", "-q"]
    silent = subprocess.run(argv, cwd=pytester.path, env=env, capture_output=True, check=False)
    assert silent.returncode == 0, silent.stdout
    probe_dir = tmp_path / "probe"
    env[PROBE_DIR_ENV] = str(probe_dir)
    done = subprocess.run(argv, cwd=pytester.path, env=env, capture_output=True, check=False)
    assert done.returncode == 0, done.stdout
    [record] = load_records(probe_dir)
    assert (record.role, record.tests) == (SERIAL, 2)
    ordered(record, *(name for name in MOMENTS if name not in ("process_start", "kit_ready")))
    assert record.kit_ready is not None
    assert record.busy > 0
    assert record.server is None  # no kit, no server


@pytest.fixture
def sample_run(tmp_path: Path) -> tuple[list[ProcessRecord], float, float, float]:
    """A small part of the sample suite at ``-n 2`` with the probe, as the benchmark runs it."""
    probe_dir = tmp_path / "probe"
    env = {
        **environ_without_kit(),
        PROBE_DIR_ENV: str(probe_dir),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    argv = [sys.executable, "-m", "ci_kit", "pytest", "backend_sample/tests/test_schemas.py"]
    argv += ["-p", "benchmarks.probe", "-n", "2", "-q", "-p", "no:randomly"]
    before = os.times()
    started = time.time()
    clock = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - clock
    after = os.times()
    assert done.returncode == 0, done.stdout + done.stderr
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return load_records(probe_dir), started, wall, cpu


@pytest.mark.slow
def test_a_parallel_sample_run_is_recorded_and_accounted(
    sample_run: tuple[list[ProcessRecord], float, float, float],
) -> None:
    records, started, wall, cpu = sample_run
    assert [record.role for record in records] == [CONTROLLER, "gw0", "gw1"]
    controller, *workers = records
    ordered(controller, "preparse", "kit_ready", "conftests_loaded", "configure")
    ordered(controller, "configure", "first_test_start", "last_test_end", "session_finish")
    ordered(controller, "session_finish", "session_finished", "unconfigure", "cleanup_end")
    assert started <= (controller.process_start or 0) + 0.05
    assert set(controller.workers) == {"gw0", "gw1"}
    for worker in workers:
        start = controller.workers[worker.role]
        ordered(worker, "preparse", "kit_ready", "conftests_loaded", "configure")
        ordered(worker, "configure", "collection_finish", "first_test_start", "last_test_end")
        ordered(worker, "last_test_end", "session_finish", "unconfigure", "cleanup_end")
        assert controller.setup_nodes is not None
        assert start.gateway is not None
        assert start.ready is not None
        assert controller.setup_nodes <= start.gateway <= start.ready
        assert controller.configure is not None
        assert worker.configure is not None
        assert controller.configure <= worker.configure <= start.ready
        assert worker.tests > 0
        assert worker.busy > 0
    assert sum(worker.tests for worker in workers) == controller.tests
    # The kit's own embedded server, found and sampled by the controller.
    assert controller.server is not None
    assert controller.server.start is not None
    assert started < controller.server.start
    # The controller prepares on a thread from its first hook: its server may be up by
    # its configure, or not yet; the samples it took are in the order it took them.
    taken = controller.server.cpu
    samples = [taken[at] for at in ("configure", "first_test", "unconfigure") if at in taken]
    assert len(samples) >= 2
    assert samples == sorted(samples)

    breakdown = account(
        records, wall=wall, started=started, test_cpu=cpu, cores=os.cpu_count() or 1
    )
    assert wall_sum(breakdown) == pytest.approx(wall)
    assert breakdown.tests == controller.tests
    assert breakdown.server_cpu > 0
    assert 0 < breakdown.limit <= wall + 1e-9
    assert breakdown.unaccounted >= 0


@pytest.fixture
def server() -> Iterator[EmbeddedPostgres]:
    try:
        binaries = find_binaries(allow_wheel=False)
    except PostgresNotFound:
        pytest.skip("no system PostgreSQL installed")
    embedded = EmbeddedPostgres(binaries)
    try:
        embedded.start()
        yield embedded
    finally:
        embedded.stop()


def test_server_cpu_grows_with_work(server: EmbeddedPostgres) -> None:
    assert server.url is not None
    pid = postmaster(data_directory(server))
    assert pid is not None
    assert owned_postmaster(os.getpid()) == pid  # the cluster this process started
    assert process_start(pid) <= time.time()
    assert read_stat(pid).pid == pid
    before = server_cpu_seconds(pid)
    machine_before = machine_cpu_seconds()
    for _ in range(3):  # each connection's backend exits: its CPU moves to the postmaster's
        with psycopg.connect(**connect_kwargs(server.url)) as conn:
            conn.execute(WORK).fetchone()
    with psycopg.connect(**connect_kwargs(server.url)) as conn:  # a live backend counts too
        conn.execute(WORK).fetchone()
        during = server_cpu_seconds(pid)
    after = server_cpu_seconds(pid)
    assert before < during <= after
    assert 0 < machine_before <= machine_cpu_seconds()
    with pytest.raises(FileNotFoundError):
        server_cpu_seconds(2**22 + 1)  # above pid_max's default: no such process
