"""Virtual environments installed from a release's wheel (uv when present, else pip)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ci.deploy.shell import Shell

SMOKE_EXTRA = "smoke"
"""The sample wheel's extra for its e2e smoke tests (pytest and the HTTP clients).

The app's own dependencies (FastAPI, uvicorn, ...) are the wheel's base ones; a
venv of this module also runs the release's smoke tests, hence the extra.
"""

_COMPLETE = ".ci-kit-complete"


def uv_binary() -> str | None:
    """uv next to this interpreter (the kit's venv) or on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def install(shell: Shell, venv: Path, wheel: Path) -> Path:
    """A venv at ``venv`` with ``wheel[smoke]`` installed; kept if already complete.

    Venvs are not relocatable (scripts carry absolute paths), so it is built in
    place and marked complete last: a half-built one is rebuilt, never used.
    """
    if (venv / _COMPLETE).is_file():
        shell.log(f"{venv} is already installed")
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    requirement = f"{wheel.name.split('-')[0]}[{SMOKE_EXTRA}] @ {wheel.resolve().as_uri()}"
    uv = uv_binary()
    if uv:
        shell.run([uv, "venv", "--quiet", "--python", sys.executable, venv])
        shell.run(
            [uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", requirement]
        )
    else:
        shell.run([sys.executable, "-m", "venv", venv])
        shell.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", requirement])
    (venv / _COMPLETE).touch()
    return venv


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise FileNotFoundError(f"no site-packages in {venv}")
    return found[0]
