"""1. The sample suite: the seed's way against the kit, and where a parallel run's time goes.

The workload is the real one, ``backend_sample/tests`` (673 tests of an HTTP API,
services, migrations and database constraints), unchanged; only what provides its
database fixtures differs:

- **the kit**: ``python -m ci_kit pytest``, as the nox sessions run it: an embedded
  server started by the run, a template built once, a clone per process, each
  test rolled back;
- **the seed's way** (:mod:`benchmarks.seed_way`): each process creates its own
  database and migrates it; tests commit, and afterwards the schema is dropped and
  migrated again, or (the variant) the tables are truncated. It uses the
  benchmark's already running server, so it never pays a server start: the kit does;
- **no kit, no test run** (:mod:`benchmarks.no_tests`): the suite's start and end
  alone, serially and at ``-n 2``: the floor under any run's time outside its tests.

Every variant runs once per round, in an order that rotates between rounds, and
ratios are medians of the per-round ratios. Each run is one hyperfine invocation
(:mod:`benchmarks.hyperfine`), so the whole machine's CPU can be sampled around it.
Every run carries ``-p benchmarks.probe`` so its wall time can be cut into named
seconds (:mod:`benchmarks.breakdown`): the breakdowns of the round whose kit
``-n 2`` run was the median are published.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Literal

from benchmarks import hyperfine, seed_way
from benchmarks.breakdown import Breakdown, account, efficiency, load_records
from benchmarks.common import BenchmarkFailed, Context, Measurement, Section, Table, rotated
from benchmarks.probe import POSTMASTER_PID_ENV, PROBE_DIR_ENV
from benchmarks.procstat import machine_cpu_seconds
from ci_kit import render, worker_start_share

SAMPLE_SUITE = "backend_sample/tests"
"""Relative to the repository's root, as ``ci.sessions.SAMPLE_SUITE`` runs it."""
TESTS = 673
"""Every test of the suite finishes in every run (666 pass, 7 are skipped)."""
WORKERS = 2
PARALLEL = ["-n", str(WORKERS)]
DISTS = ("loadfile", "load", "worksteal")
RECOMMENDED_DIST = "loadfile"
"""What ``nox -s tests-parallel`` runs; the comparison says whether it should."""

KIT_SERIAL = "kit, serial"
SEED_SERIAL = "seed's way, serial"
SEED_PARALLEL = "seed's way, -n 2"
TRUNCATE_SERIAL = "seed's way truncating, serial"
TRUNCATE_PARALLEL = "seed's way truncating, -n 2"
FLOOR_SERIAL = "no kit, no test run, serial"
FLOOR_PARALLEL = "no kit, no test run, -n 2"
KIT_OUTSIDE_SERIAL = "kit, serial: wall outside its tests"
KIT_OUTSIDE_PARALLEL = "kit, -n 2: wall outside the slowest worker's tests"


def kit_parallel(dist: str) -> str:
    return f"kit, -n 2 --dist {dist}"


@dataclass(frozen=True)
class Variant:
    name: str
    fixtures: Literal["kit", "seed", "none"]
    """What provides the suite's databases: the kit, the seed's way, or nothing (no test runs)."""
    args: list[str]
    reset: str = "schema"


LOADFILE = [*PARALLEL, "--dist", RECOMMENDED_DIST]
VARIANTS = [
    Variant(KIT_SERIAL, "kit", []),
    *(Variant(kit_parallel(dist), "kit", [*PARALLEL, "--dist", dist]) for dist in DISTS),
    Variant(SEED_SERIAL, "seed", []),
    Variant(SEED_PARALLEL, "seed", LOADFILE),
    Variant(TRUNCATE_SERIAL, "seed", [], "truncate"),
    Variant(TRUNCATE_PARALLEL, "seed", LOADFILE, "truncate"),
    Variant(FLOOR_SERIAL, "none", []),
    Variant(FLOOR_PARALLEL, "none", LOADFILE),
]


@dataclass
class Runs:
    """Every run of one variant: its wall times and breakdowns, round by round."""

    walls: list[float] = field(default_factory=list)
    breakdowns: list[Breakdown] = field(default_factory=list)
    """Of the runs that run tests: a run of no test has no phases to cut its wall into."""


def run(ctx: Context) -> Section:
    section = Section("sample-suite", "Sample suite (673 tests): the seed's way vs the kit")
    rounds = ctx.pick(3, 5)
    runs = {variant.name: Runs() for variant in VARIANTS}
    env = ctx.env({seed_way.ADMIN_URL_ENV: render(ctx.server_url)})  # a secret: not in argv
    ctx.log("sample suite: warming bytecode caches (one collection)")
    collect = [ctx.python, "-m", "pytest", SAMPLE_SUITE, "--collect-only", "-q"]
    hyperfine.output_of(hyperfine.Command("collection", collect, ctx.root), env=env)
    for round_number in range(rounds):
        for variant in rotated(VARIANTS, round_number):
            ctx.log(f"sample suite: {variant.name} ({round_number + 1}/{rounds})")
            wall, breakdown = _measure(ctx, variant, f"r{round_number}", env)
            runs[variant.name].walls.append(wall)
            if breakdown is not None:
                runs[variant.name].breakdowns.append(breakdown)
    for variant in VARIANTS:
        section.measurements.append(Measurement(variant.name, "s", runs[variant.name].walls))
    _outside_tests(section, runs)
    _kit_share(section, runs)
    _ratios(section, runs)
    _breakdowns(section, runs)
    section.notes += [
        f"all {TESTS} tests ran in every run (666 pass, 7 skip); {rounds} rounds, each "
        "running every variant once, in a rotating order, each run timed by hyperfine; "
        "ratios are medians of the per-round ratios",
        "the kit starts its embedded server in every run and builds its template (cold); "
        "the seed's way uses the benchmark's running server: no server start",
        "bytecode caches warm (PYTHONPYCACHEPREFIX, filled by one collection first), as on "
        "a developer's machine: a cold cache costs each xdist worker ~2 s of pytest's "
        "assertion rewriting",
    ]
    return section


def _measure(
    ctx: Context, variant: Variant, tag: str, env: dict[str, str]
) -> tuple[float, Breakdown | None]:
    """One run of the whole suite, probed: its wall time and where the time went."""
    if variant.fixtures == "none":
        argv = [ctx.python, "-m", "pytest", SAMPLE_SUITE, "-q", "-p", "no:randomly"]
        argv += ["-p", "no:ci_kit", "-p", "benchmarks.no_tests", *variant.args]
        command = hyperfine.Command(variant.name, argv, ctx.root)
        [done] = hyperfine.one_round(ctx, [command], env=env)
        return done.seconds, None
    probes = ctx.work / "probes" / f"{tag}-{variant.name.replace(' ', '_').replace(',', '')}"
    probes.mkdir(parents=True)
    settings = {PROBE_DIR_ENV: str(probes)}
    pytest_args = [SAMPLE_SUITE, "-q", "-p", "no:randomly", "-p", "benchmarks.probe"]
    if variant.fixtures == "kit":
        argv = [ctx.python, "-m", "ci_kit", "pytest", *pytest_args, *variant.args]
    else:
        argv = [ctx.python, "-m", "pytest", *pytest_args, "-p", "no:ci_kit"]
        argv += ["-p", "benchmarks.seed_way", *variant.args]
        settings |= {seed_way.RESET_ENV: variant.reset, POSTMASTER_PID_ENV: str(ctx.server_pid)}
    command = hyperfine.Command(variant.name, argv, ctx.root, settings)
    machine_before = machine_cpu_seconds()
    started = time.time()  # hyperfine's own start-up, a few ms, counts as the launch
    [done] = hyperfine.one_round(ctx, [command], env=env)
    machine = machine_cpu_seconds() - machine_before
    breakdown = account(
        load_records(probes),
        wall=done.seconds,
        started=started,
        test_cpu=done.cpu_seconds,
        cores=os.cpu_count() or 1,
        machine_cpu=machine,
    )
    if breakdown.tests != TESTS:
        raise BenchmarkFailed(f"{variant.name}: {breakdown.tests} tests ran, not {TESTS}")
    return done.seconds, breakdown


def _outside_tests(section: Section, runs: dict[str, Runs]) -> None:
    """The kit's runs' wall outside their tests, beside the floor: the same suite's
    start and end with no kit and no test run."""
    serial, parallel = runs[KIT_SERIAL], runs[kit_parallel(RECOMMENDED_DIST)]
    section.measurements += [
        Measurement(
            KIT_OUTSIDE_SERIAL,
            "s",
            [wall - run.busy for wall, run in zip(serial.walls, serial.breakdowns, strict=True)],
        ),
        Measurement(
            KIT_OUTSIDE_PARALLEL,
            "s",
            [
                wall - max(worker.busy for worker in run.workers)
                for wall, run in zip(parallel.walls, parallel.breakdowns, strict=True)
            ],
        ),
    ]
    section.notes.append(
        f"'{FLOOR_PARALLEL}': the suite's start and end alone (every test deselected, "
        "-p no:ci_kit): xdist's controller and workers, pytest, its plugins, the app's "
        "import and collection, the processes' ends. No run of this suite at -n 2 "
        "spends less outside its tests on this machine, whatever provides its databases"
    )


def _kit_share(section: Section, runs: dict[str, Runs]) -> None:
    """The kit's part of each worker's start-up, and the libraries it imports first."""
    workers = [
        worker.kit
        for dist in DISTS
        for breakdown in runs[kit_parallel(dist)].breakdowns
        for worker in breakdown.workers
    ]
    section.measurements += [
        Measurement(
            "kit's share of a worker's start (import + clone + engine)",
            "ms",
            [worker_start_share(kit) * 1000 for kit in workers],
        ),
        Measurement(
            "SQLAlchemy + psycopg import in a worker (the suite's own imports, paid first)",
            "ms",
            [kit.get("libraries", 0.0) * 1000 for kit in workers],
        ),
    ]


def _ratios(section: Section, runs: dict[str, Runs]) -> None:
    parallel = kit_parallel(RECOMMENDED_DIST)
    section.paired_ratio(
        "seed's way / kit (serial)",
        SEED_SERIAL,
        KIT_SERIAL,
        "how many times longer the seed's way takes: migrate per process, rebuild per test",
    )
    section.paired_ratio(
        "seed's way / kit (-n 2)",
        SEED_PARALLEL,
        parallel,
        "the same with 2 workers, both --dist loadfile",
    )
    section.paired_ratio(
        "seed's way truncating / kit (serial)",
        TRUNCATE_SERIAL,
        KIT_SERIAL,
        "the seed's way with a truncation after each test instead of a schema rebuild",
    )
    section.paired_ratio(
        "seed's way truncating / kit (-n 2)", TRUNCATE_PARALLEL, parallel, "the same, -n 2"
    )
    for dist in DISTS:
        section.paired_ratio(
            f"serial / -n 2 --dist {dist}",
            KIT_SERIAL,
            kit_parallel(dist),
            f"the kit's speed-up with 2 workers, --dist {dist} (limit: 2x)",
        )
        suffix = "" if dist == RECOMMENDED_DIST else f", --dist {dist}"
        rounds = [
            efficiency(serial, parallel_wall, WORKERS)
            for serial, parallel_wall in zip(
                runs[KIT_SERIAL].walls, runs[kit_parallel(dist)].walls, strict=True
            )
        ]
        section.rounds_ratio(
            f"parallel efficiency at -n 2{suffix}", rounds, "speed-up / workers (1.0 is perfect)"
        )
    ceilings = [
        serial / (WORKERS * parallel_run.total_cpu / parallel_run.cores)
        for serial, parallel_run in zip(
            runs[KIT_SERIAL].walls, runs[parallel].breakdowns, strict=True
        )
    ]
    section.rounds_ratio(
        "efficiency ceiling at -n 2 on this machine",
        ceilings,
        "serial wall / (2 x the -n 2 run's CPU (tests + server) / cores): the best "
        "efficiency the cores allow for the CPU a 2-worker run needs",
    )
    fastest = min(DISTS, key=lambda dist: section.get(kit_parallel(dist)).median)
    section.notes.append(
        f"fastest distribution here: --dist {fastest}; the kit recommends --dist "
        f"{RECOMMENDED_DIST} (see the README's Figures for why)"
    )


def _breakdowns(section: Section, runs: dict[str, Runs]) -> None:
    """Where the time went, in the round whose kit -n 2 run was the median one."""
    parallel = runs[kit_parallel(RECOMMENDED_DIST)]
    ordered = sorted(range(len(parallel.walls)), key=parallel.walls.__getitem__)
    median_round = ordered[len(ordered) // 2]
    for name in (KIT_SERIAL, kit_parallel(RECOMMENDED_DIST), SEED_PARALLEL):
        breakdown = runs[name].breakdowns[median_round]
        section.details.setdefault("breakdowns", {})[name] = breakdown.to_json()
        section.tables.append(
            Table(
                f"Where the time goes: {name} (round {median_round + 1}, "
                f"{breakdown.wall:.1f} s, CPU utilisation {breakdown.cpu_utilisation:.2f})",
                ["part", "seconds", "what"],
                [
                    ["&emsp;" * row.level + row.name, row.seconds, row.explanation]
                    for row in breakdown.rows()
                ],
            )
        )
