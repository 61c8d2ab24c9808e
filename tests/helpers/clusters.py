"""The embedded clusters the kit starts, found from the commands it logged or the server."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import psutil
from sqlalchemy.engine import URL

from ci_kit.connecting import connect
from ci_kit.postgres import EmbeddedPostgres

MakeServer = Callable[..., EmbeddedPostgres]
"""The ``make_server`` fixture: ``make(binaries, **options)``, stopped after the test."""

_COPIED = "copying the initialised cluster from "


def initdb_base(lines: list[str]) -> Path:
    """The temporary directory of the cluster the kit made, from its logged making:
    ``initdb -D <base>/data``, or the copy of a cached one ``... to <base>/data``."""
    line = next(line for line in lines if "initdb -D" in line or line.startswith(_COPIED))
    if line.startswith(_COPIED):
        return Path(line.rpartition(" to ")[2]).parent
    argv = shlex.split(line)
    return Path(argv[argv.index("-D") + 1]).parent


def cluster_directory(data_directory: str) -> Path:
    """The directory of the ephemeral cluster whose server reports ``data_directory``.

    The kit makes ``<cluster>/data`` with the socket and the log beside it, and deletes
    ``<cluster>`` when it stops: that is what must be gone after a run. Its URL no longer
    names it (TCP on 127.0.0.1), so tests ask the server: ``SHOW data_directory``.
    """
    return Path(data_directory).parent


def socket_url(url: URL) -> URL:
    """``url`` through the embedded server's private socket, where it trusts every role.

    Over TCP a role the server does not know fails like a wrong password, on purpose;
    only the socket lets a test see what the kit says of an unknown role.
    """
    with connect(url) as conn:
        row = conn.execute("SHOW unix_socket_directories").fetchone()
    assert row is not None
    socket_dir = str(row[0]).split(",")[0].strip()
    query = {"host": socket_dir, "port": str(url.port)}
    return URL.create(url.drivername, url.username, database=url.database, query=query)


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has ended: a postmaster ``pg_ctl`` started is not our child, so
    until init reaps it an ended one may linger as a zombie."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
