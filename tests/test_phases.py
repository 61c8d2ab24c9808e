"""The kit's share of a start-up: which process it names, and when it says nothing."""

from __future__ import annotations

import pytest

from ci_kit.phases import WORKER_OUTPUT_KEY, keep_worker_phases, record, start_up_summary


@pytest.fixture
def config(pytester: pytest.Pytester) -> pytest.Config:
    return pytester.parseconfig("-p", "no:ci_kit")


def test_a_process_that_timed_no_start_up_phase_says_nothing(config: pytest.Config) -> None:
    record(config.stash, "prepare", 1.5)  # the controller's own work is not a start-up
    assert start_up_summary(config) is None


def test_a_serial_run_reports_its_own_start(config: pytest.Config) -> None:
    record(config.stash, "import", 0.012)
    record(config.stash, "clone", 0.027)
    assert start_up_summary(config) == (
        "kit's share of the run's start 39 ms (import 12, clone 27, engine 0)"
    )


def test_a_controller_reports_the_worker_the_run_waited_for(config: pytest.Config) -> None:
    record(config.stash, "import", 5.0)  # the controller's: not what the workers waited on
    keep_worker_phases(config, "gw0", {WORKER_OUTPUT_KEY: {"import": 0.01, "clone": 0.02}})
    keep_worker_phases(config, "gw1", {WORKER_OUTPUT_KEY: {"clone": 0.09, "engine": 0.001}})
    keep_worker_phases(config, "gw2", {})  # a worker that died before handing anything over
    assert start_up_summary(config) == (
        "kit's share of the slowest worker's start 91 ms (import 0, clone 90, engine 1)"
    )
