"""What every measurement shares: samples, ratios, the run context, timed subprocesses.

Each benchmark module returns a :class:`Section`: raw samples per variant and the
ratios between them, all taken in one run on one machine, so that the ratios, not
the absolute seconds, are what a reader compares.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from benchmarks.first_test import FIRST_TEST_ENV

Log = Callable[[str], None]


class BenchmarkFailed(RuntimeError):
    """A measured run did not do what it was measured for (a failing test, a crash)."""


@dataclass
class Measurement:
    """Repeated samples of one variant: 'serial', 'clone @ 50 revisions', ..."""

    variant: str
    unit: str
    samples: list[float]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "unit": self.unit,
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "samples": self.samples,
            "params": self.params,
        }


@dataclass
class Ratio:
    """``numerator / denominator`` of two medians, with what a reader should take from it."""

    name: str
    value: float
    meaning: str
    rounds: list[float] = field(default_factory=list)
    """The per-round ratios a paired ratio is the median of."""

    def to_json(self) -> dict[str, Any]:
        found = {"name": self.name, "value": self.value, "meaning": self.meaning}
        return found | ({"rounds": self.rounds} if self.rounds else {})


@dataclass
class Table:
    """Rows a section reports beyond samples and ratios: where a run's time went."""

    title: str
    columns: list[str]
    rows: list[list[Any]]

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows}


@dataclass
class Section:
    """One benchmark's result: its measurements, ratios and the caveats of this run."""

    key: str
    title: str
    measurements: list[Measurement] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)
    """The machine's load before the section (:mod:`benchmarks.quiet`)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Raw data beyond samples and ratios, for readers and the chart: breakdowns."""

    def get(self, variant: str) -> Measurement:
        return next(m for m in self.measurements if m.variant == variant)

    def ratio(self, name: str, numerator: str, denominator: str, meaning: str) -> Ratio:
        """Add and return the ratio of two variants' medians."""
        value = self.get(numerator).median / self.get(denominator).median
        added = Ratio(name, value, meaning)
        self.ratios.append(added)
        return added

    def paired_ratio(self, name: str, numerator: str, denominator: str, meaning: str) -> Ratio:
        """Add and return the median of the per-round ratios of two variants.

        Sample ``i`` of each variant was taken in the same round, minutes apart at
        most, so a drift in the machine's speed hits both sides of each ratio.
        """
        pairs = zip(self.get(numerator).samples, self.get(denominator).samples, strict=True)
        ratios = [top / bottom for top, bottom in pairs]
        added = Ratio(name, statistics.median(ratios), meaning, ratios)
        self.ratios.append(added)
        return added

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "load": self.load,
            "measurements": [m.to_json() for m in self.measurements],
            "ratios": [r.to_json() for r in self.ratios],
            "tables": [t.to_json() for t in self.tables],
            "details": self.details,
            "notes": self.notes,
        }


@dataclass
class Context:
    """The run's settings and shared resources, handed to every benchmark."""

    root: Path
    """The repository; the sample suite is ``backend_sample/``, a project with its own pyproject."""
    work: Path
    """A private temporary directory for generated suites and histories."""
    full: bool
    server_url: URL
    """One embedded server shared by the in-process and same-server comparisons."""
    server_pid: int
    """Its postmaster, whose CPU a run on it is charged with."""
    log: Log
    python: str = sys.executable

    def pick(self, quick: Any, full: Any) -> Any:
        return full if self.full else quick

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a measured run: no inherited kit settings, benchmarks importable.

        Bytecode goes to a private cache (never into the repository): an installed
        environment has its ``.pyc`` files, and without them every process would
        compile the kit and rewrite the tests' asserts from source: ~2 s per xdist
        worker on the sample suite, measured instead of what is compared.
        """
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CI_KIT_")}
        environ.pop("PYTHONDONTWRITEBYTECODE", None)
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(self.root), environ.get("PYTHONPATH")])
        )
        environ["PYTHONPYCACHEPREFIX"] = str(self.work / "pycache")
        return {**environ, **(extra or {})}


@dataclass(frozen=True)
class RunOutput:
    """A finished measured run: its wall time, its CPU time and what it printed."""

    seconds: float
    output: str
    cpu_seconds: float = 0.0
    """User + system time of the process and the children it waited for: a second
    opinion on small differences, since other work on the machine stretches it too,
    but not always as it stretches the wall time."""

    def passed(self) -> int:
        found = re.findall(r"(\d+) passed", self.output)
        return int(found[-1]) if found else 0


def timed_run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    expect_passed: int | None = None,
    user: str | None = None,
) -> RunOutput:
    """Run ``argv`` to completion and time it from outside, as a user would feel it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        user=user,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = RunOutput(seconds, done.stdout + done.stderr, cpu)
    if done.returncode != 0 or (expect_passed is not None and result.passed() != expect_passed):
        tail = "\n".join(result.output.splitlines()[-25:])
        raise BenchmarkFailed(
            f"{' '.join(argv)} (in {cwd}) exited {done.returncode}, "
            f"{result.passed()} passed (expected {expect_passed}):\n{tail}"
        )
    return result


def timed_to_first_test(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    marker: Path,
    expect_passed: int | None = None,
) -> tuple[RunOutput, float]:
    """:func:`timed_run` of a pytest command, and the seconds from its start to its first test.

    ``argv`` must end with pytest's arguments: ``-p benchmarks.first_test`` is appended,
    and writes the moment the first test's setup begins to ``marker``.
    """
    marker.unlink(missing_ok=True)
    started = time.monotonic()
    done = timed_run(
        [*argv, "-p", "benchmarks.first_test"],
        cwd=cwd,
        env={**env, FIRST_TEST_ENV: str(marker)},
        expect_passed=expect_passed,
    )
    if not marker.is_file():
        raise BenchmarkFailed(f"{' '.join(argv)} (in {cwd}) ran no test")
    return done, float(marker.read_text()) - started


def timed(action: Callable[[], object]) -> float:
    """Seconds one call of ``action`` takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def milliseconds(seconds: Sequence[float]) -> list[float]:
    return [s * 1000 for s in seconds]
