"""``-p benchmarks.first_test``: note when the first test starts, to time a run's start-up.

The kit no longer prints a preparation time of its own (``python -m ci_kit pytest``
is pytest, and the plugin prepares inside it), so start-up is timed from outside:
the parent reads ``time.monotonic()`` just before it starts pytest, and this plugin
writes its own reading to the file named by ``BENCH_FIRST_TEST_AT`` when the first
test's setup begins. ``CLOCK_MONOTONIC`` is system-wide on Linux, so the two compare.
It imports only what pytest has already imported.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

FIRST_TEST_ENV = "BENCH_FIRST_TEST_AT"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    path = os.environ.get(FIRST_TEST_ENV)
    if path and not Path(path).exists():  # the first test only
        Path(path).write_text(repr(time.monotonic()))
