"""The CPU a PostgreSQL server has used so far, and where its postmaster is.

A test run's CPU is only half in the pytest processes: the other half is spent by
the server's backends, which are not their children (the postmaster is, and it
daemonises), so ``RUSAGE_CHILDREN`` of the benchmark never sees it. The postmaster's
own ``/proc`` entry does: its ``cutime``/``cstime`` hold the CPU of every backend
that has exited, since the postmaster reaps them, and the live ones (each test
process's connection, the checkpointer, the autovacuum launcher...) are its children
in ``/proc``. Sampled before and after a run, the difference is the run's server CPU.

Linux only, like the rest of the benchmarks' ``/proc`` reading. Where the kit's
clusters and postmasters are is the kit's to say (:mod:`ci_kit.postgres`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci_kit.postgres import cluster_directories, postmaster

if TYPE_CHECKING:
    from ci_kit.postgres import EmbeddedPostgres

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    """The few fields of ``/proc/<pid>/stat`` the benchmarks read, in seconds where timed."""

    pid: int
    ppid: int
    utime: float
    stime: float
    cutime: float
    """CPU of the children this process has waited for (and of theirs, recursively)."""
    cstime: float
    starttime: float
    """Seconds after boot at which the process started."""

    @property
    def own_cpu(self) -> float:
        return self.utime + self.stime

    @property
    def reaped_children_cpu(self) -> float:
        return self.cutime + self.cstime


def read_stat(pid: int | str) -> ProcStat:
    """Parse ``/proc/<pid>/stat``; OSError when the process is gone (or never was).

    The command name (field 2) may hold spaces and parentheses, so fields are
    counted from the last ``)``: after it, field 3 (state) is index 0.
    """
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    try:
        return ProcStat(
            pid=int(text.split(" ", 1)[0]),
            ppid=int(fields[1]),
            utime=int(fields[11]) / _TICKS,
            stime=int(fields[12]) / _TICKS,
            cutime=int(fields[13]) / _TICKS,
            cstime=int(fields[14]) / _TICKS,
            starttime=int(fields[19]) / _TICKS,
        )
    except (IndexError, ValueError) as exc:  # a half-read file of a dying process
        raise OSError(f"/proc/{pid}/stat: unreadable: {text!r}") from exc


def boot_time() -> float:
    """The wall-clock time (``time.time()``) at which the machine booted.

    ``starttime`` in ``/proc/<pid>/stat`` counts from boot on ``CLOCK_BOOTTIME``;
    read directly rather than through ``/proc/uptime`` (two decimals), so the only
    coarse part left is ``starttime``'s own clock tick (10 ms).
    """
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return time.time() - time.clock_gettime(boottime)
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - uptime


def process_start(pid: int | str = "self") -> float:
    """When the OS started process ``pid``, as a ``time.time()`` value (10 ms resolution)."""
    return boot_time() + read_stat(pid).starttime


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
    return round(total * _TICKS) / _TICKS


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


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has been busy since boot (``/proc/stat``).

    Everything but idle and iowait, summed over cores. Sampled around a run, minus
    the run's own CPU, it is the load other processes put on the machine meanwhile,
    and the time a hypervisor gave our cores to other machines (steal): on a shared
    machine, the first thing to check before believing a timing.
    """
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


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
