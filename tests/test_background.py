"""The controller's preparation on a thread: claimed once, closed once, its failure raised
where it is claimed, its progress written by the thread that claims it.

Real runs through it (an xdist controller's) are in ``test_plugin.py``; here the
preparation is a stand-in, so each promise is checked on its own, in milliseconds.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import cast

import pytest

from ci_kit.background import BackgroundPreparation
from ci_kit.errors import CiKitError
from ci_kit.lifecycle import PreparedRun
from ci_kit.schema.process import ChildStart

progress = logging.getLogger("ci_kit.tests.background")


class StandInRun:
    """What the plugin does with a prepared run: hand its plan on, close it once."""

    def __init__(self) -> None:
        self.plan = object()
        self.closed = 0

    def close(self) -> list[str]:
        self.closed += 1
        return []


def preparation(
    prepare: Callable[[ChildStart], StandInRun],
    *,
    on_ready: Callable[[StandInRun], None] = lambda _run: None,
    children: ChildStart | None = None,
) -> BackgroundPreparation:
    """A preparation of the stand-in, which has all of PreparedRun that the thread uses."""
    return BackgroundPreparation(
        cast("Callable[[ChildStart], PreparedRun]", prepare),
        children=children or ChildStart.now(),
        on_ready=cast("Callable[[PreparedRun], None]", on_ready),
    )


def test_the_run_is_claimed_with_its_progress_in_order() -> None:
    run = StandInRun()

    def prepare(_children: ChildStart) -> StandInRun:
        for step in ("starting the server", "building the template"):
            progress.info(step)
        progress.debug("a command, not shown at INFO")
        return run

    background = preparation(prepare)
    background.start()
    written: list[str] = []
    assert background.claim(written.append) is cast("PreparedRun", run)
    assert written == ["starting the server", "building the template"]
    background.abandon()  # the config's cleanup, after a claim: nothing more
    assert run.closed == 0, "a claimed run is the claimer's to close"
    background.release()


def test_the_workers_get_the_plan_before_the_main_thread_claims_it() -> None:
    run = StandInRun()
    handed: list[object] = []
    ready = threading.Event()

    def on_ready(prepared: StandInRun) -> None:
        handed.append(prepared.plan)
        ready.set()

    background = preparation(lambda _children: run, on_ready=on_ready)
    background.start()
    assert ready.wait(10), "the plan waited for the claim"
    assert handed == [run.plan]
    background.claim(lambda _line: None)
    background.release()


@pytest.mark.parametrize(
    "failure",
    [CiKitError("the server would not start"), KeyboardInterrupt("SIGTERM")],
    ids=["kit-error", "interrupted"],
)
def test_a_failure_is_raised_where_the_run_is_claimed(failure: BaseException) -> None:
    def prepare(_children: ChildStart) -> StandInRun:
        raise failure

    background = preparation(prepare)
    background.start()
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None), "held from the start"
    with pytest.raises(type(failure)) as raised:
        background.claim(lambda _line: None)
    assert raised.value is failure
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "given back with the failure"


def test_a_run_nobody_claims_is_closed_once() -> None:
    run = StandInRun()
    background = preparation(lambda _children: run)
    background.start()
    background.abandon()  # a conftest failed to import: the config's cleanup
    background.abandon()  # and atexit
    assert run.closed == 1
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_the_descriptors_taken_for_the_children_are_closed_after_the_preparation() -> None:
    taken = (os.dup(1), os.dup(2))
    children = ChildStart.now(stdout=taken[0], stderr=taken[1])
    background = preparation(lambda _children: StandInRun(), children=children)
    background.start()
    background.claim(lambda _line: None)
    background.release()
    for descriptor in taken:
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(descriptor)


def test_an_interrupt_ends_the_child_the_thread_waits_for() -> None:
    """SIGTERM reaches the main thread only: it must cut the thread's wait short (a
    migration can take minutes), so that the run ends now, its server stopped."""
    run = StandInRun()
    waiting = threading.Event()
    children = ChildStart.now()

    def prepare(start: ChildStart) -> StandInRun:
        migration = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        start.live.add(migration)
        waiting.set()
        migration.wait()
        start.live.discard(migration)
        return run

    background = preparation(prepare, children=children)
    background.start()
    assert waiting.wait(10)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
    background.abandon()
    assert time.monotonic() - started < 10, "the thread waited for its child to end by itself"
    assert run.closed == 1
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_claim_cut_short_by_an_interrupt_still_waits_for_the_thread_at_abandon() -> None:
    """Ctrl-C lands while the main thread waits in claim; the thread still has seconds
    of unwinding to do (a template to drop, a server to stop). A ``Thread.join`` cut
    by KeyboardInterrupt can mark a running thread as ended (CPython's bpo-45274
    handling): the wait must not be a join, or abandon and the interpreter's exit
    would not wait, and the server would outlive the run."""
    run = StandInRun()

    def prepare(start: ChildStart) -> StandInRun:
        migration = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        start.live.add(migration)
        migration.wait()  # ended by the interrupt
        start.live.discard(migration)
        time.sleep(1)  # the unwinding that follows
        return run

    background = preparation(prepare)
    background.start()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        background.claim(lambda _line: None)
    background.abandon()
    assert run.closed == 1, "abandon did not wait for the thread"
