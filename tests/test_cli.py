"""``python -m ci_kit``: pytest with the kit on (as nox runs the sample), and a kept server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import render
from tests.helpers.projects import seen, write_project
from tests.helpers.server import TEST_PASSWORD, database_names


def run_python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def run_cli(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    return run_python(pytester.path, "-m", "ci_kit", *args)


def test_prepares_once_and_pytest_workers_only_clone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str
) -> None:
    log = write_project(pytester, base_name, count=4)
    monkeypatch.setenv("CI_KIT_DATABASE_URL", render(server_url.set(database=base_name)))
    result = run_cli(pytester, "pytest", "-n", "2", "-p", "no:randomly")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "ci-kit: building template" in out
    assert "ci-kit: 8 tests (8 passed) on 2 workers" in out
    assert out.count("building template") == 1
    assert TEST_PASSWORD not in out + result.stderr
    assert {row["db"] for row in seen(log)} <= {f"{base_name}_gw0", f"{base_name}_gw1"}
    assert database_names(server_url, f"{base_name}_gw") == set()


def test_pytest_failures_set_the_exit_code(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str
) -> None:
    write_project(pytester, base_name, count=1)
    pytester.makepyfile(test_fails="def test_fails(db_url):\n    assert False\n")
    monkeypatch.setenv("CI_KIT_DATABASE_URL", render(server_url.set(database=base_name)))
    result = run_cli(pytester, "pytest", "-p", "no:randomly")
    assert result.returncode == 1
    assert "ci-kit: 3 tests (2 passed, 1 failed) on 1 process" in result.stdout
    assert database_names(server_url, base_name) == {template_of(server_url, base_name)}


def template_of(server_url: URL, base_name: str) -> str:
    (template,) = database_names(server_url, f"{base_name}_tpl_")
    return template


def test_asking_for_the_kit_enables_it_without_a_table(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_plain="def test_db(db_url):\n    assert db_url.database == 'test'\n")
    plain_pytest = ("-m", "pytest", "-p", "no:randomly")
    monkeypatch.setenv("CI_KIT_SERVER", "embedded")
    setting_given = run_python(pytester.path, *plain_pytest)
    assert "ci-kit: 1 tests (1 passed)" in setting_given.stdout
    monkeypatch.delenv("CI_KIT_SERVER")
    monkeypatch.setenv("CI_KIT_REUSE", "0")  # a false boolean is not a request
    off = run_python(pytester.path, *plain_pytest)
    assert off.returncode == 1
    assert "ci-kit is not enabled for this run" in off.stdout
    on = run_cli(pytester, "pytest", "-p", "no:randomly")
    assert on.returncode == 0, on.stdout + on.stderr
    assert "(embedded)" in on.stdout


def test_from_a_subdirectory_it_behaves_as_pytest_does_there(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str
) -> None:
    write_project(pytester, base_name, count=1)
    pyproject = pytester.path / "pyproject.toml"
    # As a project whose tests import its modules says so: pytest's own pythonpath.
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.pytest.ini_options]\npythonpath = ["."]\n'
    )
    monkeypatch.setenv("CI_KIT_DATABASE_URL", render(server_url.set(database=base_name)))
    sub = pytester.mkdir("sub")
    (sub / "test_sub.py").write_text(
        "from sqlalchemy import func, select\nfrom models import Item\n\n"
        "def test_schema_is_the_projects(db_session):\n"
        "    assert db_session.scalar(select(func.count()).select_from(Item)) == 0\n"
    )
    result = run_python(
        sub, "-m", "ci_kit", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"rootdir: {pytester.path}" in result.stdout
    assert "ci-kit: 1 tests (1 passed)" in result.stdout


def test_configuration_errors_are_one_line(pytester: pytest.Pytester) -> None:
    write_project(pytester, "app_test")
    result = run_cli(pytester, "pytest", "--ci-kit-url", "mysql://u:hunter2@h/app_test")
    assert result.returncode == 4
    assert result.stderr.strip().startswith("ERROR: ci-kit:")
    assert "is not a PostgreSQL URL" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_explains_the_command(pytester: pytest.Pytester) -> None:
    result = run_cli(pytester, "--help")
    assert result.returncode == 0
    assert "pytest with ci-kit enabled" in result.stdout.replace("\n", " ")
    assert "{pytest,server,clean}" in result.stdout
    assert run_cli(pytester).returncode == 2
    wrong = run_cli(pytester, "serve")
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("ERROR: ci-kit: argument {pytest,server,clean}: invalid")
    assert len(wrong.stderr.strip().splitlines()) == 1


def test_server_keeps_an_embedded_postgres_for_local_development(
    pytester: pytest.Pytester,
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        first = run_cli(pytester, "server", "--database", "app_dev")
        assert first.returncode == 0, first.stderr
        url = make_url(first.stdout.strip())
        assert url.database == "app_dev"
        engine = create_engine(url)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT current_database()")) == "app_dev"
        engine.dispose()
        again = run_cli(pytester, "server", "--database", "app_dev")
        assert again.stdout == first.stdout
        assert "created database" not in again.stderr
    finally:
        stopped = run_cli(pytester, "server", "--stop")
    assert "stopped the server" in stopped.stderr
    assert "MB freed" in stopped.stderr
    from ci_kit.postgres import reuse_data_dir

    assert not reuse_data_dir(pytester.path).exists(), "nothing of it left in /dev/shm"
    assert "no kept server" in run_cli(pytester, "server", "--stop").stderr


def test_a_kept_server_is_found_from_the_directory_the_run_started_in(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A run given a subproject's tests keeps its server under the subproject's rootdir.

    From the directory the run started in, ``server --stop`` and ``clean`` find
    pytest's rootdir of *that* directory: they name the subproject's kept server
    and the exact command, and the run's closing line gave that command already.
    """
    from ci_kit.postgres import discard_persistent, reuse_data_dir

    outer = pytester.path
    sub = outer / "sub"
    (outer / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (sub / "tests").mkdir(parents=True)
    (sub / "pyproject.toml").write_text("[tool.pytest.ini_options]\n\n[tool.ci-kit]\n")
    (sub / "tests" / "test_db.py").write_text("def test_db(db_url):\n    assert db_url\n")
    try:
        run = run_cli(pytester, "pytest", "sub/tests", "--ci-kit-reuse", "-p", "no:randomly")
        assert run.returncode == 0, run.stdout + run.stderr
        stop_sub = f"python -m ci_kit server --stop --rootdir {sub}"
        assert f"(embedded, kept running: {stop_sub} stops it)" in run.stdout
        stop_here = run_cli(pytester, "server", "--stop")
        assert stop_here.stderr == (
            f"ci-kit: no kept server for {outer}; {sub} has one: {stop_sub}\n"
        )
        clean_here = run_cli(pytester, "clean")
        assert clean_here.stdout.endswith(
            f"; {sub} has one: python -m ci_kit clean --rootdir {sub}\n"
        )
        elsewhere = tmp_path_factory.mktemp("unrelated")
        unrelated = run_python(elsewhere, "-m", "ci_kit", "server", "--stop")
        assert unrelated.stderr == f"ci-kit: no kept server for {elsewhere}\n"
        assert reuse_data_dir(sub).is_dir(), "none of them stopped it"
        stopped = run_cli(pytester, "server", "--stop", "--rootdir", "sub")
        assert stopped.stderr.startswith(f"ci-kit: stopped the server in {reuse_data_dir(sub)}")
        assert not reuse_data_dir(sub).exists()
    finally:
        discard_persistent(reuse_data_dir(sub))


@pytest.mark.parametrize("command", ["server", "clean"])
@pytest.mark.parametrize("given", ["missing", "a_file"])
def test_a_rootdir_that_is_no_directory_is_one_line(
    pytester: pytest.Pytester, command: str, given: str
) -> None:
    pytester.makefile(".txt", a_file="")
    path = given + (".txt" if given == "a_file" else "")
    result = run_cli(pytester, command, "--rootdir", path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"ERROR: ci-kit: argument --rootdir: no such directory: {path}")
    assert len(result.stderr.splitlines()) == 1


def test_every_kept_server_is_listed_and_stopped_together(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``server --list`` names each kept server's project; ``server --stop --all`` frees them.

    ``--stop --all`` runs in this process, held to this test's two projects: in a
    subprocess it would also stop the kept servers of the tests running beside it.
    """
    from ci_kit import cli
    from ci_kit.postgres import choice, discard_persistent, reuse_data_dir

    projects = [pytester.mkdir("one"), pytester.mkdir("two")]
    # A kept cluster an older kit made: no note of its project. In a temp dir of its
    # own, short enough for the kit to keep clusters in (a socket's path is bounded).
    temp = Path(tempfile.mkdtemp(prefix="ck-list-", dir="/tmp"))
    unnoted = temp / f"{choice.KEPT_PREFIX}{os.getuid()}-older"
    unnoted.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    try:
        for project in projects:
            (project / "pyproject.toml").write_text("[tool.ci-kit]\n")
            started = run_python(project, "-m", "ci_kit", "server")
            assert started.returncode == 0, started.stderr
        listed = run_cli(pytester, "server", "--list").stdout.splitlines()
        for project in projects:
            line = [line for line in listed if line.startswith(f"{project}: running, ")]
            assert line, listed
            assert line[0].endswith(f" MB, in {reuse_data_dir(project)}")
        older = f"(a project not noted: made by an older ci-kit): stopped, 0 MB, in {unnoted}"
        assert older in listed
        everything = choice.kept_clusters
        monkeypatch.setattr(
            choice, "kept_clusters", lambda: [c for c in everything() if c.project in projects]
        )
        assert cli.main(["server", "--stop", "--all"]) == 0
        said = capsys.readouterr().err.splitlines()
        assert [line.split(" in ")[0] for line in said] == [
            f"ci-kit: stopped the server of {project}" for project in projects
        ]
        assert not any(reuse_data_dir(project).exists() for project in projects)
        assert cli.main(["server", "--stop", "--all"]) == 0
        assert capsys.readouterr().err == "ci-kit: no kept server of this user's\n"
    finally:
        for project in projects:
            discard_persistent(reuse_data_dir(project))
        shutil.rmtree(temp)


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        (["--all"], "--all goes with server --stop"),
        (["--list", "--all"], "--all goes with server --stop"),
        (["--list", "--stop"], "argument --stop: not allowed with argument --list"),
        (["--database", "x", "--stop"], "argument --stop: not allowed with argument --database"),
    ],
)
def test_server_options_that_do_not_go_together_are_one_line(
    pytester: pytest.Pytester, given: list[str], refused: str
) -> None:
    result = run_cli(pytester, "server", *given)
    assert result.returncode == 2
    assert result.stderr.startswith(f"ERROR: ci-kit: {refused} (see python -m ci_kit")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("given", [["--list"], ["--stop", "--all"]])
def test_no_kept_server_at_all_is_said(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], given: list[str]
) -> None:
    """In this process, with the cluster listing emptied: the tests beside it keep servers."""
    from ci_kit import cli
    from ci_kit.postgres import choice

    monkeypatch.setattr(choice, "kept_clusters", list)
    assert cli.main(["server", *given]) == 0
    assert capsys.readouterr() == ("", "ci-kit: no kept server of this user's\n")
