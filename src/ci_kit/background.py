"""An xdist controller's preparation, on a thread from the kit's first hook.

The controller knows it will prepare a run at ``pytest_load_initial_conftests``,
the kit's first hook, and its workers need the plan only once xdist has started
them. In between, its main thread imports the project's conftests (the
application: about half a second for the sample backend) and xdist spawns the
workers. The preparation is mostly waiting for other processes (the server's
start, the schema child's migrations), so on a thread it runs through that span
instead of after it, and the workers get the plan that much sooner (see "A run's
fixed seconds" in the README for the figures).

What the main thread keeps, because only it can, or because the conftests are
changing it meanwhile:

- the signals: only the main thread can take SIGTERM as Ctrl-C
  (:mod:`ci_kit.postgres.interrupts`); it holds them so from the thread's start
  until the run is closed, for the server the thread starts, and an interrupt
  ends the schema child the thread waits for, so that it unwinds at once;
- what the schema's child processes start from (:class:`ChildStart`): the
  environment and ``sys.path`` before the conftests change them, and the
  terminal, which pytest captures while they are imported;
- the output: the kit's progress lines wait in a queue until the main thread
  claims the run, and are written from there as they come;
- the outcome: a failure is raised where the run is claimed; a run nobody
  claims (a conftest that fails to import, Ctrl-C before the session) is waited
  for and closed by :meth:`BackgroundPreparation.abandon`, at the config's
  cleanup or at exit, whichever comes first.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from collections.abc import Callable

from ci_kit.lifecycle import PreparedRun
from ci_kit.logs import forwarded_to
from ci_kit.postgres import interrupts
from ci_kit.schema.process import ChildStart

_POLL_SECONDS = 0.05
"""How often a waiting main thread writes the progress lines that came meanwhile."""


class BackgroundPreparation:
    """``prepare(children)`` on a thread; :meth:`claim` waits for its run, or its failure."""

    def __init__(
        self,
        prepare: Callable[[ChildStart], PreparedRun],
        *,
        children: ChildStart,
        level: int = logging.INFO,
        on_ready: Callable[[PreparedRun], None] = lambda _run: None,
    ) -> None:
        self._prepare = prepare
        self._children = children
        self._level = level
        self._on_ready = on_ready
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._run: PreparedRun | None = None
        self._error: BaseException | None = None
        self._settled = False
        # Waited on instead of Thread.join: a join cut short by Ctrl-C can mark the
        # running thread as ended (CPython's bpo-45274 handling), and nothing, the
        # interpreter's exit included, would wait for it any more.
        self._done = threading.Event()
        # Not a daemon: an interpreter that exits meanwhile waits for the preparation,
        # then its exit handlers stop the server it started, never while it starts it.
        self._thread = threading.Thread(target=self._work, name="ci-kit-prepare")

    def start(self) -> None:
        """Start the thread; from the main thread, which holds the signals for it.

        An interrupt ends the schema child the thread may be waiting for (a migration
        can take minutes), so that the thread unwinds at once, its server stopped.
        """
        interrupts.hold(self, on_interrupt=self._children.end_children)
        atexit.register(self.abandon)
        self._thread.start()

    def claim(self, write: Callable[[str], None]) -> PreparedRun:
        """The prepared run, the caller's to close; the preparation's failure raised here.

        Waits for the thread, writing its progress lines with ``write`` as they come.
        Interrupted meanwhile, the run stays unclaimed: :meth:`abandon` closes it.
        """
        while not self._done.wait(_POLL_SECONDS):
            self._write_lines(write)
        self._write_lines(write)
        self._settle()
        if self._error is not None:
            interrupts.release(self)
            raise self._error
        assert self._run is not None  # the thread ended with a run or an error
        return self._run

    def release(self) -> None:
        """The claimed run is closed: SIGTERM may be SIGTERM again."""
        interrupts.release(self)

    def abandon(self) -> None:
        """Wait for a run nobody claimed, and close it. Idempotent; nothing once claimed."""
        if self._settled:
            return
        self._settle()
        self._done.wait()
        try:
            if self._run is not None:
                self._run.close()
        finally:
            interrupts.release(self)

    def _work(self) -> None:
        try:
            with forwarded_to(self._lines.put, level=self._level):
                run = self._prepare(self._children)
        except BaseException as error:  # raised again in the main thread, where it is claimed
            self._error = error
        else:
            self._run = run
            self._on_ready(run)
        finally:
            self._children.close_descriptors()
            self._done.set()

    def _settle(self) -> None:
        self._settled = True
        atexit.unregister(self.abandon)

    def _write_lines(self, write: Callable[[str], None]) -> None:
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            write(line)
