"""Invoke's entry point: ``invoke --list``. The tasks live in ``ci/deploy/``."""

from pathlib import Path

from ci.deploy.tasks import namespace

# The project deployed is this file's repository, wherever invoke is started.
ns = namespace(Path(__file__).resolve().parent)
