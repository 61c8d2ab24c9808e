"""The embedded clusters the kit starts, found from the commands it logged."""

from __future__ import annotations

import shlex
from pathlib import Path


def initdb_base(lines: list[str]) -> Path:
    """The temporary directory a logged ``initdb -D <base>/data`` command created."""
    argv = shlex.split(next(line for line in lines if "initdb -D" in line))
    return Path(argv[argv.index("-D") + 1]).parent
