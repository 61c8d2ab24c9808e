"""Shell.run and LineLog: long commands shown live, line by line, masked; queries quiet."""

from __future__ import annotations

import re
import shlex
import sys
import time
from pathlib import Path

import pytest
from invoke.config import Config
from invoke.context import Context, MockContext
from invoke.runners import Local, Result

from ci.deploy.errors import CommandFailed
from ci.deploy.plan import Masker
from ci.deploy.shell import LineLog, Shell, live_output

SECRET = "s3cret-t0ken"

# Prints a line, then waits (at most 20 s) until the test says it saw that line.
WAITS_TO_BE_SEEN = """
import os, sys, time
print("first line", flush=True)
deadline = time.monotonic() + 20
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > deadline:
        sys.exit("nobody saw the first line while the command ran")
    time.sleep(0.01)
print("second line", flush=True)
"""

# Writes half the secret, waits until the reader has taken it, writes the rest.
SPLITS_THE_SECRET = """
import os, sys, time
half = len(sys.argv[2]) // 2
sys.stdout.write("token: " + sys.argv[2][:half])
sys.stdout.flush()
deadline = time.monotonic() + 20
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > deadline:
        sys.exit("the first half never reached the stream on its own")
    time.sleep(0.01)
sys.stdout.write(sys.argv[2][half:] + " accepted\\n")
"""


class ClosingLocal(Local):
    """Invoke's local runner, closing the pipes it leaves to the garbage collector,
    whose ResourceWarning this suite's ``filterwarnings = error`` would report."""

    def stop(self) -> None:
        super().stop()
        process = getattr(self, "process", None)
        for pipe in (process.stdin, process.stdout, process.stderr) if process else ():
            if pipe is not None:
                pipe.close()


def real_context() -> Context:
    """A context that runs commands for real, as invoke's executor gives a task."""
    return Context(Config(overrides={"runners": {"local": ClosingLocal}}))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_long_command_shows_its_first_line_before_it_ends(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    lines: list[tuple[float, str]] = []

    def log(line: str) -> None:
        lines.append((time.monotonic(), line))
        if line.endswith("] first line"):
            seen.touch()

    shell = Shell(real_context(), Masker([]), log)
    output = shell.run([sys.executable, "-c", WAITS_TO_BE_SEEN, seen], step="build")
    ended = time.monotonic()

    assert output.ok, output.stderr
    assert output.stdout == "first line\nsecond line\n"
    shown = [line for _, line in lines[1:]]
    assert [re.sub(r"\[build \d+\.\ds\]", "[build T]", line) for line in shown] == [
        "  [build T] first line",
        "  [build T] second line",
    ]
    first_at = next(at for at, line in lines if line.endswith("first line"))
    second_at = next(at for at, line in lines if line.endswith("second line"))
    assert first_at <= second_at <= ended


def test_a_secret_cut_in_two_writes_never_shows(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    writes: list[str] = []

    class Spy(LineLog):
        def write(self, text: str) -> int:
            writes.append(text)
            if not text.endswith("\n"):
                seen.touch()
            return super().write(text)

    lines: list[str] = []
    out = Spy(Masker([SECRET]), lines.append, "push")
    with out:
        result = real_context().run(
            shlex.join([sys.executable, "-c", SPLITS_THE_SECRET, str(seen), SECRET]),
            hide=False,
            warn=True,
            pty=False,
            in_stream=False,
            out_stream=out,
        )
    assert result is not None
    assert result.ok, result.stderr
    assert not any(SECRET in write for write in writes)  # it did arrive in pieces
    assert SECRET in "".join(writes)
    assert [line.split("] ", 1)[1] for line in lines] == ["token: *** accepted"]


def test_shell_masks_a_printed_secret_live_and_in_what_it_returns() -> None:
    script = (
        "import os, sys\n"
        "secret = os.environ['TOKEN']\n"
        "print('whole:', secret, flush=True)\n"
        "sys.stdout.write('halves: ' + secret[:4]); sys.stdout.flush()\n"
        "sys.stdout.write(secret[4:] + ' end\\n'); sys.stdout.flush()\n"
        "print('on stderr:', secret, file=sys.stderr)\n"
    )
    lines: list[str] = []
    shell = Shell(real_context(), Masker([SECRET]), lines.append)
    output = shell.run([sys.executable, "-c", script], env={"TOKEN": SECRET}, show=True)

    assert not any(SECRET in line for line in lines)
    shown = sorted(line.split("] ", 1)[1] for line in lines[1:])
    assert shown == ["halves: *** end", "on stderr: ***", "whole: ***"]
    assert all(line.startswith(f"  [{Path(sys.executable).name} ") for line in lines[1:])
    assert output.stdout == "whole: ***\nhalves: *** end\n"
    assert output.stderr == "on stderr: ***\n"


def test_a_failed_step_shows_its_lines_then_fails_masked() -> None:
    script = "import os, sys; print('using', os.environ['TOKEN']); sys.exit('no luck')"
    lines: list[str] = []
    shell = Shell(real_context(), Masker([SECRET]), lines.append)
    with pytest.raises(CommandFailed) as raised:
        shell.run([sys.executable, "-c", script], env={"TOKEN": SECRET}, step="migrate")
    assert "exited 1: no luck" in str(raised.value)
    assert sorted(line.split("] ", 1)[1] for line in lines[1:]) == ["no luck", "using ***"]
    assert all(line.startswith("  [migrate ") for line in lines[1:])


def test_a_query_is_only_captured_and_echoed() -> None:
    lines: list[str] = []
    shell = Shell(real_context(), Masker([]), lines.append)
    output = shell.run([sys.executable, "-c", "print('abc123')"], query=True)
    assert output.stdout == "abc123\n"
    assert len(lines) == 1
    assert lines[0].startswith("$ ")


def test_a_runner_that_does_not_stream_is_shown_at_the_end() -> None:
    ctx = MockContext(run=Result(stdout=f"built with {SECRET}\n", stderr="warning\n"))
    lines: list[str] = []
    shell = Shell(ctx, Masker([SECRET]), lines.append)
    output = shell.run(["podman", "build", "."], step="image")
    assert output.stdout == "built with ***\n"
    assert [line.split("] ", 1)[1] for line in lines[1:]] == ["built with ***", "warning"]
    assert all(line.startswith("  [image ") for line in lines[1:])


def test_line_log_waits_for_whole_lines_labels_and_times_them() -> None:
    clock = Clock()
    lines: list[str] = []
    stream = LineLog(Masker([SECRET]), lines.append, "build", clock=clock)
    for char in f"one {SECRET}\ntw":
        stream.write(char)
    assert lines == ["  [build 0.0s] one ***"]
    clock.now += 12.34
    stream.write("o\n\nthree")
    stream.flush()
    assert lines[1:] == ["  [build 12.3s] two", "  [build 12.3s] "]
    stream.close()
    assert lines[3:] == ["  [build 12.3s] three"]
    assert stream.received == len(f"one {SECRET}\ntwo\n\nthree")


def test_line_log_shows_a_redrawn_line_as_a_terminal_would() -> None:
    lines: list[str] = []
    stream = LineLog(Masker([SECRET]), lines.append, "uv", clock=Clock())
    stream.write(f" 10% {SECRET[:3]}\r 50% {SECRET}\r100% done\r\n")
    assert lines == ["  [uv 0.0s] 100% done"]


def test_line_log_close_logs_nothing_more_when_the_last_line_ended() -> None:
    lines: list[str] = []
    with LineLog(Masker([]), lines.append, "x", clock=Clock()) as stream:
        stream.write("done\n")
    stream.close()
    assert lines == ["  [x 0.0s] done"]


def test_live_output_gives_both_streams_one_clock_and_closes_them() -> None:
    lines: list[str] = []
    with live_output(Masker([SECRET]), lines.append, "smoke") as streams:
        assert set(streams) == {"out_stream", "err_stream"}
        streams["out_stream"].write("passed")
        streams["err_stream"].write(f"{SECRET}\n")
        assert streams["out_stream"].started == streams["err_stream"].started
    assert [line.split("] ", 1)[1] for line in lines] == ["***", "passed"]
    assert all(stream.closed for stream in streams.values())
