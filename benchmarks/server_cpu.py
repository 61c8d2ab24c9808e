"""The CPU a PostgreSQL server has used so far, and where its postmaster is.

A test run's CPU is only half in the pytest processes: the other half is spent by
the server's backends, which are not their children (the postmaster is, and it
daemonises), so ``RUSAGE_CHILDREN`` of the benchmark never sees it. The postmaster's
own ``/proc`` entry does: its ``cutime``/``cstime`` hold the CPU of every backend
that has exited, since the postmaster reaps them, and the live ones (each test
process's connection, the checkpointer, the autovacuum launcher...) are its children
in ``/proc``. Sampled before and after a run, the difference is the run's server CPU.

Linux only (:mod:`benchmarks.procstat` reads ``/proc``). Where the kit's clusters
and postmasters are is the kit's to say (:mod:`ci_kit.postgres`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.procstat import TICKS, read_stat
from ci_kit.postgres import cluster_directories, postmaster

if TYPE_CHECKING:
    from ci_kit.postgres import EmbeddedPostgres


def data_directory(server: EmbeddedPostgres) -> Path:
    """The data directory of a started :class:`~ci_kit.postgres.EmbeddedPostgres`.

    ``server.directory`` is the temporary base of an ephemeral cluster, whose data
    directory is ``base / "data"``, and the data directory itself of a persistent
    one (``server.persistent_dir``). None before ``start()`` and after an ephemeral
    cluster's ``stop()``.
    """
    if server.directory is None:
        raise ValueError("the server is not started")
    if server.persistent_dir is not None:
        return server.directory
    return server.directory / "data"


def server_cpu_seconds(postmaster_pid: int) -> float:
    """CPU seconds (user + system) the server of ``postmaster_pid`` has used so far.

    The postmaster's own CPU, plus its reaped children's (every backend that has
    exited), plus the CPU of its live children, found by their ppid in ``/proc``.
    Processes vanishing mid-scan are normal and skipped.

    A backend reaped during the scan would be missed, its CPU neither among the
    live children any more nor yet in the postmaster's sample: the postmaster is
    read again after the scan, and the scan retried while its reaped children's CPU
    moved (a few times; then the last, possibly short, total). Raises OSError when
    the postmaster itself is gone.
    """
    before = read_stat(postmaster_pid)
    for _ in range(_SCAN_ATTEMPTS):
        live = _children_cpu(postmaster_pid)
        after = read_stat(postmaster_pid)
        if after.reaped_children_cpu == before.reaped_children_cpu:
            break
        before = after
    total = after.own_cpu + after.reaped_children_cpu + live
    # Whole clock ticks, summed as floats in varying order: round back to ticks, or
    # the same CPU, a backend's before and after its exit, reads 1.18 then 1.1800000000000002.
    return round(total * TICKS) / TICKS


_SCAN_ATTEMPTS = 5


def _children_cpu(parent: int) -> float:
    """User + system CPU of the live children of ``parent``, found by ppid in ``/proc``."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == parent:
            continue
        try:
            child = read_stat(entry.name)
        except OSError:
            continue
        if child.ppid == parent:
            total += child.own_cpu
    return total


def owned_postmaster(owner_pid: int) -> int | None:
    """The live postmaster of the temporary cluster process ``owner_pid`` started, or None.

    The kit writes ``owner.json`` (``{"pid": ...}``) into each temporary cluster it
    starts; a serial pytest process or an xdist controller that prepared a run with
    an embedded server owns exactly one.
    """
    for base in cluster_directories():
        try:
            owner = json.loads((base / "owner.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(owner, dict) and owner.get("pid") == owner_pid:
            pid = postmaster(base / "data")
            if pid is not None:
                return pid
    return None
