"""The report: a Markdown table (printed and written), the raw JSON, and a chart.

Works from the JSON alone, so a saved ``results.json`` can be re-rendered without
measuring again (``python -m benchmarks.report docs/benchmarks``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HEADLINES = {
    "sample-suite": "serial / -n 2",
    "inspired": "inspired / kit",
    "preparation": "migrate / clone @ 200 revisions",
    "isolation": "fresh / rollback",
    "warm": "cold / warm (whole run)",
    "pytest-postgresql": "pytest-postgresql (tuned) / kit",
    "scaling": "speed-up at 600 tests, 2 workers",
    "plugin-cost": "inert: kit installed / -p no:ci_kit (whole run)",
}
"""The ratio each section is quoted by; a missing one falls back to the section's first."""


def write(directory: Path, results: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (directory / "results.md").write_text(markdown(results))
    chart(results, directory / "chart.png")


def headlines(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """One ratio per section: (section title, ratio)."""
    chosen = []
    for section in results["sections"]:
        ratios = section["ratios"]
        if not ratios:
            continue
        wanted = HEADLINES.get(section["key"], "")
        match = next((r for r in ratios if r["name"].startswith(wanted)), ratios[0])
        chosen.append((section["title"], match))
    return chosen


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# ci-kit benchmarks",
        "",
        f"{results['mode']} run, {results['date']}, {results['seconds']:.0f} s; "
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory']}, "
        f"{machine['platform']}, Python {machine['python']}, PostgreSQL {machine['postgresql']}, "
        f"commit {machine['commit']}; load average before/after "
        f"{machine['load_average'][0]:.2f}/{machine.get('load_average_after', [0])[0]:.2f}.",
        "",
        "Medians of repeated runs, all taken in this one run; spread is min-max.",
        "",
        *_load_warning(machine),
        "## Headlines",
        "",
        "| measurement | ratio | value |",
        "| --- | --- | ---: |",
    ]
    lines += [f"| {title} | {r['name']} | {r['value']:.2f}x |" for title, r in headlines(results)]
    for section in results["sections"]:
        lines += ["", f"## {section['title']}", ""]
        lines += [f"- {note}" for note in section["notes"]]
        if section["measurements"]:
            lines += ["", "| variant | median | min - max | runs |", "| --- | ---: | ---: | ---: |"]
            for m in section["measurements"]:
                unit = m["unit"]
                lines.append(
                    f"| {m['variant']} | {_num(m['median'])} {unit} | "
                    f"{_num(m['min'])} - {_num(m['max'])} | {len(m['samples'])} |"
                )
        if section["ratios"]:
            lines += ["", "| ratio | value | meaning |", "| --- | ---: | --- |"]
            lines += [
                f"| {r['name']} | {r['value']:.2f}x | {r['meaning']} |" for r in section["ratios"]
            ]
    return "\n".join(lines) + "\n"


def _load_warning(machine: dict[str, Any]) -> list[str]:
    """Other work on the machine starves parallel runs first: say so next to the figures.

    Only the load before the run counts: the benchmarks' own parallel runs load
    every core, so the load after them says nothing about other work.
    """
    load = machine["load_average"][0]
    if load <= machine["cores"] / 2:
        return []
    return [
        f"**The machine was busy before the run (load average {load:.2f} on "
        f"{machine['cores']} cores): parallel runs compete for the cores first, so the "
        "parallel figures understate the speed-up. Re-run on a quiet machine before "
        "quoting them.**",
        "",
    ]


def _num(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def chart(results: dict[str, Any], path: Path) -> None:
    """One panel per section: bars with min-max whiskers, lines for the growth curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = [s for s in results["sections"] if s["measurements"]]
    columns = 2
    rows = max(1, (len(sections) + columns - 1) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(13, 3.6 * rows), squeeze=False)
    for axis, section in zip(axes.flat, sections, strict=False):
        if section["key"] == "preparation":
            _growth(axis, section, "revisions", ("clone", "migrate"))
        elif section["key"] == "scaling":
            _scaling(axis, section)
        elif section["key"] == "plugin-cost":  # the costs, not the ~1 s runs they come from
            _bars(axis, section, skip=("run:", "cpu:", "to first test:"))
        else:
            _bars(axis, section)
        axis.set_title(section["title"], fontsize=10)
    for axis in list(axes.flat)[len(sections) :]:
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


def _bars(
    axis: Any, section: dict[str, Any], skip: tuple[str, ...] = ("prepare:", "to first test:")
) -> None:
    """Bars of the section's measurements but ``skip``'s: parts of a run, shown in its table."""
    shown = [m for m in section["measurements"] if not m["variant"].startswith(skip)]
    labels = [_wrap(m["variant"]) for m in shown]
    medians = [m["median"] for m in shown]
    whiskers = [
        [m["median"] - m["min"] for m in shown],
        [m["max"] - m["median"] for m in shown],
    ]
    axis.barh(labels, medians, xerr=whiskers, color="#4c72b0", capsize=3)
    axis.invert_yaxis()
    axis.set_xlabel(shown[0]["unit"] if shown else "")
    axis.tick_params(axis="y", labelsize=8)
    for y, m in enumerate(shown):  # right of the whisker, so the two never overlap
        axis.text(m["max"], y, f"  {_num(m['median'])}", va="center", fontsize=8)
    axis.margins(x=0.12)


def _growth(axis: Any, section: dict[str, Any], key: str, kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        points = sorted(
            (m["params"][key], m["median"])
            for m in section["measurements"]
            if m["variant"].startswith(f"{kind} @")
        )
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=kind)
    axis.set_xlabel(key)
    axis.set_ylabel("ms per worker database")
    axis.set_yscale("log")
    axis.legend(fontsize=8)


def _scaling(axis: Any, section: dict[str, Any]) -> None:
    workers = sorted({m["params"]["workers"] for m in section["measurements"]})
    for count in workers:
        points = sorted(
            (m["params"]["tests"], m["median"])
            for m in section["measurements"]
            if m["params"]["workers"] == count
        )
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{count}w")
    axis.set_xlabel("tests")
    axis.set_ylabel("s (whole run)")
    axis.legend(fontsize=8)


def _wrap(text: str, width: int = 34) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmarks")
    write(target, json.loads((target / "results.json").read_text()))
