"""1. The sample suite serially, with ``-n 2`` and with ``-n auto``: parallel efficiency.

Every run goes through ``python -m ci_kit pytest backend_sample/tests`` from the
repository's root, as the nox sessions do: pytest takes ``backend_sample/`` as its
rootdir, so the sample's own ``pyproject.toml`` (its ``[tool.ci-kit]`` and pytest
settings) applies, as in a team that adopted the kit. Each run includes starting
the embedded server and building the template. The quick mode
runs the whole suite once: a subset picked by duration is a few heavy files, which
``--dist loadfile`` cannot spread over workers, so it would hide the speed-up.
"""

from __future__ import annotations

import os

from benchmarks.common import Context, Measurement, Ratio, Section, timed_run

SAMPLE_SUITE = "backend_sample/tests"
"""Relative to the repository's root, as ``ci.sessions.SAMPLE_SUITE`` runs it."""
VARIANTS = {
    "serial": [],
    "-n 2": ["-n", "2", "--dist", "loadfile"],
    "-n auto": ["-n", "auto", "--dist", "loadfile"],
}


def run(ctx: Context) -> Section:
    section = Section("sample-suite", "Sample suite: serial vs -n 2 vs -n auto")
    repeats = ctx.pick(1, 3)
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    passed: set[int] = set()
    base = [ctx.python, "-m", "ci_kit", "pytest", SAMPLE_SUITE, "-q", "-p", "no:randomly"]
    for repeat in range(repeats):
        for name, args in VARIANTS.items():  # interleaved, so drift hits every variant
            ctx.log(f"sample suite {name} ({repeat + 1}/{repeats})")
            done = timed_run([*base, *args], cwd=ctx.root, env=ctx.env())
            samples[name].append(done.seconds)
            passed.add(done.passed())
    section.notes.append(
        f"the whole suite ({' / '.join(map(str, sorted(passed)))} tests passed)"
        + ("" if ctx.full else ", once per variant in quick mode (no spread)")
    )
    for name, values in samples.items():
        section.measurements.append(Measurement(name, "s", values))
    workers = os.cpu_count() or 1
    speedup = section.ratio(
        "serial / -n 2", "serial", "-n 2", "parallel speed-up with 2 workers (limit: 2x here)"
    )
    section.ratios.append(
        Ratio(
            "parallel efficiency at -n 2",
            speedup.value / 2,
            "speed-up divided by the number of workers (1.0 is perfect)",
        )
    )
    section.ratio(
        "serial / -n auto",
        "serial",
        "-n auto",
        f"speed-up with -n auto ({workers} workers on this machine)",
    )
    return section
