"""deploy.status's table: aligned columns, short commits, shortened long values, '-' for nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ci.deploy.status import StatusRow, render_status

LIVE = "0123456789abcdef0123456789abcdef01234567"
PREVIOUS = "fedcba9876543210fedcba9876543210fedcba98"


def columns(table: str) -> list[list[str]]:
    """Each line cut at the header's column starts (the header's words hold no spaces)."""
    lines = table.splitlines()
    header = lines[0]
    starts = [
        i for i, char in enumerate(header) if char != " " and (i == 0 or header[i - 1] == " ")
    ]
    bounds = [*starts[1:], None]
    return [[line[a:b].strip() for a, b in zip(starts, bounds, strict=True)] for line in lines]


def staging(**changes: object) -> StatusRow:
    values: dict[str, object] = {
        "environment": "staging",
        "target": "local",
        "base_url": "http://127.0.0.1:8801",
        "live_commit": LIVE,
        "deployed_at": "2026-11-25T10:00:00Z",
        "health": f"healthy on {LIVE}",
        "previous_commit": PREVIOUS,
        "state_location": "/var/lib/ci-kit/backend_sample/deploy/staging",
    }
    values.update(changes)
    return StatusRow(**values)  # type: ignore[arg-type]


def test_a_deployed_environment_reads_as_one_aligned_line() -> None:
    table = render_status([staging()])
    assert table.splitlines() == [
        "ENVIRONMENT  TARGET  URL                    LIVE          DEPLOYED              "
        "HEALTH                   PREVIOUS      STATE",
        "staging      local   http://127.0.0.1:8801  0123456789ab  2026-11-25 10:00:00Z  "
        "healthy on 0123456789ab  fedcba987654  /var/lib/ci-kit/backend_sample/deploy/staging",
    ]


def test_an_environment_never_deployed_says_so_and_dashes_the_rest() -> None:
    row = StatusRow("production", "ssh", "https://app.example.com")
    assert columns(render_status([staging(), row]))[2] == [
        "production", "ssh", "https://app.example.com", "nothing deployed", "-", "-", "-", "-",
    ]  # fmt: skip


def test_empty_text_counts_as_nothing() -> None:
    row = staging(live_commit="", deployed_at="", health="", previous_commit="", state_location="")
    assert columns(render_status([row]))[1][3:] == ["nothing deployed", "-", "-", "-", "-"]


def test_columns_line_up_whatever_the_lengths() -> None:
    rows = [staging(), staging(environment="pre-production-eu-west", target="command")]
    lines = render_status(rows).splitlines()
    header = lines[0]
    for title in ("TARGET", "URL", "LIVE", "DEPLOYED", "HEALTH", "PREVIOUS", "STATE"):
        at = header.index(title)
        for line in lines[1:]:
            assert line[at - 2 : at] == "  ", (title, line)
            assert line[at] != " ", (title, line)
    assert all(line == line.rstrip() for line in lines)


def test_commits_are_shortened_to_12_characters_wherever_they_appear() -> None:
    row = staging(health=f"on {PREVIOUS}, not {LIVE}")
    cells = columns(render_status([row]))[1]
    assert cells[3] == LIVE[:12]
    assert cells[5] == f"on {PREVIOUS[:12]}, not {LIVE[:12]}"
    assert cells[6] == PREVIOUS[:12]
    assert LIVE not in render_status([row])


def test_a_long_url_keeps_its_scheme_and_its_end() -> None:
    url = "https://finance-report.production.eu-west-1.internal.example.com:8443/app"
    cell = columns(render_status([staging(base_url=url)]))[1][2]
    assert len(cell) == 40
    assert cell.startswith("https://finance-rep")
    assert cell.endswith(":8443/app")
    assert "..." in cell


def test_a_long_state_location_keeps_its_last_directories() -> None:
    path = Path("/home/runner/.local/state/ci-kit/backend_sample/environments/deploy/staging")
    cell = columns(render_status([staging(state_location=path)]))[1][7]
    assert len(cell) <= 48
    assert cell.startswith(".../")
    assert cell.endswith("/backend_sample/environments/deploy/staging")


def test_a_long_health_answer_is_cut_at_its_end_on_one_line() -> None:
    answer = "connection refused:\n  [Errno 111] nothing listens on 127.0.0.1:8801 after 60 s"
    cell = columns(render_status([staging(health=answer)]))[1][5]
    assert len(cell) == 40
    assert cell.startswith("connection refused: [Errno 111]")
    assert cell.endswith("...")


@pytest.mark.parametrize(
    ("deployed_at", "shown"),
    [
        (
            datetime(2026, 11, 25, 11, 0, 5, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-25 10:00:05Z",
        ),
        (datetime(2026, 11, 25, 10, 0, 5, 123456, tzinfo=UTC), "2026-11-25 10:00:05Z"),
        ("2026-11-25T10:00:05.123+00:00", "2026-11-25 10:00:05Z"),
        ("yesterday, roughly", "yesterday, roughly"),
        (None, "-"),
    ],
)
def test_the_deploy_time_is_shown_in_utc_to_the_second(
    deployed_at: datetime | str | None, shown: str
) -> None:
    assert columns(render_status([staging(deployed_at=deployed_at)]))[1][4] == shown


def test_no_environments_is_a_sentence_not_an_empty_table() -> None:
    assert render_status([]) == "no environments configured"
