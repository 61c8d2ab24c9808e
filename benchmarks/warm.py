"""5. A warm second run against a cold first one.

With ``--ci-kit-reuse`` the embedded server keeps running between runs and its
template survives, so the second run neither starts a server nor migrates.
Compared with the first reuse run (``initdb``, start, build) and with the default
ephemeral run, which pays the start and the build every time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.common import Context, Measurement, Section, timed_to_first_test
from benchmarks.suite import SuiteSpec, write_suite
from ci_kit.postgres import reuse_data_dir, stop_persistent

COLD = "cold: ephemeral server (default)"
FIRST = "first --ci-kit-reuse run"
WARM = "warm --ci-kit-reuse run"


def run(ctx: Context) -> Section:
    section = Section("warm", "Warm second run (server and template reused) vs cold run")
    spec = SuiteSpec(tests=100, revisions=ctx.pick(50, 200))
    directory = write_suite(ctx.work / "warm", spec, "kit")
    data_dir = reuse_data_dir(directory.resolve())
    section.notes.append(
        f"{spec.tests} generated tests, {spec.revisions}-revision Alembic history, serial; "
        "'to first test' is the time from starting pytest to the first test's setup "
        "(imports, server, template, the process's clone, collection)"
    )
    argv = [ctx.python, "-m", "ci_kit", "pytest", "-q"]
    runs = {COLD: [], FIRST: ["--ci-kit-reuse"], WARM: ["--ci-kit-reuse"]}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    startup: dict[str, list[float]] = {name: [] for name in runs}
    repeats = ctx.pick(2, 3)
    try:
        for repeat in range(repeats):
            _discard(data_dir)
            for name, extra in runs.items():
                ctx.log(f"{name} ({repeat + 1}/{repeats})")
                done, to_first_test = timed_to_first_test(
                    [*argv, *extra],
                    cwd=directory,
                    env=ctx.env(),
                    marker=ctx.work / "warm-first-test",
                    expect_passed=spec.tests,
                )
                wall[name].append(done.seconds)
                startup[name].append(to_first_test)
    finally:
        _discard(data_dir)
    for name in runs:
        section.measurements.append(Measurement(name, "s", wall[name]))
    for name in runs:
        section.measurements.append(Measurement(f"to first test: {name}", "s", startup[name]))
    section.ratio("cold / warm (whole run)", COLD, WARM, "default run against a warm reuse run")
    section.ratio(
        "cold / warm (start-up to first test)",
        f"to first test: {COLD}",
        f"to first test: {WARM}",
        "server start + template build against finding both ready",
    )
    return section


def _discard(data_dir: Path) -> None:
    """Stop the kept server and delete its cluster, so the next run starts cold."""
    stop_persistent(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
