"""Where the kit's own time goes in each pytest process, so a run can say it.

A worker's start-up is the kit's business too: importing the kit's database code,
cloning the worker's database and making its engine all happen before the
worker's first test. Each process keeps its phases in its config's stash; an
xdist worker hands them to the controller with its ``workeroutput``, and the
run's closing line names the slowest worker's share. Benchmarks read them with
:func:`phase_seconds`.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Iterator, Mapping

import pytest

PHASES_KEY = pytest.StashKey[dict[str, float]]()
WORKER_PHASES_KEY = pytest.StashKey[dict[str, dict[str, float]]]()
WORKER_OUTPUT_KEY = "ci_kit_phases"
"""The key of a worker's phases in xdist's ``workeroutput``."""

WORKER_PHASES = ("import", "clone", "engine")
"""What a worker spends on the kit before its first test."""
LIBRARIES = ("sqlalchemy", "psycopg")
"""Imported by any suite whose tests use the kit's fixtures: their import is timed
apart (phase ``libraries``), so ``import`` is the kit's own code."""


@contextlib.contextmanager
def phase(stash: pytest.Stash, name: str) -> Iterator[None]:
    """Add the time the block takes to phase ``name`` of this process."""
    started = time.perf_counter()
    try:
        yield
    finally:
        record(stash, name, time.perf_counter() - started)


def record(stash: pytest.Stash, name: str, seconds: float) -> None:
    """Add ``seconds`` to phase ``name`` of this process."""
    phases = stash.setdefault(PHASES_KEY, {})
    phases[name] = phases.get(name, 0.0) + seconds


def import_libraries(stash: pytest.Stash) -> None:
    """Import SQLAlchemy and psycopg under a phase of their own, before the kit's modules."""
    with phase(stash, "libraries"):
        for name in LIBRARIES:
            importlib.import_module(name)


def phase_seconds(config: pytest.Config) -> dict[str, float]:
    """This process's phases so far: ``libraries`` (SQLAlchemy, psycopg), ``import``
    (the kit's database code), ``prepare`` (controller or serial run: server, sweep,
    template, trial clone; of which ``server`` and ``template``), ``clone``,
    ``engine`` and, once the run's clean-up began, ``close`` (dropping what is left)."""
    phases: dict[str, float] = config.stash.get(PHASES_KEY, {})
    return dict(phases)


def keep_worker_phases(config: pytest.Config, worker_id: str, output: Mapping[str, object]) -> None:
    """On the controller: what a finished worker reported of its phases."""
    phases = output.get(WORKER_OUTPUT_KEY)
    if isinstance(phases, dict):
        config.stash.setdefault(WORKER_PHASES_KEY, {})[worker_id] = {
            str(name): float(seconds) for name, seconds in phases.items()
        }


def worker_start_share(phases: Mapping[str, float]) -> float:
    """Seconds of a worker's start-up that were the kit's."""
    return sum(phases.get(name, 0.0) for name in WORKER_PHASES)


def start_up_summary(config: pytest.Config) -> str | None:
    """``kit's share of the slowest worker's start: 41 ms (import 12, clone 27, engine 2)``.

    The slowest worker is named: it is the one the run waited for. A serial run
    reports its own phases; a controller, those its workers handed over.
    """
    workers = config.stash.get(WORKER_PHASES_KEY, {})
    if workers:
        who, phases = "the slowest worker's", max(workers.values(), key=worker_start_share)
    else:
        who, phases = "the run's", phase_seconds(config)
    if not any(name in phases for name in WORKER_PHASES):
        return None
    parts = ", ".join(f"{name} {phases.get(name, 0.0) * 1000:.0f}" for name in WORKER_PHASES)
    return f"kit's share of {who} start {worker_start_share(phases) * 1000:.0f} ms ({parts})"
