"""8. What the plugin costs a pytest process, when inert and when enabled.

The kit registers through the ``pytest11`` entry point, so every pytest process in
an environment that has it installed imports ``ci_kit.plugin``, whether its project
uses the kit or not; the issue's budget for that is 30 ms. On a throw-away project
with one trivial test, three runs are taken side by side, again and again:

- inert: no ``[tool.ci-kit]``, no ``CI_KIT_*``, no flag, so the plugin is loaded
  but the kit stays off;
- ``-p no:ci_kit``: the same run without the plugin, the baseline of both others;
- enabled: ``--ci-kit-url`` to the shared, already running server, whose template
  is already built; the time from process start to the first test then holds the
  kit's imports, its connection, the template check and the clone of the
  process's database.

Every other installed pytest plugin is disabled in all three (``-p no:NAME`` for
each ``pytest11`` entry point but the kit's, ``randomly`` among them): they are the
same in every run and only add noise, or, like pytest-postgresql's, import psycopg
before the kit could. The inert difference is a few milliseconds on a process of
half a second, less than the drift between runs, so each kit run is paired with the
baseline run taken beside it, the order rotates, and the figure is the median of
the per-round differences, with a 95 % interval. Each process's CPU time (user +
system) is taken beside its wall time as a second opinion: a machine shared with
other work stretches both, but not always alike. ``python -X importtime`` then
says where the time goes: which of the kit's, SQLAlchemy's and psycopg's modules a
process imports, and how long they take.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

from benchmarks.common import (
    BenchmarkFailed,
    Context,
    Measurement,
    Ratio,
    RunOutput,
    Section,
    timed_run,
    timed_to_first_test,
)
from ci_kit.dburl import render

TARGET_MS = 30.0
"""The issue's budget for an inert plugin, per pytest process."""
HEAVY = ("sqlalchemy", "psycopg", "alembic")
"""What an inert run must not import: a project without the kit must not pay for them."""

INERT_RUN = "run: kit installed, not enabled (wall)"
OFF_RUN = "run: -p no:ci_kit (wall)"
INERT_CPU = "cpu: kit installed, not enabled"
OFF_CPU = "cpu: -p no:ci_kit"
ENABLED_CPU = "cpu: kit enabled"
INERT_COST = "plugin import cost inert (ms)"
INERT_COST_CPU = "plugin import cost inert, CPU (ms)"
ENABLED_FIRST = "to first test: kit enabled (--ci-kit-url, server running)"
OFF_FIRST = "to first test: -p no:ci_kit"
ENABLED_COST = "plugin cost enabled, to first test (ms)"
ENABLED_COST_CPU = "plugin cost enabled, CPU (ms)"
IMPORT_ALONE = "import time ci_kit.plugin alone (ms)"
IMPORT_INERT = "import time inert pytest: ci_kit (ms)"
IMPORT_ENABLED = "import time enabled pytest: ci_kit + sqlalchemy + psycopg (ms)"

KIT_ENTRY_POINT = "ci_kit"
_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)$", re.MULTILINE)

_TEST = "def test_trivial():\n    assert True\n"

Figure = Literal["wall_ms", "cpu_ms", "first_test_ms"]


@dataclass(frozen=True)
class Timing:
    """One run, timed from outside: wall and CPU time, and how long until its test ran."""

    wall_ms: float
    cpu_ms: float
    first_test_ms: float


def run(ctx: Context) -> Section:
    section = Section("plugin-cost", "pytest plugin cost per process: inert vs enabled")
    project = _write_project(ctx.work / "plugin-cost")
    env = ctx.env()
    url = render(ctx.server_url.set(database="bench_plugin_test"))
    others = _other_plugins()
    pytest = ("-m", "pytest", "-q", *(arg for name in others for arg in ("-p", f"no:{name}")))
    variants = {
        "inert": pytest,
        "off": (*pytest, "-p", f"no:{KIT_ENTRY_POINT}"),
        "enabled": (*pytest, f"--ci-kit-url={url}"),
    }
    pairs, imports = ctx.pick(40, 100), ctx.pick(5, 10)
    section.notes.append(
        "throw-away project without [tool.ci-kit], one trivial test, `python -m pytest -q` "
        f"with every other installed plugin disabled ({', '.join(others)}); "
        f"{pairs} interleaved rounds of (inert, -p no:ci_kit, enabled), order rotated; "
        "costs are medians of per-round differences against -p no:ci_kit, in wall time "
        "unless marked CPU (the process's user + system time)"
    )
    for name, extra in variants.items():  # builds the template, fills the bytecode cache
        _timed(ctx, project, env, extra, enabled=name == "enabled")
    timings: dict[str, list[Timing]] = {name: [] for name in variants}
    names = list(variants)
    for repeat in range(pairs):
        ctx.log(f"plugin cost, round {repeat + 1}/{pairs}")
        shift = repeat % len(names)  # rotated, so no variant always runs first
        for name in names[shift:] + names[:shift]:
            timings[name].append(
                _timed(ctx, project, env, variants[name], enabled=name == "enabled")
            )
    inert, off, enabled = timings["inert"], timings["off"], timings["enabled"]
    section.measurements += [
        Measurement(INERT_RUN, "ms", [t.wall_ms for t in inert]),
        Measurement(OFF_RUN, "ms", [t.wall_ms for t in off]),
        Measurement(INERT_CPU, "ms", [t.cpu_ms for t in inert]),
        Measurement(OFF_CPU, "ms", [t.cpu_ms for t in off]),
        Measurement(ENABLED_CPU, "ms", [t.cpu_ms for t in enabled]),
        Measurement(ENABLED_FIRST, "ms", [t.first_test_ms for t in enabled]),
        Measurement(OFF_FIRST, "ms", [t.first_test_ms for t in off]),
        Measurement(INERT_COST, "ms", _differences(inert, off, "wall_ms"), _target()),
        Measurement(INERT_COST_CPU, "ms", _differences(inert, off, "cpu_ms"), _target()),
        Measurement(ENABLED_COST, "ms", _differences(enabled, off, "first_test_ms")),
        Measurement(ENABLED_COST_CPU, "ms", _differences(enabled, off, "cpu_ms")),
    ]
    section.measurements += _import_times(
        ctx, project, env, (variants["inert"], variants["enabled"]), imports
    )
    _conclude(section, imports)
    return section


def _target() -> dict[str, object]:
    """A measurement's own params (each gets its own: ``_conclude`` adds to one)."""
    return {"target_ms": TARGET_MS}


def _differences(runs: list[Timing], baseline: list[Timing], figure: Figure) -> list[float]:
    """Per round, ``figure`` of a kit run minus that of the baseline run taken beside it."""
    return [
        getattr(run, figure) - getattr(base, figure)
        for run, base in zip(runs, baseline, strict=True)
    ]


def _other_plugins() -> list[str]:
    """The entry-point names of every installed pytest plugin but the kit's."""
    installed = {entry.name for entry in entry_points(group="pytest11")}
    return sorted(installed - {KIT_ENTRY_POINT})


def _write_project(directory: Path) -> Path:
    """A project that does not use the kit: a pyproject for pytest's rootdir, one test."""
    tests = directory / "tests"
    tests.mkdir(parents=True, exist_ok=True)
    (directory / "pyproject.toml").write_text(
        '[project]\nname = "throwaway"\nversion = "0"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
    )
    (tests / "test_trivial.py").write_text(_TEST)
    return directory


def _timed(
    ctx: Context,
    project: Path,
    env: dict[str, str],
    pytest_args: tuple[str, ...],
    *,
    enabled: bool,
) -> Timing:
    """One ``python PYTEST_ARGS`` run: wall and CPU time, and the time to its test."""
    done, to_first_test = timed_to_first_test(
        [ctx.python, *pytest_args],
        cwd=project,
        env=env,
        marker=project.parent / "plugin-cost-first-test",
        expect_passed=1,
    )
    _check_kit(done, enabled=enabled)
    return Timing(done.seconds * 1000, done.cpu_seconds * 1000, to_first_test * 1000)


def _check_kit(done: RunOutput, *, enabled: bool) -> None:
    """Refuse a figure taken in the wrong state: an inert run the kit prepared, or the reverse.

    An inherited setting or a stray ``[tool.ci-kit]`` would otherwise turn the inert
    figure into the enabled one without a word.
    """
    spoke = "ci-kit:" in done.output  # the kit's lines; it prints none when off
    if spoke != enabled:
        tail = "\n".join(done.output.splitlines()[-10:])
        raise BenchmarkFailed(
            f"the kit should be {'on' if enabled else 'off'} but was "
            f"{'on' if spoke else 'off'}:\n{tail}"
        )


def _import_times(
    ctx: Context,
    project: Path,
    env: dict[str, str],
    pytest_args: tuple[tuple[str, ...], tuple[str, ...]],
    repeats: int,
) -> list[Measurement]:
    """Import times from ``-X importtime``: the plugin alone, and inside inert and enabled runs.

    pytest loads ``ci_kit.plugin`` through ``importlib``, which ``-X importtime`` does
    not report, so in a pytest process only what the plugin imports shows up (as
    top-level lines); the module's own body is in the 'alone' figure, a plain
    ``import ci_kit.plugin`` after ``import pytest`` in a bare interpreter.
    ``pytest_args`` are the inert run's and the enabled run's.
    """
    alone: list[float] = []
    inert: list[float] = []
    enabled: list[float] = []
    heavy_inert: set[str] = set()
    heavy_enabled: set[str] = set()
    for repeat in range(repeats):
        ctx.log(f"plugin cost, -X importtime {repeat + 1}/{repeats}")
        done = timed_run(
            [ctx.python, "-X", "importtime", "-c", "import pytest; import ci_kit.plugin"],
            cwd=project,
            env=env,
        )
        alone.append(top_level_ms(done.output))
        inert_args, enabled_args = pytest_args
        for args, samples, heavy in (
            (inert_args, inert, heavy_inert),
            (enabled_args, enabled, heavy_enabled),
        ):
            done = timed_run(
                [ctx.python, "-X", "importtime", *args],
                cwd=project,
                env=env,
                expect_passed=1,
            )
            samples.append(top_level_ms(done.output))
            heavy.update(heavy_modules(done.output))
    return [
        Measurement(IMPORT_ALONE, "ms", alone),
        Measurement(IMPORT_INERT, "ms", inert, {"heavy_modules": sorted(heavy_inert)}),
        Measurement(IMPORT_ENABLED, "ms", enabled, {"heavy_modules": sorted(heavy_enabled)}),
    ]


def top_level_ms(importtime: str) -> float:
    """Sum of the cumulative times of top-level ci_kit, SQLAlchemy, psycopg, alembic imports.

    Only top-level lines: a nested line's time is already in its parent's cumulative.
    """
    return (
        sum(
            int(cumulative)
            for cumulative, indent, name in _IMPORT_LINE.findall(importtime)
            if not indent and (_root(name) == "ci_kit" or _is_heavy(name))
        )
        / 1000
    )


def heavy_modules(importtime: str) -> list[str]:
    """The heavy packages (SQLAlchemy, psycopg, alembic) imported anywhere in the process."""
    return sorted(
        {_root(name) for _, _, name in _IMPORT_LINE.findall(importtime) if _is_heavy(name)}
    )


def _root(module: str) -> str:
    return module.split(".", 1)[0]


def _is_heavy(module: str) -> bool:
    root = _root(module)
    return any(root == heavy or root.startswith(f"{heavy}_") for heavy in HEAVY)


def _conclude(section: Section, imports: int) -> None:
    cost = section.get(INERT_COST)
    low, high = median_interval(cost.samples)
    cost.params["median_95_interval"] = [low, high]
    if high <= TARGET_MS:
        verdict = f"within the issue's target of {TARGET_MS:.0f} ms"
    elif low > TARGET_MS:
        verdict = f"over the issue's target of {TARGET_MS:.0f} ms"
    else:
        verdict = f"too noisy here to settle the issue's {TARGET_MS:.0f} ms: re-run quietly"
    heavy = section.get(IMPORT_INERT).params["heavy_modules"]
    section.notes += [
        f"inert: the installed kit adds {cost.median:.1f} ms to a pytest run (95% interval "
        f"of the median {low:.1f} to {high:.1f} ms: {verdict}); CPU: "
        f"{section.get(INERT_COST_CPU).median:.1f} ms; its imports: "
        f"{section.get(IMPORT_INERT).median:.1f} ms (-X importtime)",
        f"enabled: the kit adds {section.get(ENABLED_COST).median:.0f} ms before the first "
        f"test ({section.get(ENABLED_COST_CPU).median:.0f} ms of CPU over the run); a serial "
        "process, so besides its imports and its clone this holds the controller's "
        "connection, sweep and template check, which an xdist worker skips",
        f"heavy modules in the inert run's -X importtime: {', '.join(heavy) or 'none'}",
        f"import times: {imports} runs of -X importtime each; pytest loads ci_kit.plugin "
        "through importlib, which -X importtime does not report, so the pytest sums hold what "
        "the plugin imports, not its own body (that is in 'ci_kit.plugin alone', which also "
        "counts tomllib, loaded by pytest itself in a run)",
        "bytecode is written to and read from a private cache, warmed first, as an installed "
        "environment has its .pyc files",
    ]
    section.ratios += [
        _paired_ratio(
            section,
            "inert: kit installed / -p no:ci_kit (whole run)",
            INERT_COST,
            OFF_RUN,
            "a pytest run with the kit installed but off, against without it (1.00 is free)",
        ),
        _paired_ratio(
            section,
            "inert: kit installed / -p no:ci_kit (CPU)",
            INERT_COST_CPU,
            OFF_CPU,
            "the same in CPU time",
        ),
        _paired_ratio(
            section,
            "enabled: kit / -p no:ci_kit (to first test)",
            ENABLED_COST,
            OFF_FIRST,
            "start-up to the first test with the kit on a running server, against without it",
        ),
    ]


def median_interval(samples: list[float]) -> tuple[float, float]:
    """A distribution-free 95 % confidence interval of the median: two order statistics.

    The number of samples below the median is binomial(n, 1/2); the interval runs from
    the k-th smallest to the k-th largest, k about (n - 1.96 sqrt(n)) / 2. With few
    samples it widens to the whole range.
    """
    ordered = sorted(samples)
    k = max(0, math.floor((len(ordered) - 1.96 * math.sqrt(len(ordered))) / 2))
    return ordered[k], ordered[len(ordered) - 1 - k]


def _paired_ratio(section: Section, name: str, cost: str, baseline: str, meaning: str) -> Ratio:
    """``(baseline + cost) / baseline``, with the cost taken from the paired differences.

    The ratio of the two variants' own medians would compare runs from different
    rounds, whose drift can be larger than the cost itself.
    """
    base = section.get(baseline).median
    return Ratio(name, (base + section.get(cost).median) / base, meaning)
