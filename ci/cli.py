"""``python -m ci pytest ...``: prepare the databases, then run pytest on them.

Nox sessions (and anyone else) use this to do the worker-database setup before
pytest starts: the server is found or started, the template built or reused, and
pytest receives the plan through the environment, so its controller and workers
only clone. Arguments go to pytest unchanged; the ``--db-*`` options among them
are read here as well, with the same meaning as in the plugin.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ci.config import SETTINGS, load_config, read_pyproject_table
from ci.errors import CiKitError
from ci.lifecycle import PREPARED_RUN_ENV, prepare_run, prepared_run_to_env

_DESCRIPTION = """\
Prepare a ci-kit run (server, template) once, run pytest with it, clean up.
Every argument after 'pytest' is passed to pytest; --db-* options are also
read here. Configuration comes from [tool.ci-kit] in ./pyproject.toml and the
CI_KIT_* environment variables, as in the pytest plugin."""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] in ("-h", "--help") or arguments[0] != "pytest":
        _parser().print_help()
        return 0 if arguments and arguments[0] in ("-h", "--help") else 2
    return run_pytest(arguments[1:], root=Path.cwd())


def run_pytest(pytest_args: Sequence[str], *, root: Path) -> int:
    """Prepare, run ``python -m pytest`` with the plan in its environment, clean up."""
    options, _ = _db_options().parse_known_args(pytest_args)
    try:
        config = load_config(root, read_pyproject_table(root), os.environ, vars(options))
        if not config.enabled:
            config = load_config(root, {}, os.environ, vars(options))
        started = time.perf_counter()
        verbose = any(arg in ("-v", "-vv", "--verbose") for arg in pytest_args)
        run = prepare_run(config, log=_say, echo=_say if verbose else _quiet)
    except CiKitError as error:
        print(f"ci-kit: error: {error}", file=sys.stderr)
        return 4
    _say(f"prepared in {time.perf_counter() - started:.2f} s; starting pytest")
    environment = dict(os.environ, **{PREPARED_RUN_ENV: prepared_run_to_env(run.plan, run.report)})
    try:
        # The plan (with the server password) travels in the environment, never argv.
        return subprocess.call([sys.executable, "-m", "pytest", *pytest_args], env=environment)
    except KeyboardInterrupt:
        return 130
    finally:
        dropped = run.close()
        _say(f"cleaned up: dropped {len(dropped)} test database(s)")


def _db_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    for setting in SETTINGS:
        if setting.is_flag:
            parser.add_argument(setting.flag, dest=setting.dest, action="store_true")
        else:
            parser.add_argument(setting.flag, dest=setting.dest, default=None)
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ci",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["pytest"], help="the only command: run pytest")
    parser.add_argument("pytest_args", nargs="*", help="arguments for pytest, as given")
    return parser


def _say(message: str) -> None:
    print(f"ci-kit: {message}", flush=True)


def _quiet(message: str) -> None:
    """Commands are echoed only in verbose runs."""
