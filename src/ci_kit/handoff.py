"""The run's plan, from the xdist controller to its workers, through their environment.

Not through ``workerinput``: xdist sends that to a worker only after the worker
has imported its conftests, and a conftest that imports the application builds
its engine from ``url-env`` at that very moment, so the worker must have cloned
its database before. A worker inherits the controller's environment when xdist
starts it: the plan waits there, set before the first worker starts.

The plan carries the server's password, so it lives in the environment (never
argv), only for this run, and each worker takes it out of its own environment at
once. The controller's pid travels along: a pytest that a test starts inside a
worker inherits the variable too, but is not the controller's child, so it leaves
the plan alone.

Imported by the plugin in every pytest process: the standard library and pytest
only, the plan's module once a worker of a kit run is found.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING

import pytest

from ci_kit.phases import import_libraries, phase

if TYPE_CHECKING:
    from ci_kit.plan import RunPlan

PLAN_ENV = "CI_KIT_RUN_PLAN"
_WORKER_ENV = "PYTEST_XDIST_WORKER"  # xdist's, in every worker's environment


def hand_to_workers(config: pytest.Config, plan: RunPlan) -> None:
    """Put ``plan`` where the workers xdist is about to start will find it."""
    wire = {"controller": os.getpid(), "plan": plan.to_wire()}
    set_for_the_run(config, {PLAN_ENV: json.dumps(wire)})


def plan_from_controller(
    config: pytest.Config, environ: MutableMapping[str, str]
) -> tuple[RunPlan, str] | None:
    """This worker's plan and id, taken out of ``environ``; None unless this process
    is an xdist worker that the run's controller started."""
    raw = environ.get(PLAN_ENV)
    worker_id = environ.get(_WORKER_ENV)
    if not raw or not worker_id:
        return None
    wire = json.loads(raw)
    if wire["controller"] != os.getppid():
        return None
    del environ[PLAN_ENV]  # the password goes no further than this worker
    import_libraries(config.stash)
    with phase(config.stash, "import"):
        from ci_kit.plan import RunPlan

    return RunPlan.from_wire(wire["plan"]), worker_id


def set_for_the_run(config: pytest.Config, values: Mapping[str, str]) -> None:
    """``os.environ.update(values)`` until the run ends, then what each held.

    The environment is how the run reaches what it does not call: its workers
    (the plan) and the application's settings (``url-env``, ``[tool.ci-kit.env]``).
    """
    from ci_kit.variables import pointed

    restore = contextlib.ExitStack()
    restore.enter_context(pointed(values))
    config.add_cleanup(restore.close)
