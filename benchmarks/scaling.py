"""7. How the cost grows: time against the number of tests and the number of workers.

Generated suites of growing size run with the kit on the shared server, serially
(``-n 0``) and with 2 and 4 xdist workers: one hyperfine round scans every size and
worker count (``--parameter-list``), each cell once. Time per test should stay flat
as the suite grows (no per-test set-up that grows with the schema or the suite);
more workers than cores cannot help, so 4 workers on this 2-core machine shows the
ceiling. A cell's neighbours are taken a minute apart at most; with ``--full`` the
rounds repeat, so a drift shows as spread.
"""

from __future__ import annotations

from benchmarks import hyperfine
from benchmarks.common import Context, Measurement, Section
from benchmarks.suite import SuiteSpec, write_suite
from ci_kit import render

WORKERS = (0, 2, 4)
"""``-n 0``: xdist loaded, no workers: a serial run."""


def run(ctx: Context) -> Section:
    section = Section("scaling", "Scaling: time vs number of tests and workers (kit)")
    sizes = ctx.pick((100, 300, 600), (100, 300, 600, 1200))
    repeats = ctx.pick(1, 3)
    section.notes.append(
        f"generated suites of {', '.join(map(str, sizes))} tests; 1 worker is a serial run; "
        f"{repeats} round(s), each running every cell once; shared server"
    )
    for tests in sizes:
        write_suite(ctx.work / f"scale-{tests}", SuiteSpec(tests=tests), "kit")
    argv = [ctx.python, "-m", "ci_kit", "pytest", "-q", "-n", "{workers}", "--dist", "loadfile"]
    command = hyperfine.Command("{tests} tests x {workers}w", argv, ctx.work / "scale-{tests}")
    env = ctx.env({"CI_KIT_DATABASE_URL": render(ctx.server_url.set(database="bench_scale_test"))})
    ctx.log("scaling: one run first, to build the template the cells share")
    serial = [arg.replace("{workers}", "0") for arg in argv]
    hyperfine.output_of(
        hyperfine.Command("warm-up", serial, ctx.work / f"scale-{sizes[0]}"), env=env
    )
    runs = hyperfine.rounds(
        ctx, lambda _: [command], repeats, env=env, parameters={"tests": sizes, "workers": WORKERS}
    )
    cells = {
        (int(t[0].parameters["tests"]), int(t[0].parameters["workers"])): t for t in runs.values()
    }
    for (tests, workers), timed in sorted(cells.items()):
        params = {"tests": tests, "workers": max(workers, 1)}
        name = f"{tests} tests x {params['workers']}w"
        section.measurements.append(Measurement(name, "s", hyperfine.seconds(timed), params))
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
