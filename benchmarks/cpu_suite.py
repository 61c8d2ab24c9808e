"""8. Is parallel worth it for a small team? 60 CPU-bound tests, serial against ``-n 2``.

The suite a new user brings: 60 tests of about 0.2 s of CPU each (12 s serially),
each on the kit's ``db_connection``, a one-table schema, the kit's embedded server
(no URL configured). A test phase this short is where a run's fixed seconds (the
server, the template, the workers' start-up) decide whether ``-n 2`` pays on two
cores; the goal is ``-n 2`` at 0.65x the serial time or less. Rounds interleave the
two, the order rotated.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from benchmarks import hyperfine
from benchmarks.common import Context, Measurement, Section

TESTS, PER_FILE, CPU_SECONDS = 60, 10, 0.2
SERIAL, PARALLEL = "serial", "-n 2 --dist loadfile"
RUNS = {SERIAL: (), PARALLEL: ("-n", "2", "--dist", "loadfile")}

_TEST_FILE = textwrap.dedent(
    f"""\
    import time

    import pytest


    @pytest.mark.parametrize("n", range({PER_FILE}))
    def test_cpu(db_connection, n):
        end = time.process_time() + {CPU_SECONDS}
        while time.process_time() < end:
            pass
    """
)
_MODELS = textwrap.dedent(
    """\
    from sqlalchemy import Column, Integer, MetaData, String, Table

    metadata = MetaData()
    items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("n", String))
    """
)


def write_cpu_suite(directory: Path) -> Path:
    """The 60 tests, their one-table schema and a ``[tool.ci-kit]`` naming it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "models.py").write_text(_MODELS)
    for number in range(TESTS // PER_FILE):
        (directory / f"test_cpu_{number}.py").write_text(_TEST_FILE)
    (directory / "pyproject.toml").write_text(
        '[tool.ci-kit]\nbase-name = "cpu_suite_test"\nschema = "models:metadata"\n'
    )
    return directory


def run(ctx: Context) -> Section:
    section = Section("cpu-suite", "60 CPU-bound tests (~0.2 s each): -n 2 against serial")
    directory = write_cpu_suite(ctx.work / "cpu-suite")
    section.notes.append(
        f"{TESTS} tests of {CPU_SECONDS} s of CPU each on db_connection, a one-table "
        "schema, the kit's embedded server; rounds interleaved, the order rotated"
    )

    def commands(_round: int) -> list[hyperfine.Command]:
        base = [ctx.python, "-m", "ci_kit", "pytest", "-q", "-p", "no:randomly"]
        return [hyperfine.Command(name, [*base, *extra], directory) for name, extra in RUNS.items()]

    env = ctx.env()
    ctx.log("cpu suite: one untimed run first, to fill the bytecode cache")
    hyperfine.output_of(commands(0)[0], env=env)
    runs = hyperfine.rounds(ctx, commands, ctx.pick(3, 5), env=env)
    for name in RUNS:
        section.measurements.append(Measurement(name, "s", hyperfine.seconds(runs[name])))
    section.paired_ratio(
        "-n 2 / serial", PARALLEL, SERIAL, "the -n 2 run's share of the serial time (goal <= 0.65)"
    )
    return section
