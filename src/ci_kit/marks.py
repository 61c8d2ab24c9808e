"""The mark the kit writes on every database it creates: the one proof a drop checks.

Nothing is dropped without the right mark. A mark is a JSON ``COMMENT ON DATABASE``
naming the database's kind, the run that made it and the base name, so any later
run, from any host, can tell the kit's databases from everyone else's and a
crashed run's leftovers from a live run's (with :mod:`ci_kit.locks`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

MarkKind = Literal["worker", "template", "fresh"]
_MARK_PREFIX = "ci-kit "


@dataclass(frozen=True)
class Mark:
    """What the kit writes on every database it creates, and checks before a drop."""

    kind: MarkKind
    run: str
    base: str
    ready: bool = True

    def to_comment(self, name: str) -> str:
        """The comment for database ``name``: the mark, and the name it was made under."""
        return _MARK_PREFIX + json.dumps(asdict(self) | {"name": name}, sort_keys=True)

    @classmethod
    def from_comment(cls, comment: str | None, name: str) -> Mark | None:
        """The mark of database ``name``, or None for a comment the kit did not write there.

        A comment stays with a database that is renamed: one whose mark names
        another database was renamed by a person, to keep it, and is theirs now.
        """
        if not comment or not comment.startswith(_MARK_PREFIX):
            return None
        try:
            fields = json.loads(comment[len(_MARK_PREFIX) :])
            if fields.get("name") != name:
                return None
            return cls(
                kind=fields["kind"],
                run=str(fields["run"]),
                base=str(fields["base"]),
                ready=bool(fields["ready"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
