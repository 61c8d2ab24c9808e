"""The public namespaces, ``ci_kit`` and ``ci_kit.postgres``: their names, and nothing else.

Both resolve some names on first use, so that importing the package costs nothing
heavy; a name they do not offer must still fail as any missing name does.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import ci_kit
import ci_kit.postgres


def test_every_public_name_of_the_kit_is_its_modules_own() -> None:
    for name in ci_kit.__all__:
        value = getattr(ci_kit, name)
        assert getattr(importlib.import_module(value.__module__), name) is value


def test_importing_the_kit_alone_imports_no_database_library() -> None:
    code = (
        "import sys, ci_kit; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("package", ["ci_kit", "ci_kit.postgres"])
def test_a_name_a_package_does_not_offer_is_an_ordinary_import_error(package: str) -> None:
    with pytest.raises(ImportError, match="cannot import name 'no_such_name'"):
        exec(f"from {package} import no_such_name")  # noqa: S102 - a constant statement
    assert not hasattr(importlib.import_module(package), "no_such_name")
