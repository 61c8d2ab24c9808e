"""Where a project's root is: pytest's rootdir rule, for the kit's commands too.

Inside pytest the plugin uses ``config.rootpath``. Outside it (``python -m ci_kit
server``, ``clean``, this repository's deploy tasks) the same directory must be
found, or the two would read different ``[tool.ci-kit]`` tables and key different
servers. This is pytest's rule for a run without path arguments, as its
``findpaths.locate_config`` applies it: walk up from the start directory to the
first configuration file that holds pytest settings; failing that, the first
``pyproject.toml`` met; failing that, the first ``setup.py``; else the start.
"""

from __future__ import annotations

import configparser
import tomllib
from collections.abc import Iterable
from pathlib import Path

from ci_kit.errors import ConfigurationError

_CONFIG_FILES = (
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
)


def find_rootdir(start: Path) -> Path:
    """The directory pytest would take as its rootdir when run in ``start`` without paths."""
    here = start.resolve()
    first_pyproject: Path | None = None
    for directory in (here, *here.parents):
        for name in _CONFIG_FILES:
            path = directory / name
            if not path.is_file():
                continue
            if name == "pyproject.toml" and first_pyproject is None:
                first_pyproject = directory
            if _holds_pytest_settings(path):
                return directory
    if first_pyproject is not None:
        return first_pyproject
    for directory in (here, *here.parents):
        if (directory / "setup.py").is_file():
            return directory
    return here


def _holds_pytest_settings(path: Path) -> bool:
    if path.name in {"pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml"}:
        return True  # always pytest's, even when empty
    if path.suffix == ".toml":
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return False  # pytest would stop with its own error; no root to find here
        tool = document.get("tool")
        return isinstance(tool, dict) and "pytest" in tool
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return False
    section = "pytest" if path.suffix == ".ini" else "tool:pytest"
    return parser.has_section(section)


def check_table_is_read(rootdir: Path, inipath: Path | None, starts: Iterable[Path]) -> None:
    """Refuse a run whose nearest ``[tool.ci-kit]`` is not in the rootdir's pyproject.

    From each place a run starts (its test paths, else the current directory), the
    nearest ``pyproject.toml`` below the rootdir is the project's: one holding a
    kit table there is what its author meant to configure the run with.
    """
    for start in starts:
        table = _nearer_table(rootdir.resolve(), start.resolve())
        if table is None:
            continue
        configuration = inipath or "no configuration file"
        raise ConfigurationError(
            f"[tool.ci-kit] in {table} is not read: pytest took {configuration} as its "
            f"configuration (rootdir {rootdir}), and the kit reads [tool.ci-kit] from the "
            f"rootdir's pyproject.toml only; give {table} a [tool.pytest.ini_options] table "
            f"(or pass -c {table}) so that pytest takes it, or move the table to "
            f"{rootdir / 'pyproject.toml'}"
        )


def _nearer_table(rootdir: Path, start: Path) -> Path | None:
    here = start if start.is_dir() else start.parent
    for directory in (here, *here.parents):
        if directory == rootdir:
            return None
        path = directory / "pyproject.toml"
        if path.is_file():
            return path if _holds_kit_table(path) else None
    return None


def _holds_kit_table(path: Path) -> bool:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False  # not a configuration anyone reads
    tool = document.get("tool")
    return isinstance(tool, dict) and "ci-kit" in tool
