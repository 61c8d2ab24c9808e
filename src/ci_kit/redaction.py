"""Failed test reports with the server's secrets taken out, whatever put them there.

A failing test's traceback shows the arguments of every frame, and with ``-l``
their locals: a driver's frame holds the connection string, password and all, and
an application's frames hold its settings. Rather than chase each way a secret can
reach a report, the plugin passes every failed report of a process with a kit plan
through here (its traceback, its captured output and logs) before any reporter,
junitxml or xdist's controller sees it. Passed reports are left alone: it costs
nothing on a green run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import redact


def redact_report(report: pytest.TestReport | pytest.CollectReport, url: URL) -> None:
    """Mask ``url``'s secrets everywhere in ``report``, in place."""
    seen: set[int] = set()
    report.longrepr = _redacted(report.longrepr, url, seen)
    report.sections = [(title, redact(content, url)) for title, content in report.sections]


def _redacted(value: Any, url: URL, seen: set[int]) -> Any:
    """``value`` with every string in it redacted: pytest's reprs are dataclasses of strings.

    Each object is visited once: an exception chain shares its last traceback with
    the report's ``reprtraceback``.
    """
    if isinstance(value, str):
        return redact(value, url)
    if isinstance(value, tuple | list):
        return type(value)(_redacted(item, url, seen) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and id(value) not in seen:
        seen.add(id(value))
        for field in dataclasses.fields(value):
            setattr(value, field.name, _redacted(getattr(value, field.name), url, seen))
    return value
