"""The benchmarks' bookkeeping: paired ratios, the quiet-machine gate, the published report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import quiet, report
from benchmarks.common import Measurement, Section, Table


def sample_section(*, quiet_before: bool = True) -> dict[str, Any]:
    section = Section("sample-suite", "Sample suite")
    section.measurements += [
        Measurement("kit, serial", "s", [40.0, 44.0, 42.0]),
        Measurement("kit, -n 2", "s", [25.0, 30.0, 28.0]),
        Measurement("seed's way, serial", "s", [200.0, 176.0, 210.0]),
        Measurement("seed's way, -n 2", "s", [150.0, 150.0, 140.0]),
    ]
    section.paired_ratio("seed's way / kit (serial)", "seed's way, serial", "kit, serial", "x")
    section.paired_ratio("seed's way / kit (-n 2)", "seed's way, -n 2", "kit, -n 2", "x")
    section.paired_ratio("parallel efficiency at -n 2", "kit, serial", "kit, -n 2", "x")
    section.tables.append(Table("Where the time goes", ["part", "seconds"], [["tests", 12.5]]))
    section.load = {"busy_cores": 0.05 if quiet_before else 1.4, "quiet": quiet_before}
    return section.to_json()


def results(*sections: dict[str, Any]) -> dict[str, Any]:
    machine = {
        "cores": 2,
        "cpu": "test CPU",
        "memory": "1 GiB",
        "platform": "Linux",
        "python": "3.11",
        "postgresql": "15",
        "commit": "abc1234",
        "load_average": [0.1, 0.1, 0.1],
    }
    found = {"mode": "quick", "date": "2026-11-26", "seconds": 1.0, "machine": machine}
    found["sections"] = list(sections)
    return found


def test_a_paired_ratio_is_the_median_of_the_rounds_ratios() -> None:
    section = sample_section()
    ratios = {ratio["name"]: ratio for ratio in section["ratios"]}
    serial = ratios["seed's way / kit (serial)"]
    assert serial["rounds"] == [5.0, 4.0, 5.0]
    assert serial["value"] == 5.0  # the ratio of the medians would say 200 / 42 = 4.76


def test_a_paired_ratio_needs_one_sample_per_round_on_both_sides() -> None:
    section = Section("s", "s")
    section.measurements += [Measurement("a", "s", [1.0, 2.0]), Measurement("b", "s", [1.0])]
    with pytest.raises(ValueError, match="shorter"):
        section.paired_ratio("a / b", "a", "b", "")


def test_the_headlines_lead_with_the_sample_suites_named_ratios() -> None:
    named = report.named_ratios(results(sample_section()))
    assert list(named) == [
        "seed's way / kit (-n 2)",
        "seed's way / kit (serial)",
        "parallel efficiency at -n 2",
    ]
    assert named["seed's way / kit (serial)"] == {
        "value": 5.0,
        "section": "sample-suite",
        "quiet": True,
    }


def test_a_figure_taken_under_load_says_so_wherever_it_is_quoted() -> None:
    loaded = results(sample_section(quiet_before=False))
    markdown = report.markdown(loaded)
    assert "| Sample suite (under load) | seed's way / kit (-n 2) |" in markdown
    assert "## Sample suite (under load)" in markdown
    assert report.named_ratios(loaded)["seed's way / kit (-n 2)"]["quiet"] is False
    assert "Sample suite (under load)" not in report.markdown(results(sample_section()))


def test_the_report_shows_rounds_and_tables() -> None:
    markdown = report.markdown(results(sample_section()))
    assert "| seed's way / kit (serial) | 5.00x | 5.00 / 4.00 / 5.00 |" in markdown
    assert "**Where the time goes**" in markdown
    assert "| tests | 12.5 |" in markdown


def test_keeping_others_replaces_only_what_was_measured_again(tmp_path: Path) -> None:
    old_sample = sample_section()
    other = Section("isolation", "Isolation", notes=["measured yesterday"]).to_json()
    (tmp_path / "results.json").write_text(json.dumps(results(other, old_sample)))
    new_sample = sample_section(quiet_before=False)
    merged = report.merged(tmp_path, [new_sample], order=["sample-suite", "isolation"])
    assert merged == [new_sample, other]


def test_keeping_others_without_earlier_results_keeps_what_was_measured(tmp_path: Path) -> None:
    measured = [sample_section()]
    assert report.merged(tmp_path, measured, order=["sample-suite"]) == measured


@pytest.mark.parametrize(("busy", "is_quiet"), [(0.0, True), (0.29, True), (0.3, False)])
def test_quiet_is_less_than_a_third_of_a_core_busy(busy: float, is_quiet: bool) -> None:
    load = quiet.Load(busy, load_average=2.0, waited=0.0)
    assert load.quiet is is_quiet
    assert load.to_json()["quiet"] is is_quiet
    assert ("UNDER LOAD" in load.describe()) is not is_quiet


def test_the_gate_waits_for_quiet_and_gives_up_at_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks = iter([1.5, 0.9, 0.1])
    monkeypatch.setattr(quiet, "busy_cores", lambda: next(looks))
    said: list[str] = []
    load = quiet.wait_for_quiet(bound=600, log=said.append)
    assert load.quiet
    assert len(said) == 2

    monkeypatch.setattr(quiet, "busy_cores", lambda: 1.5)
    load = quiet.wait_for_quiet(bound=0, log=said.append)
    assert not load.quiet
    assert "measuring under load" in said[-1]


def test_busy_cores_sees_a_busy_loop() -> None:
    """One real look: a process spinning for the whole window is at least half a core."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert quiet.busy_cores(window=1.0) >= 0.5
    finally:
        spinner.kill()
        spinner.wait()
