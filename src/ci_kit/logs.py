"""The kit's diagnostics are ``logging`` records under the ``ci_kit`` logger.

Every module logs to ``logging.getLogger(__name__)``: progress a person wants to see
(``starting embedded PostgreSQL ...``, ``building template ...``) at INFO, every
command the kit runs (``initdb``, ``pg_ctl``, a ``kill``) at DEBUG. So a user's
logging configuration, ``caplog`` and ``--log-cli-level`` see them as they see any
library's, and nothing is passed from function to function to print them.

A few lines must reach a person even when nobody configured logging (a run's
preparation happens before pytest's logging plugin exists): the plugin, the CLI
and this repository's tools forward the records to their own output for the time
they need them, with :func:`forwarded_to`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOGGER = "ci_kit"
"""The parent of every logger in the kit."""


class _Forward(logging.Handler):
    """Hands each record's message, as it was logged, to a callable."""

    def __init__(self, write: Callable[[str], None], level: int) -> None:
        super().__init__(level)
        self._write = write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(record.getMessage())
        except Exception:  # a broken terminal must not end a run: logging's own rule
            self.handleError(record)


@contextmanager
def forwarded_to(write: Callable[[str], None], *, level: int = logging.INFO) -> Iterator[None]:
    """Send the kit's records at ``level`` and above to ``write`` while the block runs.

    The ``ci_kit`` logger is opened down to ``level`` for the block if it is not
    already (its default, like every logger's, is the root's WARNING), and put back
    afterwards; records still propagate to the root's handlers as usual.
    """
    logger = logging.getLogger(LOGGER)
    handler = _Forward(write, level)
    previous = logger.level
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
