"""Run the measurements in one process, on one machine, and write the report.

One embedded server is started for the in-process and same-server comparisons;
runs that are about the whole experience (the sample suite, warm against cold,
pytest-postgresql) start their own servers as a user's run would. Every command a
section compares is timed by hyperfine (:mod:`benchmarks.hyperfine`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from benchmarks import (
    cpu_suite,
    hyperfine,
    isolation,
    plugin_cost,
    preparation,
    quiet,
    report,
    sample_suite,
    scaling,
    versus_pytest_postgresql,
    warm,
)
from benchmarks.common import BenchmarkFailed, Context, Section
from benchmarks.server_cpu import data_directory
from ci_kit.postgres import EmbeddedPostgres, find_binaries, postmaster

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS: dict[str, Callable[[Context], Section]] = {
    "sample-suite": sample_suite.run,
    "preparation": preparation.run,
    "isolation": isolation.run,
    "warm": warm.run,
    "pytest-postgresql": versus_pytest_postgresql.run,
    "scaling": scaling.run,
    "plugin-cost": plugin_cost.run,
    "cpu-suite": cpu_suite.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    if options.keep_others and not options.only:
        parser.error("--keep-others keeps the sections --only does not re-measure: give --only")
    selected = options.only or list(BENCHMARKS)
    if shutil.which(hyperfine.HYPERFINE) is None:  # before minutes of measuring, not after
        _log("hyperfine not found: apt-get install hyperfine (scripts/setup-deploy does)")
        return 2
    modules = ["matplotlib", *(["pytest_postgresql"] if "pytest-postgresql" in selected else [])]
    missing = [name for name in modules if not find_spec(name)]
    if missing:
        _log(f"missing {', '.join(missing)}: install the project's 'bench' dependency group")
        return 2
    started = time.perf_counter()
    binaries = find_binaries()
    machine = _machine(binaries.version)
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="ci-kit-bench-") as temporary:
        work = Path(temporary)
        work.chmod(0o755)  # pytest-postgresql's server runs as postgres and must get through
        with EmbeddedPostgres(binaries) as server:
            assert server.url is not None
            pid = postmaster(data_directory(server))
            assert pid is not None
            context = Context(ROOT, work, options.full, server.url, pid, _log)
            for key in selected:
                _log(f"== {key}")
                load = quiet.wait_for_quiet(options.max_wait, _log)
                measured_at = _now()
                began = time.perf_counter()
                try:
                    section = BENCHMARKS[key](context)
                except BenchmarkFailed as error:
                    section = Section(key, key, notes=[f"FAILED: {error}"])
                    _log(f"{key} failed: {error}")
                section.load = {**load.to_json(), "date": measured_at, "commit": machine["commit"]}
                section.notes[:0] = [f"{load.describe()}; measured {measured_at}"]
                section.notes.append(f"took {time.perf_counter() - began:.0f} s")
                sections.append(section)
    machine["load_average_after"] = list(os.getloadavg())
    measured = [section.to_json() for section in sections]
    if options.keep_others:
        measured = report.merged(options.out, measured, order=list(BENCHMARKS))
    results: dict[str, Any] = {
        "mode": "full" if options.full else "quick",
        "date": _now(),
        "seconds": time.perf_counter() - started,
        "machine": machine,
        "sections": measured,
    }
    results["headlines"] = report.named_ratios(results)
    report.write(options.out, results)
    print(report.markdown(results))
    _log(f"wrote {options.out}/results.json, results.md, chart.png")
    return 1 if any(n.startswith("FAILED") for s in sections for n in s.notes) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes, few repeats (default)")
    mode.add_argument("--full", action="store_true", help="every size, more repeats (~20 min)")
    parser.add_argument(
        "--only", action="append", choices=list(BENCHMARKS), help="run only this (repeatable)"
    )
    parser.add_argument(
        "--keep-others",
        action="store_true",
        help="with --only: keep the other sections of the existing results.json "
        "(each section carries its own date, commit and load)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="how long to wait for a quiet machine before each section (default 180); "
        "figures taken under load are marked so",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks", help="output directory"
    )
    return parser


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _machine(postgres: str) -> dict[str, Any]:
    """What a reader needs to weigh the figures: cores, CPU, memory, versions, load."""
    cpu = memory = "unknown"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.splitlines()
                if "model name" in line
            ),
            cpu,
        )
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = _output("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    if commit and _output("git", "-C", str(ROOT), "status", "--porcelain", "-uno"):
        commit += " with uncommitted changes"
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgresql": postgres,
        "hyperfine": _output(hyperfine.HYPERFINE, "--version").removeprefix("hyperfine "),
        "commit": commit or "unknown",
        "load_average": list(os.getloadavg()),
    }


def _output(*argv: str) -> str:
    """What a command prints, or nothing where there is no such command."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return ""
    return done.stdout.strip()


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
