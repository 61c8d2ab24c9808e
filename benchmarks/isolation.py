"""4. What per-test isolation costs: rollback, truncate, fresh clone, in ms per test.

The same generated tests run serially under each ``--ci-kit-isolation`` mode; pytest's
JUnit report gives every test's setup + call + teardown time, so collection and
start-up are left out and what remains is the isolation's price per test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from benchmarks.common import Context, Measurement, Section, timed_run
from benchmarks.suite import SuiteSpec, write_suite
from ci_kit.dburl import render

MODES = ("rollback", "truncate", "fresh")


def run(ctx: Context) -> Section:
    section = Section("isolation", "Per-test isolation: rollback vs truncate vs fresh clone")
    spec = SuiteSpec(tests=ctx.pick(100, 400))
    directory = write_suite(ctx.work / "isolation", spec, "kit")
    section.notes.append(
        f"{spec.tests} generated tests, serial, shared server; per-test time from the JUnit "
        "report (setup + call + teardown), averaged per run"
    )
    server = render(ctx.server_url.set(database="bench_iso_test"))
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    repeats = ctx.pick(2, 3)
    for repeat in range(repeats):
        for mode in MODES:
            ctx.log(f"isolation {mode} ({repeat + 1}/{repeats})")
            report = ctx.work / f"isolation-{mode}-{repeat}.xml"
            argv = [ctx.python, "-m", "ci_kit", "pytest", "-q", f"--junitxml={report}"]
            env = ctx.env({"CI_KIT_DATABASE_URL": server, "CI_KIT_ISOLATION": mode})
            timed_run(argv, cwd=directory, env=env, expect_passed=spec.tests)
            samples[mode].append(_mean_test_ms(report))
    for mode, values in samples.items():
        section.measurements.append(Measurement(mode, "ms/test", values, {"tests": spec.tests}))
    for mode in MODES[1:]:
        section.ratio(f"{mode} / rollback", mode, "rollback", f"per-test cost of {mode}")
    return section


def _mean_test_ms(report: Path) -> float:
    cases = ET.parse(report).getroot().iter("testcase")  # noqa: S314 - our own file
    times = [float(case.get("time", "0")) for case in cases]
    return 1000 * sum(times) / len(times)
