"""A run's template built once, and its clones: the policies over :class:`Admin`'s DDL.

Which existing database a run may replace, and when a template is complete, are
decided here from marks and locks; :mod:`ci_kit.admin` only carries the DDL out.
A template is sealed (marked ready) only after its build succeeds, so a run never
clones a half-built one, and a clone replaces an earlier copy only if it was this
run's or a dead run's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from sqlalchemy.engine import URL

from ci_kit.admin import Admin
from ci_kit.errors import ForeignDatabase
from ci_kit.locks import template_build_lock, template_use_lock
from ci_kit.marks import Mark

logger = logging.getLogger(__name__)


def ensure_template(
    admin: Admin,
    name: str,
    *,
    base: str,
    run_id: str,
    build: Callable[[URL], None],
) -> bool:
    """Make sure a complete template ``name`` exists; True when this run built it.

    The run keeps a shared lock on the template so no sweeper drops it while the
    run may still clone it. Builds are serialised by a second lock: a run that
    waited for another's build finds the template sealed and reuses it.
    """
    admin.lock(template_use_lock(name), shared=True)
    if _is_sealed(admin, name):
        return False

    def waiting() -> None:
        logger.info("waiting for another run to finish building template %s", name)

    with admin.locked(template_build_lock(name), waiting=waiting):
        if _is_sealed(admin, name):
            return False
        # Unsealed and nobody building it: a crashed build's leftovers.
        admin.drop(name, allowed=_is_template)
        mark = Mark("template", run_id, base, ready=False)
        created = admin.create(name, mark)
        try:
            build(admin.url_of(name))
        except BaseException:
            # By oid, not mark: the build's migrations may have overwritten the comment.
            admin.discard(name, created)
            raise
        admin.seal_template(name, mark)
    return True


def clone(admin: Admin, template: str, name: str, mark: Mark, settings: Mapping[str, str]) -> None:
    """(Re)create ``name`` from the template: an earlier copy must be this run's or a dead run's."""
    admin.drop(name, allowed=lambda existing: _replaceable(admin, existing, mark))
    admin.create(name, mark, template=template)
    admin.copy_settings(template, name)
    admin.apply_settings(name, settings)  # the configuration's, over the template's


def check_free(admin: Admin, name: str, mark: Mark) -> None:
    """Raise unless :func:`clone` may (re)create ``name``: free, or an earlier copy of ours."""
    exists, existing = admin.mark_of(name)
    if exists and (existing is None or not _replaceable(admin, existing, mark)):
        raise ForeignDatabase(
            f"database {name!r} exists and was not created by the kit (or belongs to a "
            "live run), and an xdist worker of this run needs that name: drop or rename "
            "it yourself, or choose another base name"
        )


def _replaceable(admin: Admin, existing: Mark, mark: Mark) -> bool:
    """Whether ``existing`` may go for ``mark``: a live run's copy is never taken over."""
    return existing.kind == mark.kind and (
        existing.run == mark.run or not admin.run_is_alive(existing.run)
    )


def _is_sealed(admin: Admin, name: str) -> bool:
    exists, mark = admin.mark_of(name)
    return exists and mark is not None and mark.kind == "template" and mark.ready


def _is_template(mark: Mark) -> bool:
    return mark.kind == "template"
