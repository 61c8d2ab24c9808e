"""Run the measurements in one process, on one machine, and write the report.

One embedded server is started for the in-process and same-server comparisons;
runs that are about the whole experience (the sample suite, warm against cold,
pytest-postgresql) start their own servers as a user's run would.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from benchmarks import (
    inspired,
    isolation,
    plugin_cost,
    preparation,
    report,
    sample_suite,
    scaling,
    versus_pytest_postgresql,
    warm,
)
from benchmarks.common import BenchmarkFailed, Context, Section
from ci_kit.postgres import EmbeddedPostgres, find_binaries

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS: dict[str, Callable[[Context], Section]] = {
    "sample-suite": sample_suite.run,
    "inspired": inspired.run,
    "preparation": preparation.run,
    "isolation": isolation.run,
    "warm": warm.run,
    "pytest-postgresql": versus_pytest_postgresql.run,
    "scaling": scaling.run,
    "plugin-cost": plugin_cost.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    selected = options.only or list(BENCHMARKS)
    missing = [name for name in ("matplotlib", "pytest_postgresql") if not find_spec(name)]
    if missing:  # before minutes of measuring, not after
        _log(f"missing {', '.join(missing)}: install the project's 'bench' extra")
        return 2
    started = time.perf_counter()
    binaries = find_binaries()
    machine = _machine(binaries.version)
    if machine["load_average"][0] > 0.5:
        _log(f"warning: load average {machine['load_average'][0]:.2f}: figures will be noisy")
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="ci-kit-bench-") as temporary:
        work = Path(temporary)
        work.chmod(0o755)  # pytest-postgresql's server runs as postgres and must get through
        with EmbeddedPostgres(binaries) as server:
            assert server.url is not None
            context = Context(ROOT, work, options.full, server.url, _log)
            for key in selected:
                _log(f"== {key}")
                began = time.perf_counter()
                try:
                    section = BENCHMARKS[key](context)
                except BenchmarkFailed as error:
                    section = Section(key, key, notes=[f"FAILED: {error}"])
                    _log(f"{key} failed: {error}")
                section.notes.append(f"took {time.perf_counter() - began:.0f} s")
                sections.append(section)
    machine["load_average_after"] = list(os.getloadavg())
    results: dict[str, Any] = {
        "mode": "full" if options.full else "quick",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - started,
        "machine": machine,
        "sections": [section.to_json() for section in sections],
    }
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
        "--out", type=Path, default=ROOT / "docs" / "benchmarks", help="output directory"
    )
    return parser


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
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgresql": postgres,
        "commit": commit or "unknown",
        "load_average": list(os.getloadavg()),
    }


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
