"""Is the new release up? Poll ``/healthz`` until it reports the commit, or a deadline."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

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
    so a crash fails at once instead of at the deadline. The polling is tenacity's:
    retry while the answer is not yet the one wanted, stop at the deadline or on a
    crash, a fixed short wait between attempts.
    """
    crashed: list[str] = []

    def settled(health: Health) -> bool:
        if health.ok and health.commit == commit:
            return True
        dead = alive()
        if dead:
            crashed.append(dead)
        return bool(dead)

    poll = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda health: not settled(health)),
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(_POLL_SECONDS),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    health: Health = poll(probe, base_url)
    if crashed:
        return Health(False, health.commit, crashed[-1])
    if not (health.ok and health.commit == commit) and health.ok:
        return Health(False, health.commit, f"still serving commit {health.commit}")
    return health
