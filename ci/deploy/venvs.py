"""Virtual environments installed from a release's wheel and lock (uv when present, else pip)."""

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


def install(shell: Shell, venv: Path, wheel: Path, *, lock: Path | None = None) -> Path:
    """A venv at ``venv`` with ``wheel[smoke]`` installed; kept if already complete.

    With the release's ``lock`` (``requirements.lock``), exactly its pinned versions
    are installed, every file checked against its hash (``--require-hashes``), then
    the wheel alone (``--no-deps``): every environment of a release runs the same
    packages. Without one (a release built before locks), the wheel's dependencies
    are resolved now, as they always were.

    Venvs are not relocatable (scripts carry absolute paths), so it is built in
    place and marked complete last: a half-built one is rebuilt, never used.
    """
    if (venv / _COMPLETE).is_file():
        shell.log(f"{venv} is already installed")
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    uv = uv_binary()
    pip: list[str | Path]
    if uv:
        shell.run([uv, "venv", "--quiet", "--python", sys.executable, venv])
        pip = [uv, "pip", "install", "--python", venv / "bin" / "python"]
    else:
        shell.run([sys.executable, "-m", "venv", venv])
        pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
    if lock is None:
        requirement = f"{dist_name(wheel)}[{SMOKE_EXTRA}] @ {wheel.resolve().as_uri()}"
        shell.run([*pip, requirement], step="install")
    else:
        shell.run([*pip, "--require-hashes", "-r", lock.resolve()], step="install")
        shell.run([*pip, "--no-deps", wheel.resolve()], step="install")
    (venv / _COMPLETE).touch()
    return venv


def dist_name(wheel: Path) -> str:
    """The distribution name in a wheel's file name (``backend_sample-0.2.0-py3-...``)."""
    return wheel.name.split("-")[0]


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise FileNotFoundError(f"no site-packages in {venv}")
    return found[0]
