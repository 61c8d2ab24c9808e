"""Which filesystem a path lives on: the deploy refuses to keep its database in memory.

Only the deploy asks: its PostgreSQL cluster holds the deployed apps' data, which a
``tmpfs`` loses at the next boot. The mount table comes from psutil (``getmntent``
over ``/proc/self/mounts``, escapes such as ``\\040`` for a space already undone).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import psutil

RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
"""Filesystems in memory: what a cluster keeps there is gone at the next boot."""


def filesystem_type(path: Path, *, mounts: Iterable[tuple[str, str]] | None = None) -> str | None:
    """The type (``ext4``, ``tmpfs``...) of the filesystem ``path`` is or would be on.

    ``mounts`` is (mount point, type) in mount order, default the machine's. The
    mount whose point is the longest prefix of the path, links resolved, wins; of
    several on one point, the last mounted (it hides the others). None when there
    is no mount table to read (a container without ``/proc``).
    """
    if mounts is None:
        try:
            mounts = [(p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=True)]
        except OSError:
            return None
    target = Path(path).resolve()
    best: tuple[int, str] | None = None
    for point, kind in mounts:
        mount_point = Path(point)
        if mount_point == target or mount_point in target.parents:
            depth = len(mount_point.parts)
            if best is None or depth >= best[0]:
                best = (depth, kind)
    return None if best is None else best[1]
