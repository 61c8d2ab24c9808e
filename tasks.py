"""Invoke's entry point: ``invoke --list``. The tasks live in ``ci/deploy/``."""

from ci.deploy.tasks import namespace

ns = namespace()
