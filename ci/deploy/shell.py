"""Every command a deploy runs goes through :class:`Shell`: echoed masked, then run.

Commands are argument lists, quoted with :func:`shlex.join` for Invoke (whose
``run`` takes a string), so no value is ever interpreted by a shell. Secrets reach
a command only through its environment or its standard input, and :meth:`Shell.run`
refuses outright a command line that contains one. Output is captured and shown
masked, after the command ends, since a tool may print what it was given.
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Callable, Mapping, Sequence
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
    ) -> Output:
        """Run ``argv``; raise :class:`CommandFailed` on a non-zero exit when ``check``.

        A ``query`` only reads (``git rev-parse``), so it runs under ``invoke --dry``
        too, where everything else is only echoed: a plan needs the real answers.
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
        result = self.ctx.run(command, **options)
        if result is None:  # only with disown=True, which is never passed
            raise DeployError(f"no result from {self.masker.mask(command)}")
        output = Output(
            stdout=self.masker.mask(result.stdout or ""),
            stderr=self.masker.mask(result.stderr or ""),
            exited=int(result.exited),
        )
        if show:
            for line in (output.stdout + output.stderr).splitlines():
                self.log(f"  {line}")
        if check and not output.ok:
            raise CommandFailed(
                f"{self.masker.mask(shlex.join(str(a) for a in argv))} exited {output.exited}: "
                f"{tail(output.stderr or output.stdout)}"
            )
        return output


def tail(text: str, lines: int = 5) -> str:
    """The last few non-empty lines of a command's output, joined for one message."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(no output)"
