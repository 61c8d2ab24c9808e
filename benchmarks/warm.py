"""5. A warm second run against a cold first one.

With ``--ci-kit-reuse`` the embedded server keeps running between runs and its
template survives, so the second run neither starts a server nor migrates.
Compared with the first reuse run (``initdb``, start, build) and with the default
ephemeral run, which pays the start and the build every time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.common import Context, Measurement, Section, timed_run
from benchmarks.suite import SuiteSpec, write_suite
from ci_kit.lifecycle import reuse_data_dir
from ci_kit.postgres import stop_persistent

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
        "'prepare' is the kit's own 'prepared in' figure (server + template)"
    )
    argv = [ctx.python, "-m", "ci_kit", "pytest", "-q"]
    runs = {COLD: [], FIRST: ["--ci-kit-reuse"], WARM: ["--ci-kit-reuse"]}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    prepare: dict[str, list[float]] = {name: [] for name in runs}
    repeats = ctx.pick(2, 3)
    try:
        for repeat in range(repeats):
            _discard(data_dir)
            for name, extra in runs.items():
                ctx.log(f"{name} ({repeat + 1}/{repeats})")
                done = timed_run(
                    [*argv, *extra], cwd=directory, env=ctx.env(), expect_passed=spec.tests
                )
                wall[name].append(done.seconds)
                prepare[name].append(done.prepared_seconds() or 0.0)
    finally:
        _discard(data_dir)
    for name in runs:
        section.measurements.append(Measurement(name, "s", wall[name]))
    for name in runs:
        section.measurements.append(Measurement(f"prepare: {name}", "s", prepare[name]))
    section.ratio("cold / warm (whole run)", COLD, WARM, "default run against a warm reuse run")
    section.ratio(
        "cold / warm (preparation)",
        f"prepare: {COLD}",
        f"prepare: {WARM}",
        "server start + template build against finding both ready",
    )
    return section


def _discard(data_dir: Path) -> None:
    """Stop the kept server and delete its cluster, so the next run starts cold."""
    stop_persistent(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
