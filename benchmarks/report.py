"""The report: a Markdown table (printed and written), the raw JSON, and a chart.

Works from the JSON alone, so a saved ``results.json`` can be re-rendered without
measuring again (``python -m benchmarks.report docs/benchmarks``).
"""

from __future__ import annotations

import json
import sys
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
        f"commit {machine['commit']}; load average before/after "
        f"{machine['load_average'][0]:.2f}/{machine.get('load_average_after', [0])[0]:.2f}.",
        "",
        "Medians of repeated runs; spread is min-max. A paired ratio is the median of the "
        "ratios of runs taken in the same round. Before each section the runner waits for a "
        "quiet machine (bounded); a section measured on a busy one is marked (under load), "
        "and its notes give the load, date and commit it was measured at.",
        "",
        "## Headlines",
        "",
        "| measurement | ratio | value |",
        "| --- | --- | ---: |",
    ]
    lines += [
        f"| {section['title']}{_loaded(section)} | {r['name']} | {r['value']:.2f}x |"
        for section, r in headlines(results)
    ]
    for section in results["sections"]:
        lines += ["", f"## {section['title']}{_loaded(section)}", ""]
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
            lines += ["", "| ratio | value | rounds | meaning |", "| --- | ---: | --- | --- |"]
            lines += [
                f"| {r['name']} | {r['value']:.2f}x | {_rounds(r)} | {r['meaning']} |"
                for r in section["ratios"]
            ]
        for table in section.get("tables", []):
            lines += ["", f"**{table['title']}**", ""]
            lines += ["| " + " | ".join(table["columns"]) + " |"]
            lines += ["| " + " | ".join(["---"] * len(table["columns"])) + " |"]
            lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in table["rows"]]
    return "\n".join(lines) + "\n"


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
    """One panel per section: bars with min-max whiskers, lines for the growth curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = [s for s in results["sections"] if s["measurements"]]
    panels = [(s, False) for s in sections]
    panels[1:1] = [(s, True) for s in sections if s.get("details", {}).get("breakdowns")]
    columns = 2
    rows = max(1, (len(panels) + columns - 1) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(13, 3.6 * rows), squeeze=False)
    for axis, (section, breakdowns) in zip(axes.flat, panels, strict=False):
        if breakdowns:
            _where_time_goes(axis, section["details"]["breakdowns"])
            axis.set_title("Where the time goes: s of wall time (sample suite)", fontsize=10)
            continue
        if section["key"] == "preparation":
            _growth(axis, section, "revisions", ("clone", "migrate"))
        elif section["key"] == "scaling":
            _scaling(axis, section)
        elif section["key"] == "plugin-cost":  # the costs, not the ~1 s runs they come from
            _bars(axis, section, skip=("run:", "cpu:", "to first test:"))
        else:
            _bars(axis, section)
        axis.set_title(section["title"], fontsize=10)
    for axis in list(axes.flat)[len(panels) :]:
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
    shown = [m for m in shown if m["unit"] == shown[0]["unit"]]  # one axis, one unit
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


def _where_time_goes(axis: Any, breakdowns: dict[str, dict[str, Any]]) -> None:
    """One stacked bar per run: the top-level rows of its breakdown, which add up to its wall."""
    names = list(breakdowns)
    parts: list[str] = []
    for breakdown in breakdowns.values():  # each part after the one it follows in its run
        order = [row["name"] for row in _wall_rows(breakdown)]
        for position, name in enumerate(order):
            if name not in parts:
                parts.insert(parts.index(order[position - 1]) + 1 if position else 0, name)
    colours = _colours(len(parts))
    left = [0.0] * len(names)
    for part, colour in zip(parts, colours, strict=True):
        widths = [
            next((r["seconds"] for r in _wall_rows(b) if r["name"] == part), 0.0)
            for b in breakdowns.values()
        ]
        axis.barh([_wrap(n) for n in names], widths, left=left, label=part, color=colour)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    axis.invert_yaxis()
    axis.tick_params(axis="y", labelsize=8)
    axis.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))


def _wall_rows(breakdown: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in breakdown["rows"] if r["section"] == "wall" and r["level"] == 0]


def _colours(count: int) -> list[Any]:
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    return [palette(index % 10) for index in range(count)]


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
