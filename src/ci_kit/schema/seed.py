"""The seed: a project's function that loads reference data into the template, once.

Its rows are built once per template and cloned into every worker's database,
instead of being inserted by a session fixture in every process. What it loads is
part of the template's identity: the function's name, the file that defines it,
and the data files the project lists (``seed-files``) are hashed into the
template's name, so changed reference data builds a new template and unchanged
data reuses the old one without running the seed.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from sqlalchemy.engine import Connection

from ci_kit.errors import SeedSourceError
from ci_kit.schema.targets import resolve_target, split_target

SeedFunction = Callable[[Connection], object]


@dataclass(frozen=True)
class Seed:
    """A resolved seed: its callable, and every file whose change rebuilds the template."""

    target: str
    function: SeedFunction = field(compare=False, repr=False)
    source_file: Path | None
    """The file defining the function (None for one without a file, a builtin)."""
    root: Path
    files: tuple[str, ...] = ()
    """The files the ``seed-files`` patterns match, relative to ``root``."""

    def fingerprint_parts(self) -> Iterator[bytes]:
        """Its name, its code's file and its data files, each path root-relative."""
        yield b"seed"
        yield self.target.encode()
        yield self.source_file.read_bytes() if self.source_file else b""
        for name in self.files:
            yield name.encode()
            yield (self.root / name).read_bytes()


def parse_seed(target: str | None, patterns: Sequence[str], root: Path) -> Seed | None:
    """Resolve the ``seed`` and ``seed-files`` settings, or fail in one line before any server.

    A target that does not import or is not a synchronous callable, and a pattern
    that matches no file (a typo would leave the data out of the template's
    identity), are the project's to fix.
    """
    if not target:
        if patterns:
            raise SeedSourceError(
                "seed-files is set but seed is not: name the function that loads them "
                "(seed = 'package.module:function')"
            )
        return None
    if split_target(target) is None:
        raise SeedSourceError(f"seed {target!r} is not 'package.module:function'")
    module, function = resolve_target(target, root, what="seed", error=SeedSourceError)
    if not callable(function):
        raise SeedSourceError(
            f"seed {target!r} is a {type(function).__name__}, not a function taking a Connection"
        )
    if inspect.iscoroutinefunction(function):
        raise SeedSourceError(
            f"seed {target!r} is an async function: the kit calls it with a synchronous "
            "Connection, so make it a plain def"
        )
    return Seed(
        target,
        function,
        _defining_file(function, module),
        root,
        tuple(sorted({name for pattern in patterns for name in _matches(pattern, root)})),
    )


def _defining_file(function: SeedFunction, module: ModuleType) -> Path | None:
    """The file that defines the function; its module's for a callable instance."""
    candidates: tuple[SeedFunction | ModuleType, ...] = (function, module)
    for candidate in candidates:
        with contextlib.suppress(TypeError):  # a builtin, an instance: no source file
            name = inspect.getsourcefile(candidate)
            if name:
                return Path(name)
    return None


def _matches(pattern: str, root: Path) -> list[str]:
    """Root-relative names: the template's name must not change with the checkout's path."""
    if Path(pattern).is_absolute():
        raise SeedSourceError(
            f"seed-files pattern {pattern!r} is absolute: give it relative to the project "
            f"root, {root}"
        )
    names = [path.relative_to(root).as_posix() for path in root.glob(pattern) if path.is_file()]
    if not names:
        raise SeedSourceError(f"seed-files pattern {pattern!r} matches no file under {root}")
    return names
