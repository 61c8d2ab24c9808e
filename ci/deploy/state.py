"""An environment's history and admin token, kept in its :class:`~ci.deploy.store.Store`.

``history.json`` is an append-only log of what went live, oldest first: a
``deploy`` or ``promote`` (healthy and smoke-tested) puts a commit on top of the
live stack, a ``rollback`` takes the top one off. What is live is the top of
that stack, ``deploy.rollback`` goes to the one below it, and a promotion takes
any commit its source ever ran healthy, even one rolled back since. Because it
lives with the environment, every runner and every clone reads the same log.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from ci.deploy.store import Store

HISTORY = "history.json"
ADMIN_TOKEN = "admin-token"  # noqa: S105 - the file name, not a token


@dataclass(frozen=True)
class Entry:
    commit: str
    deployed_at: str
    how: str


def read_history(store: Store) -> list[Entry]:
    data = store.read(HISTORY)
    return [Entry(**entry) for entry in json.loads(data)] if data else []


def write_history(store: Store, entries: list[Entry]) -> None:
    store.write(HISTORY, json.dumps([asdict(e) for e in entries], indent=2).encode())


def record(store: Store, commit: str, how: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_history(store, [*read_history(store), Entry(commit, now, how)])


def live_stack(entries: list[Entry]) -> list[str]:
    """The commits live in turn, the live one last, as the log's rollbacks left them."""
    stack: list[str] = []
    for entry in entries:
        if entry.how == "rollback":
            del stack[-1:]
        else:
            stack.append(entry.commit)
    return stack


def live_commit(store: Store) -> str | None:
    stack = live_stack(read_history(store))
    return stack[-1] if stack else None


def ran_healthy(store: Store) -> set[str]:
    """Every commit that ever went live here, healthy and smoke-tested."""
    return {entry.commit for entry in read_history(store) if entry.how != "rollback"}


def admin_token(store: Store) -> str:
    """The environment's kept ``ADMIN_TOKEN`` (made once, private) when none is given.

    Kept with the environment so a rollback from another runner's clone gives the
    smoke tests the token the running app has.
    """
    kept = store.read(ADMIN_TOKEN)
    if kept:
        return kept.decode().strip()
    token = secrets.token_urlsafe(32)
    store.write(ADMIN_TOKEN, token.encode(), private=True)
    return token
