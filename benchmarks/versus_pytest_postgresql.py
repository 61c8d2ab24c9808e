"""6. pytest-postgresql against the kit, on the same generated tests.

pytest-postgresql's ``postgresql_proc`` starts a server and loads the schema into a
template database once; its ``postgresql`` fixture (a ``DatabaseJanitor``) creates
a database from that template for every test and drops it afterwards. The kit
starts its server, builds its template, clones once per process and rolls each test
back. Both run serially and include their server's start. Each round (hyperfine,
:mod:`benchmarks.hyperfine`) runs each variant once, the order rotated; the ratios
are of medians, since pytest-postgresql's defaults, minutes a run, run in the first
round only (quick) or two.

pytest-postgresql runs ``pg_ctl`` as the current user, which PostgreSQL refuses for
root (its issues #341 and #455). We run as root, so ``--postgresql-exec`` points at a
small shim that hands the data directory to the ``postgres`` user and runs the real
``pg_ctl`` as that user; everything else is pytest-postgresql's own code.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

from benchmarks import hyperfine
from benchmarks.common import Context, Measurement, Section
from benchmarks.suite import SuiteSpec, write_suite
from ci_kit import PostgresNotFound
from ci_kit.postgres import find_binaries

KIT = "kit: embedded + template clone + rollback"
PP_DEFAULT = "pytest-postgresql: defaults (data in /tmp)"
PP_TUNED = "pytest-postgresql: data in RAM, durability off"

_SHIM = """#!/bin/sh
# pytest-postgresql runs pg_ctl as the current user; PostgreSQL refuses root.
# Give the data directory's parent to postgres, let it through the parents
# pytest created (0700) up to BENCH_PP_TOP, and run the real pg_ctl as postgres.
prev=""
data=""
for arg in "$@"; do
    case "$prev" in -D|--pgdata) data="$arg" ;; esac
    prev="$arg"
done
if [ -n "$data" ] && [ "$(id -u)" = 0 ]; then
    parent=$(dirname "$data")
    chown postgres "$parent"
    dir="$parent"
    while [ "$dir" != "$BENCH_PP_TOP" ] && [ "$dir" != "/" ]; do
        chmod o+x "$dir"
        dir=$(dirname "$dir")
    done
fi
if [ "$(id -u)" = 0 ]; then
    exec runuser -u postgres -- "{real}" "$@"
fi
exec "{real}" "$@"
"""
_TUNING = "-c synchronous_commit=off -c full_page_writes=off"


def run(ctx: Context) -> Section:
    section = Section("pytest-postgresql", "pytest-postgresql vs the kit (same tests, serial)")
    spec = SuiteSpec(tests=ctx.pick(100, 200))
    try:
        binaries = find_binaries(allow_wheel=False)
    except PostgresNotFound as error:
        section.notes.append(f"skipped: pytest-postgresql needs system binaries ({error})")
        return section
    shim = _write_shim(ctx.work / "pp-bin", binaries.bin_dir / "pg_ctl")
    kit_dir = write_suite(ctx.work / "pp-kit", spec, "kit")
    pp_dir = write_suite(ctx.work / "pp-theirs", spec, "pytest-postgresql")
    section.notes.append(
        f"{spec.tests} generated tests, {spec.revisions}-revision Alembic history, serial; "
        f"PostgreSQL {binaries.version}; pytest-postgresql's pg_ctl runs as postgres via a shim"
    )
    section.notes.append(
        f"pytest-postgresql's defaults run {ctx.pick('once', 'twice')}: they take minutes"
    )
    ram = Path("/dev/shm") if Path("/dev/shm").is_dir() else ctx.work  # noqa: S108
    common = [ctx.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    common.append(f"--postgresql-exec={shim}")
    tuned = [*common, f"--postgresql-postgres-options={_TUNING}"]
    tops = {PP_DEFAULT: ctx.work / "pp-disk", PP_TUNED: ram / f"{ctx.work.name}-pp-ram"}
    for top in tops.values():
        top.mkdir(mode=0o755, exist_ok=True)

    def commands(round_number: int) -> list[hyperfine.Command]:
        found = [
            hyperfine.Command(KIT, [ctx.python, "-m", "ci_kit", "pytest", "-q"], kit_dir),
            *(
                hyperfine.Command(
                    name,
                    [*argv, f"--basetemp={tops[name] / 'basetemp'}"],
                    pp_dir,
                    {"BENCH_PP_TOP": str(tops[name])},
                )
                for name, argv in ((PP_DEFAULT, common), (PP_TUNED, tuned))
            ),
        ]
        if round_number >= ctx.pick(1, 2):  # its clones on disk take most of a minute per run
            found = [command for command in found if command.name != PP_DEFAULT]
        return found

    try:
        runs = hyperfine.rounds(ctx, commands, ctx.pick(2, 3), env=ctx.env())
    finally:  # the RAM directory lies outside the run's temporary directory
        shutil.rmtree(tops[PP_TUNED], ignore_errors=True)
    for name, timed in runs.items():
        params = {"tests": spec.tests}
        section.measurements.append(Measurement(name, "s", hyperfine.seconds(timed), params))
    section.ratio(
        "pytest-postgresql (defaults) / kit", PP_DEFAULT, KIT, "its defaults against the kit's"
    )
    section.ratio(
        "pytest-postgresql (tuned) / kit",
        PP_TUNED,
        KIT,
        "both servers in RAM with durability off: the per-test clone against rollback",
    )
    return section


def _write_shim(directory: Path, real: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "pg_ctl"
    shim.write_text(_SHIM.replace("{real}", str(real)))
    # runuser switches to postgres only for the real pg_ctl; root runs the shim itself
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return shim
