"""Whole-command timings: every run a benchmark compares is started and timed by hyperfine.

hyperfine (Debian's ``hyperfine``, 1.15 or later) starts each command without a
shell (``-N``), times it from outside as a user feels it, adds up the CPU of the
command and of every process it waited for, stops at the first run that fails and
exports each run's figures as JSON. The benchmarks time in rounds: :func:`one_round`
runs each command once (``--runs 1``) in the order given, and :func:`rounds`
repeats it with the order rotated, so that the runs a ratio pairs are taken side
by side (A, B, A, B) and a drift in the machine's speed hits both sides of it.
hyperfine's own ``--runs N`` would run one command N times in a row, then the next.

The environment given is every command's: a server URL with its password goes
there, never into a command line, which hyperfine shows. What differs from one
command to the next (a probe directory, a project directory) is set on its command
line with ``env -C DIR NAME=VALUE``, so it must never be a secret.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import BenchmarkFailed, Context, rotated

HYPERFINE = "hyperfine"


@dataclass(frozen=True)
class Command:
    """One command to time, and the name its runs are reported by."""

    name: str
    """hyperfine's ``--command-name``; ``{param}`` in it takes a parameter's value."""
    argv: Sequence[str]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """Set for this command alone, on its command line: never a secret."""
    prepare: Sequence[str] = ()
    """Run before each run of this command, untimed, where it runs (hyperfine's ``--prepare``)."""

    def line(self, argv: Sequence[str] | None = None) -> str:
        """The command line hyperfine runs (``argv`` instead of the command's): it splits
        it as a POSIX shell would."""
        settings = [*(["-C", str(self.cwd)] if self.cwd else []), *map("=".join, self.env.items())]
        argv = self.argv if argv is None else argv
        return shlex.join([*(["env", *settings] if settings else []), *argv])


@dataclass(frozen=True)
class Run:
    """One timed run of a command."""

    name: str
    seconds: float
    cpu_seconds: float
    """User + system time of the command and of the processes it waited for."""
    parameters: dict[str, str]


def one_round(
    ctx: Context,
    commands: Sequence[Command],
    *,
    env: Mapping[str, str],
    parameters: Mapping[str, Sequence[object]] | None = None,
) -> list[Run]:
    """Each command once, in this order; with ``parameters``, once per combination of values."""
    exported, output = ctx.work / "hyperfine.json", ctx.work / "hyperfine-output.txt"
    argv = [HYPERFINE, "-N", "--style", "basic", "--runs", "1"]
    argv += [f"--export-json={exported}", f"--output={output}"]  # "=": a value may start with -
    for name, values in (parameters or {}).items():
        argv += ["--parameter-list", name, ",".join(map(str, values))]
    if any(command.prepare for command in commands):  # then one for each command, in order
        for command in commands:
            argv.append(f"--prepare={command.line(command.prepare or ['true'])}")
    for command in commands:
        argv.append(f"--command-name={command.name}")
    argv += [command.line() for command in commands]
    done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        failed = re.findall(r"^Benchmark \d+: (.*)$", done.stdout, re.MULTILINE)[-1:]
        printed = output.read_text(errors="replace") if output.is_file() else ""
        raise BenchmarkFailed(
            f"{', '.join(failed) or 'hyperfine'}: {done.stderr.strip()}\n"
            + "\n".join(printed.splitlines()[-25:])
        )
    return [
        Run(
            result["command"],
            result["times"][0],
            result["user"] + result["system"],
            result.get("parameters", {}),
        )
        for result in json.loads(exported.read_text())["results"]
    ]


def rounds(
    ctx: Context,
    commands_of: Callable[[int], Sequence[Command]],
    count: int,
    *,
    env: Mapping[str, str],
    parameters: Mapping[str, Sequence[object]] | None = None,
) -> dict[str, list[Run]]:
    """``count`` rounds of :func:`one_round`, the order rotated each round: runs by name.

    ``commands_of(n)``: round ``n``'s commands (a file they write may name the round).
    Parameter combinations come in hyperfine's order, the same in every round.
    """
    runs: dict[str, list[Run]] = {}
    scanned = "".join(
        f" ({name}: {', '.join(map(str, v))})" for name, v in (parameters or {}).items()
    )
    for number in range(count):
        commands = rotated(commands_of(number), number)
        ctx.log(f"round {number + 1}/{count}: {'; '.join(c.name for c in commands)}{scanned}")
        for run in one_round(ctx, commands, env=env, parameters=parameters):
            runs.setdefault(run.name, []).append(run)
    return runs


def output_of(command: Command, *, env: Mapping[str, str]) -> str:
    """Run ``command`` once, untimed: a warm-up, or a look at the state it runs in."""
    done = subprocess.run(
        shlex.split(command.line()), env=dict(env), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise BenchmarkFailed(f"{command.name}: exited {done.returncode}:\n{tail}")
    return done.stdout + done.stderr


def seconds(runs: Sequence[Run]) -> list[float]:
    return [run.seconds for run in runs]
