"""``python -m ci_kit``: run pytest with the kit on, and keep a server for local work.

``python -m ci_kit pytest ARGS`` is ``pytest ARGS`` with the kit enabled, whether
or not the project has a ``[tool.ci-kit]`` table: the process becomes that
pytest run, so the project root, its configuration and the preparation are
exactly those of the plugin in a plain ``pytest`` run (one path prepares a run).
``python -m ci_kit server`` starts the embedded server kept for the project that
pytest's rootdir rule finds from the current directory (or ``--rootdir``);
``python -m ci_kit clean`` drops the kit's databases no live run uses from that
project's server.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ci_kit.config import load_config, read_pyproject_table
from ci_kit.errors import CiKitError
from ci_kit.project import find_rootdir
from ci_kit.requested import PLUGIN_NAME as REQUESTED_PLUGIN

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from ci_kit.janitor import Verdict

_DESCRIPTION = """pytest: run pytest with ci-kit enabled (a database per xdist worker), even in a
project without a [tool.ci-kit] table; every argument after 'pytest' goes to
pytest, --ci-kit-* options included. Configuration comes from [tool.ci-kit] in
the pyproject.toml of pytest's rootdir, the ci_kit_* ini options, and the
CI_KIT_* environment variables.

server: start or find the embedded PostgreSQL kept for this project (from
[tool.ci-kit] and CI_KIT_* only: it is not a pytest run, ini options do not apply).

"This project" is the directory pytest would take as its rootdir here, unless
--rootdir names it: a run given a subproject's tests (pytest backend/tests) keeps
its server under the subproject's rootdir, as its closing line says. server --list
shows every kept server of yours, every project's; server --stop --all frees them.

clean: drop the kit's databases that no live run uses (templates, a crashed
run's worker databases) from this project's server: by default only those of
this project's base name, with --all every base's; never a database without
the kit's mark."""

_NOTHING_RUNNING = (
    "nothing to clean: no server configured and the kept embedded server is not running"
)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # pytest's arguments are passed on untouched, so they never meet argparse.
    if arguments[:1] == ["pytest"]:
        return run_pytest(arguments[1:])
    parser = _parser()
    options = parser.parse_args(arguments)
    if options.command is None:
        parser.print_help()
        return 2
    if options.command == "server" and options.every_project and not options.stop:
        parser.error("--all goes with server --stop")
    root = options.rootdir or find_rootdir(Path.cwd())
    try:
        if options.command == "clean":
            return _clean(dry_run=options.dry_run, all_bases=options.all_bases, root=root)
        if options.list:
            return _list_kept()
        if options.stop:
            return _stop_every_kept() if options.every_project else _stop_kept(root)
        return _server(options.database, root=root)
    except CiKitError as error:
        print(f"ERROR: ci-kit: {error}", file=sys.stderr)
        return 4


def _server(database: str | None, *, root: Path) -> int:
    """Start or find this project's kept embedded server; print a URL for it."""
    from ci_kit.admin import ensure_database
    from ci_kit.dburl import render
    from ci_kit.logs import forwarded_to
    from ci_kit.postgres import start_embedded

    table = read_pyproject_table(root) or {}
    config = load_config(root, {**table, "reuse": True, "server": "embedded"}, os.environ, {})
    with forwarded_to(_say):  # its progress, in the form of its other lines
        url = start_embedded(config)
    if database:
        if ensure_database(url, database):
            print(f"ci-kit: created database {database}", file=sys.stderr)
        url = url.set(database=database)
    print(render(url))
    return 0


def _stop_kept(root: Path) -> int:
    """Stop this project's kept server and delete its cluster."""
    from ci_kit.postgres import discard_persistent, reuse_data_dir

    data_dir = reuse_data_dir(root)
    freed = discard_persistent(data_dir)
    _say(
        f"stopped the server in {data_dir} and removed it ({freed} MB freed)"
        if freed is not None
        else f"no kept server for {root}{_kept_nearby(root, 'server --stop')}"
    )
    return 0


def _stop_every_kept() -> int:
    """Stop and delete every kept server of this user's: what ``--list`` shows."""
    from ci_kit.postgres import discard_persistent
    from ci_kit.postgres.choice import kept_clusters

    kept = kept_clusters()
    for cluster in kept:
        freed = discard_persistent(cluster.data_dir)
        if freed is not None:
            _say(
                f"stopped the server of {_project_name(cluster.project)} in "
                f"{cluster.data_dir} and removed it ({freed} MB freed)"
            )
    if not kept:
        _say("no kept server of this user's")
    return 0


def _list_kept() -> int:
    """One line per kept server of this user's: its project, state, size and directory."""
    from ci_kit.postgres import postmaster
    from ci_kit.postgres.choice import kept_clusters
    from ci_kit.postgres.processes import size_mb

    kept = kept_clusters()
    for cluster in kept:
        state = "running" if postmaster(cluster.data_dir) is not None else "stopped"
        size = size_mb(cluster.data_dir)
        if cluster.data_dir.is_dir():  # not deleted meanwhile by a --stop elsewhere
            print(f"{_project_name(cluster.project)}: {state}, {size} MB, in {cluster.data_dir}")
    if not kept:
        _say("no kept server of this user's")
    return 0


def _project_name(project: Path | None) -> str:
    return str(project) if project else "(a project not noted: made by an older ci-kit)"


def _clean(*, dry_run: bool, all_bases: bool, root: Path) -> int:
    """List, then drop, the kit's databases on the project's server that no live run uses.

    Only the project's own base name's, unless ``all_bases``: a shared server holds
    other projects' templates, which their runs would otherwise have to rebuild.
    """
    from ci_kit import janitor
    from ci_kit.admin import Admin

    server = _server_to_clean(root)
    if server is None:
        print(f"{_NOTHING_RUNNING}{_kept_nearby(root, 'clean')}")
        return 0
    url, where, base_name = server
    base = None if all_bases else base_name
    verdicts: list[Verdict] = []
    admin = Admin(url)
    try:
        for verdict in janitor.clean(admin, base=base, dry_run=dry_run):
            print(_clean_line(verdict, dry_run=dry_run), flush=True)
            verdicts.append(verdict)
    finally:
        admin.close()
    print(_clean_summary(verdicts, where, base, dry_run=dry_run))
    return 0


def _kept_nearby(root: Path, command: str) -> str:
    """The kept servers of projects inside this one or around it, and how to reach them.

    A run started here with a subdirectory's tests keeps its server under that
    subdirectory's rootdir; finding "nothing" would leave it running in RAM.
    Unrelated projects' servers are not listed: they are not what was meant.
    """
    from ci_kit.postgres.choice import kept_clusters, kit_command

    here = Path.cwd().resolve()
    related = sorted(
        project
        for project in (cluster.project for cluster in kept_clusters())
        if project
        and project != root
        and (project.is_relative_to(here) or here.is_relative_to(project))
    )
    return "".join(f"; {project} has one: {kit_command(project, command)}" for project in related)


def _server_to_clean(root: Path) -> tuple[URL, str, str] | None:
    """The server the project's runs use, how to name it, and the project's base name;
    None if it is not running.

    The kept embedded server is found, never started: starting one to empty it
    would cost an initdb and clean nothing.
    """
    from ci_kit.dburl import mask
    from ci_kit.postgres import reuse_data_dir, running_url

    config = load_config(root, read_pyproject_table(root), os.environ, {})
    url = config.external_server()
    if url is not None:
        return url, mask(url), config.base_name
    data_dir = reuse_data_dir(root)
    kept = running_url(data_dir)
    if kept is None:
        return None
    return kept, f"the kept embedded server in {data_dir}", config.base_name


def _clean_line(verdict: Verdict, *, dry_run: bool) -> str:
    name, mark = shown_name(verdict.name), verdict.mark
    if verdict.kept is not None:
        return f"kept {name}: {verdict.kept}"
    what = (
        f"template of {shown_name(mark.base)}"
        if mark.kind == "template"
        else f"{mark.kind} database of ended run {shown_name(mark.run)}"
    )
    return f"{'would drop' if dry_run else 'dropped'} {name} ({what})"


def _clean_summary(
    verdicts: Sequence[Verdict], where: str, base: str | None, *, dry_run: bool
) -> str:
    # repr: the helper's escaping, always quoted, so the base reads apart from the text.
    scope = "(all bases)" if base is None else f"for base {base!r}"
    if not verdicts:
        return f"nothing to clean: no database with the kit's mark on {where} {scope}"
    kept = sum(verdict.kept is not None for verdict in verdicts)
    action = "would drop" if dry_run else "dropped"
    counts = f"{action} {len(verdicts) - kept} and kept {kept}"
    return f"{counts} of the kit's databases on {where} {scope}"


def shown_name(name: str) -> str:
    """A database name (or a mark's base or run) as ``clean`` prints it: one unambiguous word.

    Names come from every role's databases, so one may hold a newline, a control
    character or a right-to-left mark that would forge or reorder ``clean``'s lines.
    A name that is plain printable text without spaces stays as it is; any other
    is printed as Python's ``repr``, which escapes every non-printable character.
    A plain name starting with a quote is quoted too, so no bare name can be
    mistaken for a quoted one: different names always print differently.
    """
    plain = bool(name) and name.isprintable() and " " not in name and name[0] not in "'\""
    return name if plain else repr(name)


def run_pytest(pytest_args: Sequence[str]) -> NoReturn:
    """Become ``python -m pytest -p ci_kit.requested ARGS`` (and ``-p ci_kit.plugin``
    when ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` keeps pytest from loading it).

    The process is replaced rather than pytest run in it: pytest must import the
    plugin itself (to rewrite its asserts, and to find the root and configuration
    its own way), and signals then reach pytest directly.
    """
    # Without autoload pytest loads no entry point: the plugin itself is named too.
    plugin = ["-p", "ci_kit.plugin"] if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") else []
    argv = [sys.executable, "-m", "pytest", "-p", REQUESTED_PLUGIN, *plugin, *pytest_args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 (an argument list, no shell)


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in the kit's one-line form."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"ERROR: ci-kit: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m ci_kit",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="{pytest,server,clean}")
    commands.add_parser("pytest", help="pytest ARGS... with the kit enabled")
    server = commands.add_parser(
        "server",
        help="start (or find) this project's kept embedded server and print its URL",
        description="Start, or find running, the embedded PostgreSQL kept for this project "
        "(the one --ci-kit-reuse uses) and print a URL for it on stdout, e.g. for "
        "DATABASE_URL when running an application locally.",
    )
    action = server.add_mutually_exclusive_group()
    action.add_argument(
        "--database", metavar="NAME", help="create NAME if missing and print its URL instead"
    )
    action.add_argument(
        "--stop", action="store_true", help="stop the kept server and delete it, templates and all"
    )
    action.add_argument(
        "--list",
        action="store_true",
        help="list this user's kept servers, every project's: project, running or "
        "stopped, MB, directory",
    )
    server.add_argument(
        "--all",
        dest="every_project",
        action="store_true",
        help="with --stop: every kept server of this user's, every project's",
    )
    _add_rootdir(server)
    clean = commands.add_parser(
        "clean",
        help="drop this project's databases of the kit's that no live run uses",
        description="List, then drop, the databases the kit created on this project's "
        "server that no live run uses: templates that no run is cloning from or "
        "building, and worker and fresh databases of runs that have ended. By default "
        "only this project's: those of its base name ([tool.ci-kit] base-name, "
        "CI_KIT_BASE_NAME, else the URL's database, else 'test'), including a run's "
        "private <base>_<run> names; --all takes every base's, other projects' on a "
        "shared server included. Databases of a live run, and another role's that "
        "this role may not drop, are listed as kept, with the reason; a database "
        "without the kit's mark is never listed nor dropped. Names that are not plain "
        "text are printed escaped, as Python strings. The server is the project's "
        "configured one ([tool.ci-kit] url, CI_KIT_DATABASE_URL), else its kept "
        "embedded server if that is running (it is never started to be cleaned).",
    )
    clean.add_argument(
        "--dry-run", action="store_true", help="list what would be dropped; drop nothing"
    )
    clean.add_argument(
        "--all",
        dest="all_bases",
        action="store_true",
        help="every base's databases on the server, not only this project's base name's",
    )
    _add_rootdir(clean)
    return parser


def _directory(text: str) -> Path:
    path = Path(text).resolve()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {shown_name(text)}")
    return path


def _add_rootdir(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--rootdir",
        metavar="DIR",
        type=_directory,
        help="the project's directory, as pytest's --rootdir (default: the rootdir "
        "pytest finds from the current directory)",
    )


def _say(message: str) -> None:
    print(f"ci-kit: {message}", file=sys.stderr, flush=True)
