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
from pathlib import Path

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
