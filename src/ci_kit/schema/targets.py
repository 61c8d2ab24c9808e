"""The user's ``package.module:attribute`` targets: their shape, and importing them.

A schema's metadata and a seed function are both named this way and both come
from the project, whose root is not always on ``sys.path`` (pytest's rootdir is
not, under the default import mode): importing them is done here, once, with
errors that name the setting and the target.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from ci_kit.errors import CiKitError, first_line


def split_target(value: str) -> tuple[str, str] | None:
    """``(module, attribute)`` of ``package.module:attribute``; None for any other shape."""
    module, separator, attribute = value.partition(":")
    return (module, attribute) if separator and module and attribute else None


def resolve_target(
    target: str, root: Path, *, what: str, error: type[CiKitError]
) -> tuple[ModuleType, object]:
    """Import ``target``'s module from the project and return it with the attribute named.

    ``what`` names the setting in the one-line ``error`` raised when the module
    does not import or lacks the attribute.
    """
    module_name, _, attribute = target.partition(":")
    with _importable_from(root):
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as failure:  # a module may sys.exit() when misconfigured
            raise error(
                f"{what} {target!r} does not import: {type(failure).__name__}: "
                f"{first_line(failure)}"
            ) from failure
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise error(
                f"{what} {target!r}: module {module_name!r} has no attribute {part!r}"
            ) from None
    return module, value


@contextmanager
def _importable_from(root: Path) -> Iterator[None]:
    """Put the project root on ``sys.path`` while importing a user's module."""
    entry = str(root)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added:
            sys.path.remove(entry)
