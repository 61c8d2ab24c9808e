"""A quiet machine or no figure: the load before each section, waited out up to a bound.

Parallel figures suffer first when something else runs: on 2 cores, one busy
core halves what ``-n 2`` can gain. The load average is a poor gate (its 1-minute
figure still remembers the previous section's own runs long after they ended), so
the gate is the CPU time the whole machine used over a short window, read from
``/proc/stat``; the load average is recorded beside it for the reader.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.procstat import machine_cpu_seconds

QUIET_CORES = 0.3
"""Busy cores (averaged over the window) below which the machine counts as quiet."""
WINDOW = 3.0
"""Seconds of CPU accounting per look: long enough to see a test run between two gaps."""


@dataclass(frozen=True)
class Load:
    """What the machine was doing just before a measurement."""

    busy_cores: float
    """CPU time used by everything on the machine per second of the last window."""
    load_average: float
    waited: float
    """Seconds spent waiting for the machine to become quiet."""

    @property
    def quiet(self) -> bool:
        return self.busy_cores < QUIET_CORES

    def to_json(self) -> dict[str, Any]:
        return {
            "busy_cores": round(self.busy_cores, 3),
            "load_average_1min": round(self.load_average, 2),
            "waited_seconds": round(self.waited, 1),
            "quiet": self.quiet,
        }

    def describe(self) -> str:
        state = "quiet" if self.quiet else "UNDER LOAD"
        waited = f", after waiting {self.waited:.0f} s" if self.waited >= 1 else ""
        return (
            f"machine {state} before this section: {self.busy_cores:.2f} cores busy "
            f"(load average {self.load_average:.2f}{waited})"
        )


def busy_cores(window: float = WINDOW) -> float:
    """Cores' worth of CPU used by every process on the machine over ``window`` seconds."""
    before = machine_cpu_seconds()
    time.sleep(window)
    return (machine_cpu_seconds() - before) / window


def wait_for_quiet(bound: float, log: Callable[[str], None]) -> Load:
    """Look until the machine is quiet or ``bound`` seconds have passed; the last look."""
    started = time.monotonic()
    while True:
        busy = busy_cores()
        waited = time.monotonic() - started
        load = Load(busy, os.getloadavg()[0], waited)
        if load.quiet or waited >= bound:
            if not load.quiet:
                log(f"still {busy:.2f} cores busy after {waited:.0f} s: measuring under load")
            return load
        log(f"{busy:.2f} cores busy: waiting for a quiet machine (up to {bound:.0f} s)")
