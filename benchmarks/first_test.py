"""``-p benchmarks.first_test``: how long a pytest process took to reach its first test.

hyperfine times whole runs; a run's start-up (imports, the kit's server and
template, the process's clone, collection) ends where its first test's setup
begins, a moment only the process sees. This plugin writes the seconds from the
process's start (the OS's record, 10 ms resolution) to that moment into the file
named by ``BENCH_FIRST_TEST_AT``, once. It imports only the standard library, so
it costs a baseline run nothing the kit's runs do not pay too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from benchmarks.procstat import process_start

FIRST_TEST_ENV = "BENCH_FIRST_TEST_AT"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    path = os.environ.get(FIRST_TEST_ENV)
    if path and not Path(path).exists():  # the first test only
        Path(path).write_text(repr(time.time() - process_start()))
