"""The run's plan, from the xdist controller to its workers, as soon as it exists.

xdist starts the workers at the session's start, and a worker must have cloned
its database before it imports its conftests (a conftest that imports the
application builds its engine from ``url-env`` at that very moment), long before
``workerinput`` reaches it. So the controller prepares the run (server, template,
rehearsal) on a thread from its first hook (:mod:`ci_kit.background`), while it
imports its own conftests and xdist starts the workers, and hands the plan over a
private Unix socket: each worker connects as it reaches its conftests and waits
there until the plan, or the controller's refusal, arrives. The start-up of the
controller and of the workers (an interpreter, pytest, its plugins) and the
preparation overlap instead of adding up.

The plan carries the server's password: the socket lives in a directory only
this user can enter, and a worker must know the run's random key to be answered
(``multiprocessing.connection``'s authentication). The address, the key and the
controller's pid travel in the workers' environment, taken out by each worker at
once; a pytest that a test starts inside a worker inherits the variable too, but
is not the controller's child, so it leaves it alone.

Imported by the plugin in every pytest process: the standard library and pytest
only, the plan's module once a worker of a kit run is found.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import pytest

from ci_kit.errors import CiKitError
from ci_kit.phases import import_libraries, phase

if TYPE_CHECKING:
    from ci_kit.plan import RunPlan

PLAN_ENV = "CI_KIT_RUN_PLAN"
_WORKER_ENV = "PYTEST_XDIST_WORKER"  # xdist's, in every worker's environment


class PlanHandoff:
    """The controller's end: a socket that answers each worker with the plan once there is one."""

    def __init__(self) -> None:
        from multiprocessing.connection import Listener

        from ci_kit.postgres.processes import temp_root  # a socket's path holds ~100 bytes

        # 0700: this user's only
        self._directory = tempfile.mkdtemp(prefix="ci-kit-plan-", dir=temp_root())
        self.address = os.path.join(self._directory, "plan.sock")  # noqa: PTH118 (a str for AF_UNIX)
        self.key = secrets.token_bytes(32)
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.key)
        self._answer: dict[str, Any] | None = None
        self._ready = threading.Event()
        self._closed = threading.Event()
        threading.Thread(target=self._serve, name="ci-kit-plan", daemon=True).start()

    def environment(self) -> dict[str, str]:
        """What a worker needs to find and open this socket."""
        wire = {"controller": os.getpid(), "address": self.address, "key": self.key.hex()}
        return {PLAN_ENV: json.dumps(wire)}

    def publish(self, plan: RunPlan) -> None:
        """Every worker, waiting or yet to connect, gets ``plan``."""
        self._answer = {"plan": plan.to_wire()}
        self._ready.set()

    def refuse(self) -> None:
        """The run will not start (the controller says why): waiting workers just end."""
        self._answer = {"refused": True}
        self._ready.set()

    def close(self) -> None:
        """No more workers: the socket and its directory go."""
        if not self._ready.is_set():
            self.refuse()
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    def _serve(self) -> None:
        """Answer workers as they come, xdist's replacements too, until the run ends."""
        from multiprocessing import AuthenticationError

        while not self._closed.is_set():
            try:
                connection = self._listener.accept()
            except (OSError, EOFError, AuthenticationError):  # closed; a stranger without the key
                continue
            threading.Thread(target=self._answer_one, args=(connection,), daemon=True).start()

    def _answer_one(self, connection: Any) -> None:
        with connection:
            self._ready.wait()
            with contextlib.suppress(OSError):
                connection.send(self._answer)


def hand_to_workers(config: pytest.Config) -> PlanHandoff:
    """Open the controller's end before xdist starts the workers; closed when the run ends."""
    handoff = PlanHandoff()
    config.add_cleanup(handoff.close)
    set_for_the_run(config, handoff.environment())
    return handoff


class RefusedByController(Exception):
    """The controller could not prepare the run and has said why: the worker just ends."""


def plan_from_controller(
    config: pytest.Config, environ: MutableMapping[str, str]
) -> tuple[RunPlan, str] | None:
    """This worker's plan and id, once the controller has it; None unless this process
    is an xdist worker that the run's controller started.

    Raises :class:`RefusedByController` when the controller could not prepare the
    run, and the kit's error when the controller went away meanwhile.
    """
    raw = environ.get(PLAN_ENV)
    worker_id = environ.get(_WORKER_ENV)
    if not raw or not worker_id:
        return None
    wire = json.loads(raw)
    if wire["controller"] != os.getppid():
        return None
    del environ[PLAN_ENV]  # the key goes no further than this worker
    from multiprocessing.connection import Client

    with phase(config.stash, "plan"):
        try:
            with Client(wire["address"], family="AF_UNIX", authkey=bytes.fromhex(wire["key"])) as c:
                answer = c.recv()
        except (OSError, EOFError) as error:
            raise CiKitError(
                f"worker {worker_id} got no plan from the run's controller ({error}): it ended "
                "before preparing the run"
            ) from None
    if "plan" not in answer:
        raise RefusedByController
    import_libraries(config.stash)
    with phase(config.stash, "import"):
        from ci_kit.plan import RunPlan

    return RunPlan.from_wire(answer["plan"]), worker_id


def set_for_the_run(config: pytest.Config, values: Mapping[str, str]) -> None:
    """``os.environ.update(values)`` until the run ends, then what each held.

    The environment is how the run reaches what it does not call: its workers
    (the plan) and the application's settings (``url-env``, ``[tool.ci-kit.env]``).
    """
    from ci_kit.variables import pointed

    restore = contextlib.ExitStack()
    restore.enter_context(pointed(values))
    config.add_cleanup(restore.close)
