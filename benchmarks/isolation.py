"""4. What per-test isolation costs: rollback, truncate, fresh clone, in ms per test.

The same generated tests run serially under each ``--ci-kit-isolation`` mode, the
modes one after the other in each round (hyperfine's ``--parameter-list``); pytest's
JUnit report gives every test's setup + call + teardown time, so collection and
start-up are left out and what remains is the isolation's price per test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from benchmarks import hyperfine
from benchmarks.common import BenchmarkFailed, Context, Measurement, Section
from benchmarks.suite import SuiteSpec, write_suite
from ci_kit import render

MODES = ("rollback", "truncate", "fresh")


def run(ctx: Context) -> Section:
    section = Section("isolation", "Per-test isolation: rollback vs truncate vs fresh clone")
    spec = SuiteSpec(tests=ctx.pick(100, 400))
    directory = write_suite(ctx.work / "isolation", spec, "kit")
    section.notes.append(
        f"{spec.tests} generated tests, serial, shared server; per-test time from the JUnit "
        "report (setup + call + teardown), averaged per run"
    )
    reports = ctx.work / "isolation-reports"
    reports.mkdir()

    def commands(round_number: int) -> list[hyperfine.Command]:
        report = f"--junitxml={reports}/r{round_number}-{{mode}}.xml"
        argv = [ctx.python, "-m", "ci_kit", "pytest", "-q", "--ci-kit-isolation={mode}", report]
        return [hyperfine.Command("{mode}", argv, directory)]

    server = render(ctx.server_url.set(database="bench_iso_test"))
    repeats = ctx.pick(2, 3)
    hyperfine.rounds(
        ctx,
        commands,
        repeats,
        env=ctx.env({"CI_KIT_DATABASE_URL": server}),
        parameters={"mode": MODES},
    )
    for mode in MODES:
        samples = [_mean_test_ms(reports / f"r{n}-{mode}.xml", spec.tests) for n in range(repeats)]
        section.measurements.append(Measurement(mode, "ms/test", samples, {"tests": spec.tests}))
    for mode in MODES[1:]:
        section.ratio(f"{mode} / rollback", mode, "rollback", f"per-test cost of {mode}")
    return section


def _mean_test_ms(report: Path, tests: int) -> float:
    cases = list(ET.parse(report).getroot().iter("testcase"))  # noqa: S314 - our own file
    if len(cases) != tests:
        raise BenchmarkFailed(f"{report}: {len(cases)} tests, expected {tests}")
    return 1000 * sum(float(case.get("time", "0")) for case in cases) / len(cases)
