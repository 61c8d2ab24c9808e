"""Every command a deploy runs goes through :class:`Shell`: echoed masked, then run.

Commands are argument lists, quoted with :func:`shlex.join` for Invoke (whose
``run`` takes a string), so no value is ever interpreted by a shell. Secrets reach
a command only through its environment or its standard input, and :meth:`Shell.run`
refuses outright a command line that contains one. Output is always captured,
masked, for the caller; a long command (a named ``step``, or ``show``) also shows
it live, line by line through :class:`LineLog`, masked too, since a tool may print
what it was given.
"""

from __future__ import annotations

import io
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoke.context import Context

from ci.deploy.errors import CommandFailed, DeployError
from ci.deploy.plan import Masker

Log = Callable[[str], None]
Argv = Sequence[str | Path]


@dataclass(frozen=True)
class Output:
    """What a finished command printed, already masked."""

    stdout: str
    stderr: str
    exited: int

    @property
    def ok(self) -> bool:
        return self.exited == 0


class Shell:
    """Runs argv lists through an Invoke context: masked echo, masked output, no secrets."""

    def __init__(self, ctx: Context, masker: Masker, log: Log) -> None:
        self.ctx = ctx
        self.masker = masker
        self.log = log

    def run(
        self,
        argv: Argv,
        *,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        cwd: Path | None = None,
        check: bool = True,
        show: bool = False,
        query: bool = False,
        step: str | None = None,
    ) -> Output:
        """Run ``argv``; raise :class:`CommandFailed` on a non-zero exit when ``check``.

        A ``query`` only reads (``git rev-parse``), so it runs under ``invoke --dry``
        too, where everything else is only echoed: a plan needs the real answers.
        With a ``step`` (the plan's name for it: ``build``, ``migrate``) or ``show``,
        the output is shown as it comes, each line as ``  [step 12.3s] ...``;
        without, it is only captured, as a short query's should be.
        """
        command = shlex.join(str(arg) for arg in argv)
        if self.masker.leaks(command):
            # A programming error, but one that must never get as far as a process table.
            raise DeployError(
                f"refusing to run {self.masker.mask(command)}: a secret is in its arguments"
            )
        self.log(f"$ {self.masker.mask(command)}")
        if cwd is not None:
            command = f"cd {shlex.quote(str(cwd))} && {command}"
        options: dict[str, Any] = {"hide": True, "warn": True, "echo": False, "pty": False}
        if query:
            options["dry"] = False
        if env:
            options["env"] = dict(env)
        # Never forward our own terminal: a deploy must not wait on a prompt.
        options["in_stream"] = io.StringIO(stdin) if stdin is not None else False
        if show or step is not None:
            label = step or Path(str(argv[0])).name
            with live_output(self.masker, self.log, label) as streams:
                result = self.ctx.run(command, **{**options, **streams, "hide": False})
                if result is not None and not any(s.received for s in streams.values()):
                    # A runner that does not stream (MockContext): show what it returned.
                    streams["out_stream"].write(result.stdout or "")
                    streams["err_stream"].write(result.stderr or "")
        else:
            result = self.ctx.run(command, **options)
        if result is None:  # only with disown=True, which is never passed
            raise DeployError(f"no result from {self.masker.mask(command)}")
        output = Output(
            stdout=self.masker.mask(result.stdout or ""),
            stderr=self.masker.mask(result.stderr or ""),
            exited=int(result.exited),
        )
        if check and not output.ok:
            raise CommandFailed(
                f"{self.masker.mask(shlex.join(str(a) for a in argv))} exited {output.exited}: "
                f"{tail(output.stderr or output.stdout)}"
            )
        return output


class LineLog(io.TextIOBase):
    """A write-only text stream that logs each whole line, masked, labelled and timed.

    Made for ``run(out_stream=..., err_stream=...)`` of Invoke and Fabric, which
    write a command's output in chunks of any size: text is held until its line
    ends, so a secret cut in two by a chunk boundary is masked like any other.
    :meth:`close` logs an unfinished last line. A line redrawn with carriage returns
    (a progress bar) shows what a terminal would show last. A secret is masked
    within a line; one that itself spans lines is not recognised.
    """

    def __init__(
        self,
        masker: Masker,
        log: Log,
        label: str,
        *,
        started: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        lock: threading.Lock | None = None,
    ) -> None:
        super().__init__()
        self.masker = masker
        self.log = log
        self.label = label
        self.clock = clock
        self.started = clock() if started is None else started
        self.received = 0
        self._pending = ""
        self._lock = lock or threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.received += len(text)
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        """Nothing to do: a line is logged as soon as it ends, and not before."""

    def close(self) -> None:
        if not self.closed and self._pending:
            pending, self._pending = self._pending, ""
            self._emit(pending)
        super().close()

    def _emit(self, line: str) -> None:
        shown = self.masker.mask(line.rstrip("\r")).rsplit("\r", 1)[-1]
        elapsed = self.clock() - self.started
        with self._lock:
            self.log(f"  [{self.label} {elapsed:.1f}s] {shown}")


@contextmanager
def live_output(masker: Masker, log: Log, label: str) -> Iterator[dict[str, LineLog]]:
    """``out_stream`` and ``err_stream`` for ``run``: one clock, lines never interleaved.

    Pass them with ``hide=False``, since Invoke writes only to the streams it shows::

        with live_output(shell.masker, shell.log, "migrate") as streams:
            result = connection.run(command, hide=False, warn=True, pty=False, **streams)

    The streams are closed on the way out, logging any unfinished last line.
    """
    started, lock = time.monotonic(), threading.Lock()
    streams = {
        name: LineLog(masker, log, label, started=started, lock=lock)
        for name in ("out_stream", "err_stream")
    }
    try:
        yield streams
    finally:
        for stream in streams.values():
            stream.close()


def tail(text: str, lines: int = 5) -> str:
    """The last few non-empty lines of a command's output, joined for one message."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(no output)"
