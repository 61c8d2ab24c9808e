"""What ``deploy.status`` prints: one aligned plain-text table of environments. Pure, no I/O.

The task gathers a :class:`StatusRow` per environment (its history, its ``/healthz``
answer, where its state lives) and prints :func:`render_status` of them. Commits
show as their first 12 characters, wherever they appear; a value too long for its
column is cut where it says least (a URL in its middle, a path at its start, a
health answer at its end); nothing known reads ``-``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath

SHORT_COMMIT = 12
ELLIPSIS = "..."
NOTHING = "-"
NOTHING_DEPLOYED = "nothing deployed"

# A full commit (40 hex digits, 64 for SHA-256 repositories or image digests).
_SHA = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{28,}\b")


@dataclass(frozen=True)
class StatusRow:
    """One environment as ``deploy.status`` reports it; ``None`` where nothing is known."""

    environment: str
    target: str
    base_url: str
    live_commit: str | None = None
    deployed_at: datetime | str | None = None
    health: str | None = None
    previous_commit: str | None = None
    state_location: str | PurePath | None = None


def _cut_end(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - len(ELLIPSIS)] + ELLIPSIS


def _cut_start(text: str, width: int) -> str:
    """A path's end, from a whole directory name on when one starts in what is kept."""
    if len(text) <= width:
        return text
    kept = text[len(text) - width + len(ELLIPSIS) :]
    slash = kept.find("/", 1)
    return ELLIPSIS + (kept[slash:] if slash > 0 else kept)


def _cut_middle(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    kept = width - len(ELLIPSIS)
    head = (kept + 1) // 2
    return text[:head] + ELLIPSIS + text[len(text) - (kept - head) :]


@dataclass(frozen=True)
class _Column:
    title: str
    width: int
    cut: Callable[[str, int], str]
    value: Callable[[StatusRow], str]


def _text(value: object) -> str:
    """A value as one line with commits shortened; ``-`` for nothing."""
    if value is None or value == "":
        return NOTHING
    return _SHA.sub(r"\1", " ".join(str(value).split()))


def _commit(value: str | None) -> str:
    return value[:SHORT_COMMIT] if value else NOTHING


def _live(row: StatusRow) -> str:
    return _commit(row.live_commit) if row.live_commit else NOTHING_DEPLOYED


def _moment(value: datetime | str | None) -> str:
    """A time in UTC to the second, ``2026-11-25 10:00:00Z``; other text as it is."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return _text(value)
    if value is None:
        return NOTHING
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%SZ")


_COLUMNS = (
    _Column("ENVIRONMENT", 20, _cut_end, lambda row: _text(row.environment)),
    _Column("TARGET", 10, _cut_end, lambda row: _text(row.target)),
    _Column("URL", 40, _cut_middle, lambda row: _text(row.base_url)),
    _Column("LIVE", len(NOTHING_DEPLOYED), _cut_end, _live),
    _Column("DEPLOYED", 20, _cut_end, lambda row: _moment(row.deployed_at)),
    _Column("HEALTH", 40, _cut_end, lambda row: _text(row.health)),
    _Column("PREVIOUS", SHORT_COMMIT, _cut_end, lambda row: _commit(row.previous_commit)),
    _Column("STATE", 48, _cut_start, lambda row: _text(row.state_location)),
)


def render_status(rows: Iterable[StatusRow]) -> str:
    """The rows as an aligned table under a header line, one environment a line.

    Columns are two spaces apart and as wide as their longest cell, up to a cap
    per column; lines carry no trailing spaces. No rows: a sentence saying so.
    """
    cells = [[column.title for column in _COLUMNS]]
    for row in rows:
        cells.append([column.cut(column.value(row), column.width) for column in _COLUMNS])
    if len(cells) == 1:
        return "no environments configured"
    widths = [max(len(line[index]) for line in cells) for index in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )
