"""No schema: the template is an empty database, for suites that create their own tables."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class EmptySchema:
    """The :class:`~ci_kit.schema.SchemaSource` of a project that configured none."""

    def describe(self) -> str:
        return "empty"

    def fingerprint_parts(self) -> Iterator[bytes]:
        yield b"empty"

    def build(self, connection: Connection) -> None:
        """Nothing to create."""

    def verify(self, connection: Connection) -> None:
        """Nothing to check."""

    def failure_hint(self, error: BaseException) -> str:
        return ""
