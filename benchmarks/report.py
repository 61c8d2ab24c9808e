"""The report: a Markdown table (printed and written), the raw JSON, and a chart.

Works from the JSON alone, so a saved ``results.json`` can be re-rendered without
measuring again (``python -m benchmarks.report docs/benchmarks``).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

HEADLINES: dict[str, tuple[str, ...]] = {
    "sample-suite": (
        "seed's way / kit (-n 2)",
        "seed's way / kit (serial)",
        "parallel efficiency at -n 2",
    ),
    "preparation": ("migrate / clone @ 200 revisions",),
    "isolation": ("fresh / rollback",),
    "warm": ("cold / warm (whole run)",),
    "pytest-postgresql": ("pytest-postgresql (tuned) / kit",),
    "scaling": ("speed-up at 600 tests, 2 workers",),
    "plugin-cost": ("inert: kit installed / -p no:ci_kit (whole run)",),
    "cpu-suite": ("-n 2 / serial",),
}
"""The ratios each section is quoted by; none found falls back to the section's first."""


def write(directory: Path, results: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (directory / "results.md").write_text(markdown(results))
    chart(results, directory / "chart.png")


def headlines(results: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The ratios each section is quoted by: (section, ratio), in the sections' order."""
    chosen = []
    for section in results["sections"]:
        ratios = section["ratios"]
        wanted = HEADLINES.get(section["key"], ())
        matches = [r for name in wanted for r in ratios if r["name"].startswith(name)]
        chosen += [(section, r) for r in matches or ratios[:1]]
    return chosen


def named_ratios(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The headline ratios by name, each with its section and the machine's state then."""
    return {
        ratio["name"]: {
            "value": ratio["value"],
            "section": section["key"],
            "quiet": section.get("load", {}).get("quiet"),
        }
        for section, ratio in headlines(results)
    }


def merged(
    directory: Path, measured: list[dict[str, Any]], order: list[str]
) -> list[dict[str, Any]]:
    """``measured`` sections, with the others kept from the results already written there."""
    previous = directory / "results.json"
    kept = json.loads(previous.read_text())["sections"] if previous.is_file() else []
    by_key = {section["key"]: section for section in kept}
    by_key.update((section["key"], section) for section in measured)
    return sorted(by_key.values(), key=lambda s: order.index(s["key"]) if s["key"] in order else 99)


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# ci-kit benchmarks",
        "",
        f"{results['mode']} run, {results['date']}, {results['seconds']:.0f} s; "
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory']}, "
        f"{machine['platform']}, Python {machine['python']}, PostgreSQL {machine['postgresql']}, "
        f"hyperfine {machine.get('hyperfine', '?')}, commit {machine['commit']}; load average "
        f"before/after {machine['load_average'][0]:.2f}/"
        f"{machine.get('load_average_after', [0])[0]:.2f}.",
        "",
        "Every command timed by hyperfine, in rounds that run each variant once. Medians of "
        "the rounds; spread is min-max. A paired ratio is the median of the ratios of runs "
        "taken in the same round. Before each section the runner waits for a quiet machine "
        "(bounded); a section measured on a busy one is marked (under load), and its notes "
        "give the load, date and commit it was measured at.",
        "",
        "## Headlines",
        *_table(
            ["measurement", "ratio", "value"],
            [
                [s["title"] + _loaded(s), r["name"], f"{r['value']:.2f}x"]
                for s, r in headlines(results)
            ],
        ),
    ]
    for section in results["sections"]:
        lines += ["", f"## {section['title']}{_loaded(section)}", ""]
        lines += [f"- {note}" for note in section["notes"]]
        lines += _table(
            ["variant", "median", "min - max", "runs"], list(map(_spread, section["measurements"]))
        )
        lines += _table(
            ["ratio", "value", "rounds", "meaning"],
            [
                [r["name"], f"{r['value']:.2f}x", _rounds(r), r["meaning"]]
                for r in section["ratios"]
            ],
        )
        for table in section.get("tables", []):
            lines += ["", f"**{table['title']}**", *_table(table["columns"], table["rows"])]
    return "\n".join(lines) + "\n"


def _spread(m: dict[str, Any]) -> list[Any]:
    low, high = _num(m["min"]), _num(m["max"])
    return [m["variant"], f"{_num(m['median'])} {m['unit']}", f"{low} - {high}", len(m["samples"])]


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table after a blank line; nothing without rows."""
    if not rows:
        return []
    cells = [" | ".join(map(_cell, row)) for row in rows]
    rule = " | ".join("---" for _ in columns)
    return ["", f"| {' | '.join(columns)} |", f"| {rule} |", *(f"| {cell} |" for cell in cells)]


def _loaded(section: dict[str, Any]) -> str:
    """A figure taken on a busy machine says so wherever it is quoted."""
    return " (under load)" if section.get("load", {}).get("quiet") is False else ""


def _rounds(ratio: dict[str, Any]) -> str:
    return " / ".join(f"{value:.2f}" for value in ratio.get("rounds", [])) or "medians"


def _cell(value: Any) -> str:
    return _num(value) if isinstance(value, float) else str(value)


def _num(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def chart(results: dict[str, Any], path: Path) -> None:
    """One panel per section, bars with min-max whiskers; the breakdowns as stacked bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = [s for s in results["sections"] if s["measurements"]]
    breakdowns = [s["details"]["breakdowns"] for s in sections if "breakdowns" in s["details"]]
    rows = max(1, (len(sections) + len(breakdowns) + 1) // 2)
    figure, axes = plt.subplots(rows, 2, figsize=(13, 3.6 * rows), squeeze=False)
    panels = iter(axes.flat)
    for breakdown in breakdowns:
        axis = next(panels)
        _where_time_goes(axis, breakdown)
        axis.set_title("Where the time goes: s of wall time (sample suite)", fontsize=10)
    for section in sections:
        axis = next(panels)
        _bars(axis, section)
        axis.set_title(section["title"], fontsize=10)
    for axis in panels:
        axis.set_visible(False)
    machine = results["machine"]
    figure.suptitle(
        f"ci-kit benchmarks ({results['mode']}), {results['date'][:10]}: {machine['cores']} cores, "
        f"PostgreSQL {machine['postgresql']}",
        fontsize=12,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(axis: Any, section: dict[str, Any]) -> None:
    """The section's whole measurements; a name with ``: `` is a part, left to the tables."""
    shown = [m for m in section["measurements"] if ": " not in m["variant"]]
    shown = [m for m in shown if m["unit"] == shown[0]["unit"]]  # one axis, one unit
    medians = [m["median"] for m in shown]
    whiskers = [[m["median"] - m["min"] for m in shown], [m["max"] - m["median"] for m in shown]]
    axis.barh([_wrap(m["variant"]) for m in shown], medians, xerr=whiskers, capsize=3)
    axis.invert_yaxis()
    axis.set_xlabel(shown[0]["unit"] if shown else "")
    if shown and min(medians) > 0 and max(medians) > 50 * min(medians):
        axis.set_xscale("log")
    axis.tick_params(axis="y", labelsize=8)
    for y, m in enumerate(shown):  # right of the whisker, so the two never overlap
        axis.text(m["max"], y, f"  {_num(m['median'])}", va="center", fontsize=8)
    axis.margins(x=0.12)


def _where_time_goes(axis: Any, breakdowns: dict[str, dict[str, Any]]) -> None:
    """One stacked bar per run: the top-level rows of its breakdown, which add up to its wall."""
    names = list(breakdowns)
    parts: list[str] = []
    for breakdown in breakdowns.values():  # each part after the one it follows in its run
        order = [row["name"] for row in _wall_rows(breakdown)]
        for position, name in enumerate(order):
            if name not in parts:
                parts.insert(parts.index(order[position - 1]) + 1 if position else 0, name)
    left = [0.0] * len(names)
    for index, part in enumerate(parts):
        widths = [
            next((r["seconds"] for r in _wall_rows(b) if r["name"] == part), 0.0)
            for b in breakdowns.values()
        ]
        axis.barh([_wrap(n) for n in names], widths, left=left, label=part, color=f"C{index % 10}")
        left = [a + b for a, b in zip(left, widths, strict=True)]
    axis.invert_yaxis()
    axis.tick_params(axis="y", labelsize=8)
    axis.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))


def _wall_rows(breakdown: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in breakdown["rows"] if r["section"] == "wall" and r["level"] == 0]


def _wrap(text: str) -> str:
    return textwrap.fill(text, 34)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmarks")
    write(target, json.loads((target / "results.json").read_text()))
