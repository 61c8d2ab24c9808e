"""SIGTERM taken like Ctrl-C while this process owns an ephemeral server, or prepares a run.

SIGTERM (a CI job's timeout, ``timeout``, ``docker stop``) ends a Python process at
once by default: no ``finally``, no atexit, and the postmaster, in its own session,
runs on with its cluster in RAM until the next run sweeps it. While this process
owns a server, SIGTERM raises KeyboardInterrupt instead, as SIGINT does, so both
take one path: pytest reports the interruption and runs its clean-ups, and atexit
stops whatever they missed. While a server is being stopped, both signals wait:
a stop cut short would leave its postmaster running.

Only the default dispositions are replaced, and restored once no server is owned.
A handler the program set itself, or ``SIG_IGN``, is its choice and stays; atexit
still stops the server if that handler exits.

An owner whose work runs outside the main thread (an xdist controller's preparation)
cannot be interrupted there: it gives :func:`hold` what cuts that work short, called
as the signal is taken, before the main thread's KeyboardInterrupt.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

_DEFAULTS: dict[signal.Signals, _Handler] = {
    signal.SIGINT: signal.default_int_handler,
    signal.SIGTERM: signal.SIG_DFL,
}


class _Guard:
    """The process-wide state: signal dispositions belong to the process, not to a server."""

    def __init__(self) -> None:
        self.owners: dict[int, Callable[[], object] | None] = {}
        """Each owner's ``on_interrupt``, None for an owner that has nothing to cut short."""
        self.installed: dict[signal.Signals, _Handler] = {}
        self.stopping = 0
        self.pending: list[signal.Signals] = []

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        received = signal.Signals(signum)
        if self.stopping:
            self.pending.append(received)
            return
        for cut_short in list(self.owners.values()):
            if cut_short is not None:
                cut_short()
        if received is signal.SIGINT:
            raise KeyboardInterrupt
        raise KeyboardInterrupt(received.name)


_GUARD = _Guard()


def hold(owner: object, *, on_interrupt: Callable[[], object] | None = None) -> None:
    """Take SIGINT and SIGTERM as KeyboardInterrupt until :func:`release` of ``owner``.

    ``on_interrupt``: called when either is taken, before the KeyboardInterrupt; it
    must be quick and must not raise. Handlers can only be set from the main thread:
    from another, nothing changes.
    """
    if not _in_main_thread():
        return
    if not _GUARD.owners:
        for number, default in _DEFAULTS.items():
            if signal.getsignal(number) == default:
                signal.signal(number, _GUARD.interrupt)
                _GUARD.installed[number] = default
    _GUARD.owners[id(owner)] = on_interrupt


def release(owner: object) -> None:
    """Give back the default dispositions once the last owner is gone."""
    _GUARD.owners.pop(id(owner), None)
    if _GUARD.owners or not _in_main_thread():
        return
    for number, default in _GUARD.installed.items():
        if signal.getsignal(number) == _GUARD.interrupt:  # not if someone replaced ours
            signal.signal(number, default)
    _GUARD.installed.clear()


@contextmanager
def taken_as_interrupt() -> Iterator[None]:
    """SIGTERM is KeyboardInterrupt for the block, as SIGINT is: for work that must unwind.

    A run preparing on an external server owns no cluster, yet a template half
    built when a CI timeout's SIGTERM arrives must be dropped as on Ctrl-C.
    """
    owner = object()
    hold(owner)
    try:
        yield
    finally:
        release(owner)


@contextmanager
def deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait for the block's end, then take effect (never dropped)."""
    _GUARD.stopping += 1
    try:
        yield
    finally:
        _GUARD.stopping -= 1
        if not _GUARD.stopping and _GUARD.pending:
            received = _GUARD.pending[0]
            _GUARD.pending.clear()
            signal.raise_signal(received)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
