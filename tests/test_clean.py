"""``python -m ci_kit clean``: the kit's databases no live run uses go; nothing else does.

The command drops every dead run's database on the server it cleans, other test
sessions' included, so the tests that clean for real do it on a private kept
embedded server (a project of their own, as ``python -m ci_kit server`` starts
it), never on the shared test server, where a concurrent session's databases
would vanish under it. Only the failing connection goes to the shared server.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit import janitor
from ci_kit.admin import Admin, Mark, ensure_database, template_build_lock, template_use_lock
from ci_kit.dburl import render, secret_forms
from ci_kit.postgres import reuse_data_dir
from tests.helpers.runs import run_kit
from tests.helpers.server import (
    TEST_PASSWORD,
    connect_to,
    create_unmarked,
    database_names,
    live_run,
    new_base_name,
)


@pytest.fixture(scope="module")
def project(private_project: Path) -> Path:
    """The project whose kept server the tests clean."""
    return private_project


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
        f"of the kit's databases on the kept embedded server in {reuse_data_dir(project)}"
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
        f"{reuse_data_dir(project)}\n"
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
        for verdict in janitor.clean(private_admin):
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
    assert base not in out
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


def test_a_dry_run_keeps_what_clean_keeps_other_roles_databases_included(
    project: Path, private_admin: Admin, private_url: URL, base: str
) -> None:
    """A shared server: clean, as a role without superuser, may drop only its own databases."""
    role = f"cleaner_{uuid.uuid4().hex[:6]}"
    with connect_to(private_url, "postgres") as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN CREATEDB")
    as_role = private_url.set(username=role)
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
