"""Which of the kit's databases may go, and when: the sweep, ``clean``, a run's clean-up.

pytest-xdist has no run-level teardown that always runs, so a killed worker or a
crashed run leaves databases behind, and the next run must take them without
ever touching a live run's or a person's. That judgement is policy, kept here in
one place apart from the DDL that carries it out (:mod:`ci_kit.admin`): a database
is judged by its mark and by whether the run named in it still holds its run
lock (in whatever database that run took it: :mod:`ci_kit.admin` looks in all),
never by its name. Like pytest-postgresql's janitor it imports no pytest:
a run's preparation and end (:mod:`ci_kit.lifecycle`) and ``python -m ci_kit
clean`` call the same functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from ci_kit.admin import Admin
from ci_kit.dburl import run_base_name
from ci_kit.errors import CiKitError, DatabaseInUse, ForeignDatabase, PermissionDenied
from ci_kit.locks import template_build_lock, template_use_lock
from ci_kit.marks import Mark

SWEEP_LOCK = "ci-kit:sweep"
"""The advisory lock every sweep and ``clean`` takes: whoever holds it keeps them off."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What a sweep or a clean decided about one marked database."""

    name: str
    mark: Mark
    kept: str | None = None
    """Why a live run still needs it; None when it was dropped (or, dry, would be)."""


def sweep(admin: Admin, *, run_id: str, base: str, keep_template: str) -> list[str]:
    """Drop what crashed runs left behind, and templates of this base's older schemas.

    Only marked databases are considered; a database of a live run, or a template
    another run is using or building, is left alone.
    """
    if not admin.try_lock(SWEEP_LOCK):
        return []  # another run is sweeping right now; what it misses, the next run takes
    try:
        return _sweep(admin, run_id=run_id, base=base, keep_template=keep_template)
    finally:
        admin.unlock(SWEEP_LOCK)


def clean(admin: Admin, *, base: str | None = None, dry_run: bool = False) -> Iterator[Verdict]:
    """Drop the kit's databases of ``base`` (None: of every base) that no live run uses.

    Sweep's rules without its run's scope: sealed templates go too, since a person
    asked. ``base`` keeps one project's clean off the databases of other projects
    sharing the server. Unmarked databases are not even listed. Lazy, so a person
    sees each database as it goes; it waits for a run's sweep to finish rather
    than race it for the same databases.
    """

    def in_scope(_name: str, mark: Mark) -> bool:
        return base is None or of_base(mark, base)

    with admin.locked(SWEEP_LOCK):
        yield from _judge(admin, in_scope, dry_run=dry_run)


def of_base(mark: Mark, base: str) -> bool:
    """Whether the marked database was made by a run of the project whose base name is ``base``.

    A template's mark names the configured base; a worker or fresh database's names
    the base its run used, which is the run's private ``run_base_name`` when another
    live run held the configured one. The mark carries the run id, so that private
    name is recomputed rather than guessed from a prefix: another project's base
    may start with this one's.
    """
    return mark.base in (base, run_base_name(base, mark.run))


def _sweep(admin: Admin, *, run_id: str, base: str, keep_template: str) -> list[str]:
    def in_scope(name: str, mark: Mark) -> bool:
        if mark.run == run_id or name == keep_template:
            return False
        # A sealed template of another base is that base's runs' to retire.
        return not (mark.kind == "template" and mark.ready and mark.base != base)

    verdicts = _judge(admin, in_scope, dry_run=False)
    return [verdict.name for verdict in verdicts if verdict.kept is None]


def _judge(
    admin: Admin, in_scope: Callable[[str, Mark], bool], *, dry_run: bool
) -> Iterator[Verdict]:
    """Decide, and unless ``dry_run`` drop, each marked database in scope."""
    for name, mark in sorted(admin.marks().items()):
        if mark is None or not in_scope(name, mark):
            continue
        with _claim(admin, name, mark) as kept:
            if kept is None:  # another role's: asked, not tried, so a dry run says it too
                kept = admin.drop_refusal(name)
            if kept is None and not dry_run:
                try:
                    # The mark must be the one judged: a live run may have re-cloned it since.
                    admin.drop(name, allowed=mark.__eq__)
                except ForeignDatabase:
                    kept = "taken over by a live run meanwhile"
                except (DatabaseInUse, PermissionDenied) as error:
                    kept = str(error)  # one stuck database must not block every run
        yield Verdict(name, mark, kept)


@contextmanager
def _claim(admin: Admin, name: str, mark: Mark) -> Iterator[str | None]:
    """Why a live run needs ``name``, or None: then it may be dropped inside the block.

    A worker or fresh database is free once its run is gone. A template is free
    when no run is building it and none holds it to clone from; both locks are
    kept for the block, so no run starts cloning or building it mid-drop.
    """
    if mark.kind != "template":
        yield "in use by a live run" if admin.run_is_alive(mark.run) else None
        return
    locks = (
        (template_build_lock(name), "being built by a live run"),
        (template_use_lock(name), "in use by a live run"),
    )
    with ExitStack() as held:
        busy: str | None = None
        for lock, reason in locks:
            if not admin.try_lock(lock):
                busy = reason
                break
            held.callback(admin.unlock, lock)
        yield busy


def drop_run_databases(admin: Admin, run_id: str) -> list[str]:
    """Drop every worker and fresh database this run created, including a dead worker's.

    One the server will not drop now (a session the role may not end is on it) is
    a warning line, and the others still go: the next run's sweep takes it.
    """
    names = [
        name
        for name, mark in admin.marks().items()
        if mark is not None and mark.run == run_id and mark.kind != "template"
    ]
    dropped: list[str] = []
    for name in names:
        try:
            admin.drop(name, allowed=lambda m: m.run == run_id and m.kind != "template")
        except CiKitError as error:
            logger.warning("kept %s: %s; the next run's sweep drops it", name, error)
            continue
        dropped.append(name)
    return dropped
