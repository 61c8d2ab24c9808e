"""Is the new release up? Poll ``/healthz`` until it reports the commit, or a deadline."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

_POLL_SECONDS = 0.25
_REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` answered: ok, and the commit the server runs (or why not)."""

    ok: bool
    commit: str | None
    detail: str


def probe(base_url: str) -> Health:
    """One request to ``base_url/healthz``."""
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=_REQUEST_TIMEOUT) as reply:  # noqa: S310
            body = json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as error:
        return Health(False, None, f"HTTP {error.code}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return Health(False, None, f"no answer ({reason})")
    ok = body.get("status") == "ok"
    commit = body.get("commit")
    return Health(ok, str(commit) if commit else None, "ok" if ok else str(body))


def wait_for(
    base_url: str,
    commit: str,
    *,
    timeout: float,
    alive: Callable[[], str | None] = lambda: None,
) -> Health:
    """Poll until the server is healthy on ``commit``; the last answer either way.

    ``alive`` returns why the server can no longer come up (its process exited),
    so a crash fails at once instead of at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        health = probe(base_url)
        if health.ok and health.commit == commit:
            return health
        dead = alive()
        if dead:
            return Health(False, health.commit, dead)
        if time.monotonic() >= deadline:
            if health.ok:
                return Health(False, health.commit, f"still serving commit {health.commit}")
            return health
        time.sleep(_POLL_SECONDS)
