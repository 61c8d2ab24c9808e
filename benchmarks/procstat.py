"""What ``/proc`` says about a process and the machine: start times and CPU seconds.

Standard library only: :mod:`benchmarks.first_test` reads a process's start from
inside a measured pytest run, where importing anything more (the kit, say) would
be measured too. Linux only, like the rest of the benchmarks' ``/proc`` reading.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second: the unit of ``/proc``'s CPU and start times."""


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
            utime=int(fields[11]) / TICKS,
            stime=int(fields[12]) / TICKS,
            cutime=int(fields[13]) / TICKS,
            cstime=int(fields[14]) / TICKS,
            starttime=int(fields[19]) / TICKS,
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


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has been busy since boot (``/proc/stat``).

    Everything but idle and iowait, summed over cores. Sampled around a run, minus
    the run's own CPU, it is the load other processes put on the machine meanwhile,
    and the time a hypervisor gave our cores to other machines (steal): on a shared
    machine, the first thing to check before believing a timing.
    """
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS
