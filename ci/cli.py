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
pytest: prepare a ci-kit run (server, template) once, run pytest with it, clean
up. Every argument after 'pytest' is passed to pytest; --db-* options are also
read here. Configuration comes from [tool.ci-kit] in ./pyproject.toml and the
CI_KIT_* environment variables, as in the pytest plugin.

server: start or find the embedded PostgreSQL kept for this project."""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # pytest's arguments are passed on untouched, so they never meet argparse.
    if arguments[:1] == ["pytest"]:
        return run_pytest(arguments[1:], root=Path.cwd())
    options = _parser().parse_args(arguments)
    if options.command is None:
        _parser().print_help()
        return 2
    try:
        return _server(options.database, stop=options.stop, root=Path.cwd())
    except CiKitError as error:
        print(f"ci-kit: error: {error}", file=sys.stderr)
        return 4


def _server(database: str | None, *, stop: bool, root: Path) -> int:
    """Start or find this project's kept embedded server; print a URL for it."""
    from ci.dburl import render
    from ci.lifecycle import reuse_data_dir, start_embedded
    from ci.postgres import stop_persistent
    from ci.provision import Admin

    data_dir = reuse_data_dir(root)
    if stop:
        stopped = stop_persistent(data_dir)
        _say(f"stopped the server in {data_dir}" if stopped else "no server was running")
        return 0
    table = read_pyproject_table(root) or {}
    config = load_config(root, {**table, "reuse": True, "server": "embedded"}, os.environ, {})
    url = start_embedded(config, log=lambda message: print(message, file=sys.stderr))
    if database:
        admin = Admin(url)
        try:
            if admin.ensure_database(database):
                print(f"ci-kit: created database {database}", file=sys.stderr)
        finally:
            admin.close()
        url = url.set(database=database)
    print(render(url))
    return 0


def run_pytest(pytest_args: Sequence[str], *, root: Path) -> int:
    """Prepare, run ``python -m pytest`` with the plan in its environment, clean up."""
    options, _ = _db_options().parse_known_args(pytest_args)
    try:
        # Asking for this wrapper enables the kit, [tool.ci-kit] table or not.
        table = read_pyproject_table(root) or {}
        config = load_config(root, table, os.environ, vars(options))
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
        parser.add_argument(setting.flag, **setting.option_kwargs(with_choices=False))
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ci",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="{pytest,server}")
    commands.add_parser("pytest", help="prepare the run, then: pytest ARGS...")
    server = commands.add_parser(
        "server",
        help="start (or find) this project's kept embedded server and print its URL",
        description="Start, or find running, the embedded PostgreSQL kept for this project "
        "(the one --db-reuse uses) and print a URL for it on stdout, e.g. for "
        "DATABASE_URL when running an application locally.",
    )
    server.add_argument(
        "--database", metavar="NAME", help="create NAME if missing and print its URL instead"
    )
    server.add_argument("--stop", action="store_true", help="stop the kept server")
    return parser


def _say(message: str) -> None:
    print(f"ci-kit: {message}", flush=True)


def _quiet(message: str) -> None:
    """Commands are echoed only in verbose runs."""
