"""What every measurement shares: samples, ratios, the run's context.

Each benchmark module returns a :class:`Section`: raw samples per variant and the
ratios between them, all taken in one run on one machine, so that the ratios, not
the absolute seconds, are what a reader compares. The runs themselves are timed by
hyperfine (:mod:`benchmarks.hyperfine`).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import URL

Log = Callable[[str], None]


class BenchmarkFailed(RuntimeError):
    """A measured run did not do what it was measured for (a failing test, a crash)."""


@dataclass
class Measurement:
    """Repeated samples of one variant, one per round: 'kit, serial', 'clone @ 50', ..."""

    variant: str
    unit: str
    samples: list[float]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass
class Ratio:
    """``numerator / denominator`` of two medians, with what a reader should take from it."""

    name: str
    value: float
    meaning: str
    rounds: list[float] = field(default_factory=list)
    """The per-round ratios a paired ratio is the median of."""


@dataclass
class Table:
    """Rows a section reports beyond samples and ratios: where a run's time went."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


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
        return self.rounds_ratio(name, [top / bottom for top, bottom in pairs], meaning)

    def rounds_ratio(self, name: str, rounds: Sequence[float], meaning: str) -> Ratio:
        """Add and return a ratio taken once per round: the median of the rounds'."""
        added = Ratio(name, statistics.median(rounds), meaning, list(rounds))
        self.ratios.append(added)
        return added

    def to_json(self) -> dict[str, Any]:
        """Everything, each measurement's median and spread with its samples."""
        found = asdict(self)
        for measured in found["measurements"]:
            samples = measured["samples"]
            measured |= {"median": statistics.median(samples), "min": min(samples)}
            measured["max"] = max(samples)
        return found


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


T = TypeVar("T")


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """``items`` started ``shift`` places later: round ``n`` of A, B, C runs B, C, A for n=1.

    No variant always runs first (after a pause, on a cooler machine) or last.
    """
    shift %= max(len(items), 1)
    return [*items[shift:], *items[:shift]]


def seconds_to_first_test(marker: Path) -> float:
    """What ``-p benchmarks.first_test`` wrote to ``marker``: a run's start-up, in seconds."""
    if not marker.is_file():
        raise BenchmarkFailed(f"{marker}: the run reached no test")
    return float(marker.read_text())


def median_interval(samples: Sequence[float]) -> tuple[float, float]:
    """A distribution-free 95 % confidence interval of the median: two order statistics.

    The number of samples below the median is binomial(n, 1/2); the interval runs from
    the k-th smallest to the k-th largest, k about (n - 1.96 sqrt(n)) / 2. With few
    samples it widens to the whole range.
    """
    ordered = sorted(samples)
    k = max(0, math.floor((len(ordered) - 1.96 * math.sqrt(len(ordered))) / 2))
    return ordered[k], ordered[len(ordered) - 1 - k]
