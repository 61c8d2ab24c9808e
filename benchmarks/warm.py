"""5. A warm second run against a cold first one.

With ``--ci-kit-reuse`` the embedded server keeps running between runs and its
template survives, so the second run neither starts a server nor migrates.
Compared with the first reuse run (``initdb``, start, build) and with the default
ephemeral run, which pays the start and the build every time. Each round runs
the three in this order (the warm run needs the first); hyperfine's ``--prepare``
stops and deletes the kept server (``python -m ci_kit server --stop``), untimed,
before the cold and the first run.
"""

from __future__ import annotations

from benchmarks import hyperfine
from benchmarks.common import Context, Measurement, Section, seconds_to_first_test
from benchmarks.first_test import FIRST_TEST_ENV
from benchmarks.suite import SuiteSpec, write_suite

COLD = "cold: ephemeral server (default)"
FIRST = "first --ci-kit-reuse run"
WARM = "warm --ci-kit-reuse run"
RUNS = {COLD: (), FIRST: ("--ci-kit-reuse",), WARM: ("--ci-kit-reuse",)}


def run(ctx: Context) -> Section:
    section = Section("warm", "Warm second run (server and template reused) vs cold run")
    spec = SuiteSpec(tests=100, revisions=ctx.pick(50, 200))
    directory = write_suite(ctx.work / "warm", spec, "kit")
    section.notes.append(
        f"{spec.tests} generated tests, {spec.revisions}-revision Alembic history, serial; "
        "'to first test' is the time from the process's start to the first test's setup "
        "(imports, server, template, the process's clone, collection)"
    )
    stop = [ctx.python, "-m", "ci_kit", "server", "--stop"]
    markers = ctx.work / "warm-first-test"
    markers.mkdir()

    def commands(round_number: int) -> list[hyperfine.Command]:
        return [
            hyperfine.Command(
                name,
                [ctx.python, "-m", "ci_kit", "pytest", "-q", "-p", "benchmarks.first_test", *extra],
                directory,
                {FIRST_TEST_ENV: str(markers / f"r{round_number}-{index}")},
                prepare=() if name == WARM else stop,
            )
            for index, (name, extra) in enumerate(RUNS.items())
        ]

    env = ctx.env()
    repeats = ctx.pick(2, 3)
    walls: dict[str, list[float]] = {name: [] for name in RUNS}
    try:
        for round_number in range(repeats):  # not rotated: the warm run needs the first
            ctx.log(f"warm and cold runs, round {round_number + 1}/{repeats}")
            for run in hyperfine.one_round(ctx, commands(round_number), env=env):
                walls[run.name].append(run.seconds)
    finally:
        hyperfine.output_of(hyperfine.Command("stop", stop, directory), env=env)
    for name in RUNS:
        section.measurements.append(Measurement(name, "s", walls[name]))
    for index, name in enumerate(RUNS):
        startup = [seconds_to_first_test(markers / f"r{n}-{index}") for n in range(repeats)]
        section.measurements.append(Measurement(f"to first test: {name}", "s", startup))
    section.ratio("cold / warm (whole run)", COLD, WARM, "default run against a warm reuse run")
    section.ratio(
        "cold / warm (start-up to first test)",
        f"to first test: {COLD}",
        f"to first test: {WARM}",
        "server start + template build against finding both ready",
    )
    return section
