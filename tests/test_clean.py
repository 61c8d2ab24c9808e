"""``python -m ci_kit clean``: the kit's databases no live run uses go; nothing else does.

By default it takes only the project's base name's databases, with ``--all``
every dead run's on the server, other test sessions' included, so the tests that
clean for real do it on a private kept embedded server (a project of their own,
as ``python -m ci_kit server`` starts it), never on the shared test server, where
a concurrent session's databases would vanish under it. Only the failing
connection goes to the shared server.
"""

from __future__ import annotations

import ast
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from ci_kit import janitor
from ci_kit.admin import Admin, ensure_database
from ci_kit.cli import shown_name
from ci_kit.dburl import render, run_base_name, secret_forms
from ci_kit.locks import template_build_lock, template_use_lock
from ci_kit.marks import Mark, MarkKind
from ci_kit.postgres import reuse_data_dir
from tests.helpers.roles import literal
from tests.helpers.runs import run_kit
from tests.helpers.server import (
    TEST_PASSWORD,
    connect_to,
    create_unmarked,
    database_names,
    live_run,
    new_base_name,
)


@pytest.fixture
def project(private_project: Path, base: str) -> Iterator[Path]:
    """The project whose kept server the tests clean, its base name the test's ``base``."""
    pyproject = private_project / "pyproject.toml"
    pyproject.write_text(f"[tool.ci-kit]\nbase-name = '{base}'\n")
    yield private_project
    pyproject.unlink()


@pytest.fixture
def private_admin(private_url: URL) -> Iterator[Admin]:
    """The maintenance connection of the private server (the shared one's is ``admin``)."""
    admin = Admin(private_url)
    yield admin
    admin.close()


@pytest.fixture
def base() -> str:
    return new_base_name()


def clean(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_kit(project, "clean", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def make_template(admin: Admin, name: str, base: str) -> None:
    mark = Mark("template", f"built-{uuid.uuid4().hex[:6]}", base, ready=False)
    admin.create(name, mark)
    admin.seal_template(name, mark)


def ended_run_leftovers(admin: Admin, base: str) -> tuple[str, str, str]:
    """A crashed run's worker and fresh databases, and a template no run uses."""
    run = f"ended{uuid.uuid4().hex[:6]}"
    worker, fresh, template = f"{base}_gw0", f"{base}_gw0_f1", f"{base}_tpl_old"
    admin.create(worker, Mark("worker", run, base))
    admin.create(fresh, Mark("fresh", run, base))
    make_template(admin, template, base)
    return worker, fresh, template


def test_an_ended_runs_databases_and_an_unused_template_are_dropped(
    project: Path, private_admin: Admin, private_url: URL, base: str
) -> None:
    worker, fresh, template = ended_run_leftovers(private_admin, base)
    out = clean(project).stdout
    lines = out.splitlines()
    assert f"dropped {template} (template of {base})" in lines
    assert any(line.startswith(f"dropped {worker} (worker database of ended run") for line in lines)
    assert any(line.startswith(f"dropped {fresh} (fresh database of ended run") for line in lines)
    assert lines[-1].startswith("dropped ")
    assert lines[-1].endswith(
        f"of the kit's databases on the kept embedded server in {reuse_data_dir(project)} "
        f"for base '{base}'"
    )
    assert database_names(private_url, base) == set()


def test_a_dry_run_lists_what_would_go_and_drops_nothing(
    project: Path, private_admin: Admin, private_url: URL, base: str
) -> None:
    worker, fresh, template = ended_run_leftovers(private_admin, base)
    lines = clean(project, "--dry-run").stdout.splitlines()
    assert f"would drop {template} (template of {base})" in lines
    assert any(line.startswith(f"would drop {worker} (") for line in lines)
    assert not any(line.startswith("dropped") for line in lines)
    assert lines[-1].startswith("would drop ")
    assert database_names(private_url, base) == {worker, fresh, template}


def test_a_second_clean_finds_nothing_to_clean(
    project: Path, private_admin: Admin, base: str
) -> None:
    ended_run_leftovers(private_admin, base)
    clean(project)
    assert clean(project).stdout == (
        "nothing to clean: no database with the kit's mark on the kept embedded server in "
        f"{reuse_data_dir(project)} for base '{base}'\n"
    )


def test_a_database_a_live_run_takes_over_while_clean_runs_is_kept(
    private_admin: Admin, private_url: URL, base: str
) -> None:
    """Clean judges what it listed at its start; a live run may re-clone a name since."""
    ended = f"ended{uuid.uuid4().hex[:6]}"
    first, taken = f"{base}_a_gw0", f"{base}_b_gw0"
    for name in (first, taken):
        private_admin.create(name, Mark("worker", ended, base))
    live = f"live{uuid.uuid4().hex[:6]}"
    with live_run(private_url, live) as the_live_run:
        verdicts: dict[str, str | None] = {}
        for verdict in janitor.clean(private_admin, base=base):
            if not verdicts:  # the first one judged: ``taken`` comes after it
                the_live_run.set_mark(taken, Mark("worker", live, base))
            verdicts[verdict.name] = verdict.kept
        assert verdicts[first] is None
        assert verdicts[taken] == "taken over by a live run meanwhile"
        assert database_names(private_url, base) == {taken}


def test_unmarked_databases_with_the_kits_names_are_neither_listed_nor_dropped(
    project: Path, private_admin: Admin, private_url: URL, base: str
) -> None:
    names = {f"{base}_gw0", f"{base}_tpl_abc"}
    for name in names:
        create_unmarked(private_url, name)
    ensure_database(private_admin.server_url, f"{base}_dev")  # a developer's database: never marked
    out = clean(project).stdout
    assert out == (
        "nothing to clean: no database with the kit's mark on the kept embedded server in "
        f"{reuse_data_dir(project)} for base '{base}'\n"
    )
    assert database_names(private_url, base) == {*names, f"{base}_dev"}


@pytest.mark.parametrize(
    ("lock", "shared", "reason"),
    [
        (template_use_lock, True, "in use by a live run"),
        (template_build_lock, False, "being built by a live run"),
    ],
)
def test_a_template_a_live_run_clones_from_or_builds_is_kept(
    project: Path,
    private_admin: Admin,
    private_url: URL,
    base: str,
    lock: Callable[[str], str],
    shared: bool,
    reason: str,
) -> None:
    template = f"{base}_tpl_live"
    make_template(private_admin, template, base)
    live_run = Admin(private_url)
    try:
        live_run.lock(lock(template), shared=shared)
        assert f"kept {template}: {reason}" in clean(project).stdout.splitlines()
        assert database_names(private_url, base) == {template}
    finally:
        live_run.close()
    assert f"dropped {template} (template of {base})" in clean(project).stdout.splitlines()


def test_a_live_runs_worker_database_is_kept_until_the_run_ends(
    project: Path, private_admin: Admin, private_url: URL, base: str
) -> None:
    run = f"live{uuid.uuid4().hex[:6]}"
    worker = f"{base}_gw0"
    with live_run(private_url, run):
        private_admin.create(worker, Mark("worker", run, base))
        lines = clean(project).stdout.splitlines()
        assert f"kept {worker}: in use by a live run" in lines
        assert database_names(private_url, base) == {worker}
    dropped = f"dropped {worker} (worker database of ended run {run})"
    assert dropped in clean(project).stdout.splitlines()


def test_the_projects_configured_server_is_the_one_cleaned(
    tmp_path: Path, private_admin: Admin, private_url: URL, base: str
) -> None:
    configured = render(private_url.set(database=base))
    (tmp_path / "pyproject.toml").write_text(f"[tool.ci-kit]\nurl = '{configured}'\n")
    inside = tmp_path / "src" / "pkg"
    inside.mkdir(parents=True)
    worker, _, _ = ended_run_leftovers(private_admin, base)
    result = run_kit(inside, "clean")
    assert result.returncode == 0, result.stderr
    assert any(line.startswith(f"dropped {worker} (") for line in result.stdout.splitlines())
    assert database_names(private_url, base) == set()


def test_no_configured_server_and_no_kept_server_running_is_nothing_to_clean(
    tmp_path: Path,
) -> None:
    result = run_kit(tmp_path, "clean")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "nothing to clean: no server configured and the kept embedded server is not running\n"
    )
    assert not reuse_data_dir(tmp_path).exists()  # it was not started to be cleaned


def test_a_wrong_password_is_one_line_without_the_password(tmp_path: Path, server_url: URL) -> None:
    wrong = "wrong" + TEST_PASSWORD
    result = run_kit(tmp_path, "clean", url=server_url.set(password=wrong, database="x_test"))
    assert result.returncode == 4
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("ERROR: ci-kit: password authentication failed for role 'ci_kit'")
    for secret in secret_forms(wrong) | secret_forms(TEST_PASSWORD):
        assert secret not in result.stderr


def test_help_explains_the_command(tmp_path: Path) -> None:
    top = run_kit(tmp_path, "--help").stdout
    assert "{pytest,server,clean}" in top
    assert "clean: drop the kit's databases" in top
    detail = " ".join(run_kit(tmp_path, "clean", "--help").stdout.split())
    assert "--dry-run" in detail
    assert "a database without the kit's mark is never listed nor dropped" in detail
    assert "it is never started to be cleaned" in detail
    assert "By default only this project's: those of its base name" in detail
    assert "--all takes every base's" in detail


def test_a_dry_run_keeps_what_clean_keeps_other_roles_databases_included(
    project: Path, private_admin: Admin, private_url: URL, base: str
) -> None:
    """A shared server: clean, as a role without superuser, may drop only its own databases."""
    role, password = f"cleaner_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    with connect_to(private_url, "postgres") as conn:  # the kept server asks for a password
        conn.execute(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD {literal(password)}")
    as_role = private_url.set(username=role, password=password)
    others, _, _ = ended_run_leftovers(private_admin, base)  # the superuser's
    own = Admin(as_role)
    try:
        mine = f"{base}_mine_gw0"
        own.create(mine, Mark("worker", f"ended{uuid.uuid4().hex[:6]}", base))
        reason = (
            f"database '{others}' belongs to role 'postgres', not '{role}': only that role "
            "or a superuser may alter or drop it"
        )
        for args, verb in ((("--dry-run",), "would drop"), ((), "dropped")):
            result = run_kit(project, "clean", *args, url=as_role.set(database=base))
            assert result.returncode == 0, result.stderr
            lines = result.stdout.splitlines()
            assert f"kept {others}: {reason}" in lines
            assert any(line.startswith(f"{verb} {mine} (worker database") for line in lines)
        assert mine not in database_names(private_url, base)
        assert others in database_names(private_url, base)
    finally:
        own.close()
        for name in database_names(private_url, base):
            private_admin.drop(name, allowed=lambda mark: True)
        with connect_to(private_url, "postgres") as conn:
            conn.execute(f"DROP ROLE {role}")


THEIR_BASES: dict[str, Callable[[str, str, str], str]] = {
    "another project's base": lambda base, other, run: other,
    "a base that starts with this one's": lambda base, other, run: f"{base}_api",
    "another project's run's private base": lambda base, other, run: run_base_name(other, run),
}


@pytest.mark.parametrize("their_base", THEIR_BASES.values(), ids=THEIR_BASES.keys())
@pytest.mark.parametrize("kind", ["template", "worker"])
def test_by_default_only_the_projects_base_names_databases_go_and_all_takes_every_base(
    project: Path,
    private_admin: Admin,
    private_url: URL,
    base: str,
    kind: str,
    their_base: Callable[[str, str, str], str],
) -> None:
    """A shared server: one project's ``clean`` must not drop another's template."""
    run = f"ended{uuid.uuid4().hex[:6]}"
    ours = {*ended_run_leftovers(private_admin, base)}
    # A run that found the base busy used names of its own, marked with that base.
    private = run_base_name(base, run)
    private_names: dict[str, MarkKind] = {f"{private}_gw0": "worker", f"{private}_gw0_f1": "fresh"}
    for name, mark_kind in private_names.items():
        private_admin.create(name, Mark(mark_kind, run, private))
        ours.add(name)
    theirs = f"{base}_theirs"  # named like ours: only the mark tells whose it is
    mark_base = their_base(base, new_base_name(), run)
    if kind == "template":
        make_template(private_admin, theirs, mark_base)
    else:
        private_admin.create(theirs, Mark("worker", run, mark_base))

    out = clean(project).stdout
    assert theirs not in out
    lines = out.splitlines()
    assert {line.split()[1] for line in lines[:-1]} == ours
    assert lines[-1].startswith(f"dropped {len(ours)} and kept 0 ")
    assert lines[-1].endswith(f" for base '{base}'")
    assert database_names(private_url, base) == {theirs}

    assert any(
        line.startswith(f"would drop {theirs} (")
        for line in clean(project, "--all", "--dry-run").stdout.splitlines()
    )
    lines = clean(project, "--all").stdout.splitlines()
    assert any(line.startswith(f"dropped {theirs} (") for line in lines)
    assert lines[-1].endswith(
        f"on the kept embedded server in {reuse_data_dir(project)} (all bases)"
    )
    assert database_names(private_url, base) == set()


ODD_CHARACTERS = {
    "a newline": "\n",
    "a carriage return": "\r",
    "an escape sequence": "\x1b[2K",
    "a right-to-left override": "\u202e",
    "a tab": "\t",
    "a space": " ",
}


@pytest.mark.parametrize("odd", ODD_CHARACTERS.values(), ids=ODD_CHARACTERS.keys())
def test_a_name_that_is_not_plain_text_is_printed_escaped_on_its_own_line(
    project: Path, private_admin: Admin, private_url: URL, base: str, odd: str
) -> None:
    """Another role's database, or a forged mark, cannot forge or reorder ``clean``'s lines."""
    name, run = f"{base}_gw0{odd}dropped", f"ended{odd}{uuid.uuid4().hex[:6]}"
    private_admin.create(name, Mark("worker", run, base))
    for args, verb in ((("--dry-run",), "would drop"), ((), "dropped")):
        lines = clean(project, *args).stdout.splitlines()
        assert len(lines) == 2, lines
        assert lines[0] == f"{verb} {name!r} (worker database of ended run {run!r})"
        assert lines[1].startswith(f"{verb} 1 and kept 0 of the kit's databases on ")
    assert database_names(private_url, base) == set()


def name_shown_back(shown: str) -> str:
    """The name a printed one stands for: a quoted one is a Python string literal."""
    return str(ast.literal_eval(shown)) if shown[:1] in ("'", '"') else shown


@given(st.text())
@example("")
@example("'quoted'")
@example("a\u2028b")
@example("\u202eabc\u202c")
def test_every_name_is_printed_as_printable_text_that_stands_for_it_alone(name: str) -> None:
    shown = shown_name(name)
    assert shown.isprintable()  # no newline, control, format (bidi) or separator character
    assert name_shown_back(shown) == name  # so no two names print alike


@pytest.mark.parametrize(
    "name", ["app_test_gw0", "kit_1234abcd_test_tpl_0123456789ab", "tést_données", "o'brien_test"]
)
def test_a_plain_name_is_printed_as_it_is(name: str) -> None:
    assert shown_name(name) == name
