"""7. How the cost grows: time against the number of tests and the number of workers.

Generated suites of growing size run with the kit on the shared server, serially and
with 2 and 4 xdist workers. Time per test should stay flat as the suite grows (no
per-test set-up that grows with the schema or the suite); more workers than cores
cannot help, so 4 workers on this 2-core machine shows the ceiling.
"""

from __future__ import annotations

from benchmarks.common import Context, Measurement, Section, timed_run
from benchmarks.suite import SuiteSpec, write_suite
from ci_kit.dburl import render

WORKERS = (1, 2, 4)


def run(ctx: Context) -> Section:
    section = Section("scaling", "Scaling: time vs number of tests and workers (kit)")
    sizes = ctx.pick((100, 300, 600), (100, 300, 600, 1200))
    repeats = ctx.pick(1, 3)
    section.notes.append(
        f"generated suites of {', '.join(map(str, sizes))} tests; 1 worker is a serial run; "
        f"{repeats} repetition(s) per cell; shared server"
    )
    server = render(ctx.server_url.set(database="bench_scale_test"))
    for tests in sizes:
        directory = write_suite(ctx.work / f"scale-{tests}", SuiteSpec(tests=tests), "kit")
        for workers in WORKERS:
            parallel = [] if workers == 1 else ["-n", str(workers), "--dist", "loadfile"]
            seconds = []
            for repeat in range(repeats):
                ctx.log(f"scaling {tests} tests x {workers} worker(s) ({repeat + 1}/{repeats})")
                done = timed_run(
                    [ctx.python, "-m", "ci_kit", "pytest", "-q", *parallel],
                    cwd=directory,
                    env=ctx.env({"CI_KIT_DATABASE_URL": server}),
                    expect_passed=tests,
                )
                seconds.append(done.seconds)
            section.measurements.append(
                Measurement(
                    f"{tests} tests x {workers}w",
                    "s",
                    seconds,
                    {"tests": tests, "workers": workers},
                )
            )
    big, small = sizes[-1], sizes[0]
    for workers in WORKERS[1:]:
        section.ratio(
            f"speed-up at {big} tests, {workers} workers",
            f"{big} tests x 1w",
            f"{big} tests x {workers}w",
            f"serial time over {workers}-worker time",
        )
    section.ratio(
        f"time {big} / {small} tests (serial)",
        f"{big} tests x 1w",
        f"{small} tests x 1w",
        f"{big // small}x the tests; below {big // small}x means fixed costs amortise",
    )
    return section
