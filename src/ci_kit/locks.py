"""The names of the kit's advisory locks, and how ``pg_locks`` shows one held.

Every run holds a session-level advisory lock named after its run id for as long
as it lives, so a later run can tell a crashed run's leftovers (lock free) from a
live run's databases (lock held) on the same server, from any host. Other locks
keep one run per plain base name, one build per template, and sweepers off
templates still being cloned.

PostgreSQL keeps advisory locks per database, and runs may connect to different
maintenance databases (``maintenance-db``), so a lock is taken in the session's
database and then checked against ``pg_locks``, which lists every database's
(:data:`GRANTED_LOCK`): a holder anywhere on the server counts. Taking and
checking them is :class:`ci_kit.admin.Admin`'s job; this module only names them.
"""

from __future__ import annotations

from ci_kit.dburl import advisory_lock_key

# A granted advisory lock on the key (high, low) as pg_advisory_lock(bigint) takes it,
# in whatever database: the one way the kit reads another session's lock.
GRANTED_LOCK = (
    "locktype = 'advisory' AND granted AND classid::bigint = %s AND objid::bigint = %s "
    "AND objsubid = 1"
)


def lock_tag(purpose: str) -> tuple[int, int]:
    """How ``pg_locks`` shows a bigint advisory key: its high and low 32 bits."""
    key = advisory_lock_key(purpose)
    return (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF


def run_lock(run_id: str) -> str:
    """The advisory lock a run holds for its whole life."""
    return f"ci-kit:run:{run_id}"


def base_lock(base: str) -> str:
    """Held by the run that uses the plain base name; a concurrent run picks another."""
    return f"ci-kit:base:{base}"


def template_use_lock(template: str) -> str:
    """Held shared by every run cloning a template; the sweeper needs it exclusive."""
    return f"ci-kit:use:{template}"


def template_build_lock(template: str) -> str:
    """Serialises builds of one template, so two runs starting together build it once."""
    return f"ci-kit:build:{template}"
