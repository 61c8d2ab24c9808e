"""Polling /healthz: the commit wanted, a crash, an old release still serving, silence."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ci.deploy.health import wait_for
from tests.automation.deploy_helpers import free_port


@pytest.fixture
def serving() -> Iterator[str]:
    """A /healthz that reports commit ``aaa``; its base URL."""

    class Healthz(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "commit": "aaa"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_commit_wanted_is_healthy(serving: str) -> None:
    health = wait_for(serving, "aaa", timeout=5)
    assert (health.ok, health.commit, health.detail) == (True, "aaa", "ok")


def test_an_old_release_still_serving_is_said_at_the_deadline(serving: str) -> None:
    started = time.monotonic()
    health = wait_for(serving, "bbb", timeout=0.6)
    assert time.monotonic() - started >= 0.5
    assert (health.ok, health.detail) == (False, "still serving commit aaa")


def test_a_crash_ends_the_wait_at_once(serving: str) -> None:
    started = time.monotonic()
    health = wait_for(serving, "bbb", timeout=30, alive=lambda: "the app exited: boom")
    assert time.monotonic() - started < 5
    assert (health.ok, health.detail) == (False, "the app exited: boom")


def test_silence_is_no_answer() -> None:
    health = wait_for(f"http://127.0.0.1:{free_port()}", "aaa", timeout=0.5)
    assert not health.ok
    assert health.detail.startswith("no answer")
