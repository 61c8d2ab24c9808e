"""2. The inspiring team's way against the kit's, on the same generated tests.

Theirs: each worker creates its database and runs every migration itself; each test
commits and is cleaned up by dropping and re-creating all tables. The kit's: one
template built per run, cloned per worker, each test rolled back. Both run with
``-n 2`` against the same already running server, so only the strategy differs.
"""

from __future__ import annotations

from benchmarks.common import Context, Measurement, Section, timed_run
from benchmarks.inspired_plugin import ADMIN_URL_ENV
from benchmarks.suite import SuiteSpec, write_suite
from ci_kit.dburl import render

KIT = "kit: template clone + rollback"
INSPIRED = "inspired: migrate per worker + drop/create tables per test"


def run(ctx: Context) -> Section:
    section = Section("inspired", "The inspiring team's way vs the kit (same tests, -n 2)")
    spec = SuiteSpec(tests=ctx.pick(200, 600), revisions=ctx.pick(50, 100))
    section.notes.append(
        f"{spec.tests} generated tests, {spec.revisions}-revision Alembic history, "
        "-n 2 --dist loadfile, one shared embedded server"
    )
    kit_dir = write_suite(ctx.work / "inspired-kit", spec, "kit")
    their_dir = write_suite(ctx.work / "inspired-theirs", spec, "inspired")
    server = render(ctx.server_url.set(database="bench_test"))
    admin = render(ctx.server_url)
    runs = {
        KIT: (kit_dir, ["-m", "ci_kit", "pytest"], {"CI_KIT_DATABASE_URL": server}),
        INSPIRED: (their_dir, ["-m", "pytest"], {ADMIN_URL_ENV: admin}),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    repeats = ctx.pick(2, 3)
    for repeat in range(repeats):
        for name, (directory, command, extra) in runs.items():
            ctx.log(f"{name} ({repeat + 1}/{repeats})")
            argv = [ctx.python, *command, "-q", "-n", "2", "--dist", "loadfile"]
            done = timed_run(argv, cwd=directory, env=ctx.env(extra), expect_passed=spec.tests)
            samples[name].append(done.seconds)
    for name, values in samples.items():
        section.measurements.append(Measurement(name, "s", values, {"tests": spec.tests}))
    section.ratio(
        "inspired / kit",
        INSPIRED,
        KIT,
        "how many times longer the per-worker-migration, drop-and-recreate way takes",
    )
    return section
