"""The task layer with Invoke's MockContext: namespace, dry runs, push, and no leaked secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from invoke.collection import Collection
from invoke.config import Config
from invoke.context import MockContext
from invoke.exceptions import Exit
from invoke.runners import Result

from ci.deploy import manifest, tasks
from ci.deploy.config import load_deploy_config
from ci.deploy.errors import DeployError, SmokeTestsFailed
from ci.deploy.plan import Artifact, Image, Masker, Release
from ci.deploy.shell import Shell
from ci.deploy.smoke import SMOKE_MODULE, run_smoke_tests
from tests.automation.deploy_helpers import write_yaml

SHA = "0123456789abcdef0123456789abcdef01234567"
PASSWORD = "p@ss:w/rd%20 #?+"
REGISTRY_PASSWORD = "r3gistry pa$$word"
DIGEST = "sha256:" + "4" * 64


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The deployed project; the tests run elsewhere, as invoke may be started anywhere."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pyproject.toml").write_text("[project]\nname = 'not-this-one'\n")
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("CI_KIT_STAGING_DATABASE_PASSWORD", PASSWORD)
    monkeypatch.setenv("CI_KIT_REGISTRY_PASSWORD", REGISTRY_PASSWORD)
    monkeypatch.setenv("CI_KIT_STAGING_ADMIN_TOKEN", "admin-t0ken-value")
    return project


def settings(**image: Any) -> dict[str, Any]:
    return {
        "image": {"repository": "127.0.0.1:5000/app", "engine": "podman", **image},
        "environments": {
            "staging": {
                "port": 8801,
                "database_url": "postgresql://ci_kit@127.0.0.1:5432/finance_report_staging",
            },
            "production": {"port": 8802, "promote_from": "staging"},
        },
    }


def context(ns: Collection, run: dict[Any, Result], **image: Any) -> MockContext:
    """A context configured as invoke's executor configures one for a task of ``ns``."""
    machine = Path(ns.configuration()["deploy"]["project"]).parent / "machine"
    config = Config(overrides={"deploy": {**settings(**image), "state_root": str(machine)}})
    config.load_collection(ns.configuration())
    return MockContext(config=config, run=run, repeat=True)


def commands(ctx: MockContext) -> list[str]:
    return [call.args[0] for call in ctx.run.call_args_list]  # type: ignore[attr-defined]


def write_release(project: Path, image: Image | None) -> Release:
    releases = project / ".ci-kit" / "releases"
    dist = manifest.dist_dir(releases, SHA)
    dist.mkdir(parents=True)
    wheel = dist / "backend_sample-0.2.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    release = Release(
        SHA, "2026-11-25T10:00:00Z", "https://x.invalid/r.git",
        (Artifact(wheel.name, manifest.sha256_of(wheel)),), image,
    )  # fmt: skip
    manifest.save(releases, release)
    return release


def test_namespace_lists_every_task_with_help_for_every_flag(tmp_path: Path) -> None:
    ns = tasks.namespace(tmp_path)
    names = set(ns.task_names)
    assert {"build", "push", "e2e", "deploy.staging", "deploy.production"} <= names
    assert {"deploy.rollback", "deploy.status"} <= names
    for name in names:
        task = ns[name]
        assert task.__doc__, name
        for argument in task.get_arguments():
            assert argument.help, (name, argument.name)


def test_dry_run_prints_the_plan_masked_and_runs_only_queries(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = tasks.namespace(project)
    ctx = context(ns, {re.compile(r".*git rev-parse"): Result(SHA + "\n")})
    ns["deploy.staging"](ctx, commit="main", dry_run=True)
    out = capsys.readouterr().out
    assert f"deploy {SHA[:12]} to staging" in out
    assert "postgresql+psycopg://ci_kit:***@127.0.0.1:5432/finance_report_staging" in out
    assert f"1. state: history, releases and lock at {project.parent / 'machine'}" in out
    assert "2. build: wheel and sdist of 0123456789ab's backend_sample/" in out
    assert "alembic" in out
    assert "uvicorn" in out
    assert "nothing was changed" in out
    for secret in (PASSWORD, REGISTRY_PASSWORD, "admin-t0ken-value"):
        assert secret not in out
    assert all("git rev-parse" in command for command in commands(ctx))
    assert commands(ctx)[0].startswith(f"cd {project} && git rev-parse")
    assert str(project.parent / "machine" / "backend_sample" / "environments" / "staging") in out
    assert not (project / ".ci-kit").exists()
    assert not (project.parent / "machine").exists(), "a dry run reads state, writes none"


def test_invoke_dry_flag_is_a_dry_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ns = tasks.namespace(project)
    ctx = context(ns, {re.compile(r".*git rev-parse"): Result(SHA + "\n")})
    ctx.config.run.dry = True
    ns["deploy.staging"](ctx)
    assert "nothing was changed" in capsys.readouterr().out
    assert not (project / ".ci-kit").exists()


def test_production_refuses_a_commit_staging_never_ran(project: Path) -> None:
    write_release(project, None)
    ns = tasks.namespace(project)
    ctx = context(ns, {re.compile(r".*git rev-parse"): Result(SHA + "\n")})
    with pytest.raises(Exit, match="never went live on staging"):
        ns["deploy.production"](ctx, commit=SHA)


def test_build_refuses_a_dirty_work_tree(project: Path) -> None:
    ns = tasks.namespace(project)
    ctx = context(
        ns,
        {
            re.compile(r".*git rev-parse"): Result(SHA + "\n"),
            re.compile(r".*git status"): Result(" M backend_sample/app.py\n?? new_migration.py\n"),
        },
    )
    with pytest.raises(Exit, match=r"uncommitted changes \(backend_sample/app.py, new_migration"):
        ns["build"](ctx)


def test_push_logs_in_on_stdin_records_the_digest_and_does_not_repeat(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_release(project, Image("127.0.0.1:5000/app", SHA, "sha256:" + "1" * 64))
    ns = tasks.namespace(project)
    ctx = context(
        ns,
        {
            re.compile(r".*git rev-parse"): Result(SHA + "\n"),
            re.compile(r".*podman .*login"): Result("Login Succeeded!\n"),
            re.compile(r".*podman .*push"): Result(f"Writing manifest\n{DIGEST}\n"),
        },
        username="deployer",
        tls_verify=False,
    )
    ns["push"](ctx, commit=SHA)
    ran = commands(ctx)
    login = next(command for command in ran if " login " in command)
    assert "--password-stdin" in login
    assert "--username deployer" in login
    assert "--tls-verify=false" in login
    login_call = next(c for c in ctx.run.call_args_list if " login " in c.args[0])  # type: ignore[attr-defined]
    assert login_call.kwargs["in_stream"].getvalue() == REGISTRY_PASSWORD
    assert any("push --tls-verify=false --digestfile" in c and f"app:{SHA}" in c for c in ran)
    saved = manifest.load(project / ".ci-kit" / "releases", SHA)
    assert saved is not None
    assert saved.image is not None
    assert saved.image.digest == DIGEST
    assert saved.image.reference == f"127.0.0.1:5000/app@{DIGEST}"

    again = context(ns, {re.compile(r".*git rev-parse"): Result(SHA + "\n")}, username="deployer")
    ns["push"](again, commit=SHA)
    assert all("git rev-parse" in command for command in commands(again))
    out = capsys.readouterr().out
    assert "already pushed" in out
    for command in [*ran, out]:
        assert REGISTRY_PASSWORD not in command


def test_push_without_a_password_says_which_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_KIT_REGISTRY_PASSWORD")
    write_release(project, Image("127.0.0.1:5000/app", SHA, "sha256:1"))
    ns = tasks.namespace(project)
    ctx = context(ns, {re.compile(r".*git rev-parse"): Result(SHA + "\n")}, username="deployer")
    with pytest.raises(Exit, match="CI_KIT_REGISTRY_PASSWORD"):
        ns["push"](ctx, commit=SHA)


def test_shell_refuses_a_secret_in_argv_and_masks_output(project: Path) -> None:
    ctx = MockContext(run={re.compile(r".*"): Result(f"connected with {PASSWORD}\n")})
    lines: list[str] = []
    shell = Shell(ctx, Masker([PASSWORD]), lines.append)
    with pytest.raises(DeployError, match="a secret is in its arguments"):
        shell.run(["psql", f"postgresql://u:{PASSWORD}@h/db"])
    assert ctx.run.call_count == 0  # type: ignore[attr-defined]
    output = shell.run(["psql"], env={"PGPASSWORD": PASSWORD}, show=True)
    assert PASSWORD not in output.stdout
    assert not any(PASSWORD in line for line in lines)
    assert ctx.run.call_args.kwargs["env"] == {"PGPASSWORD": PASSWORD}  # type: ignore[attr-defined]


def test_failed_commands_are_reported_masked(project: Path) -> None:
    ctx = MockContext(run=Result(stderr=f"FATAL: password {PASSWORD} rejected\n", exited=2))
    shell = Shell(ctx, Masker([PASSWORD]), lambda _: None)
    with pytest.raises(DeployError) as raised:
        shell.run(["alembic", "upgrade", "head"])
    assert "exited 2" in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_config_from_invoke_proxies(project: Path) -> None:
    ctx = context(tasks.namespace(project), {})
    config = load_deploy_config(tasks._plain(ctx.config.deploy), {}, project)
    assert config.environment("production").promote_from == "staging"


def test_the_project_is_the_namespace_s_directory_not_the_working_directory(
    project: Path,
) -> None:
    ctx = context(tasks.namespace(project), {})
    config, _ = tasks.load(ctx)
    assert Path.cwd() != project
    assert config.root == project
    assert config.releases_dir == project / ".ci-kit" / "releases"
    assert config.build.directory == "backend_sample"


def test_a_runtime_config_file_may_point_the_tasks_at_another_project(
    project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    ctx = context(tasks.namespace(project), {})
    ctx.config.set_runtime_path(
        write_yaml(tmp_path / "run.yaml", {"deploy": {"project": str(clone)}})
    )
    ctx.config.load_runtime()
    config, _ = tasks.load(ctx)
    assert config.root == clone


def test_tasks_without_a_project_say_how_to_give_one(project: Path) -> None:
    ctx = MockContext(config=Config(overrides={"deploy": settings()}))
    with pytest.raises(Exit, match=r"namespace\(Path\(__file__\).resolve\(\).parent\)"):
        tasks.namespace(project)["deploy.status"](ctx)


def test_smoke_tests_that_never_start_say_why(tmp_path: Path) -> None:
    module = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / SMOKE_MODULE
    module.parent.mkdir(parents=True)
    module.touch()
    stopped = "ImportError while loading conftest\nE   Warning: install httpx2 instead.\n"
    ctx = MockContext(run={re.compile(r".*pytest"): Result(stdout=stopped, exited=4)})
    shell = Shell(ctx, Masker([]), lambda _: None)
    with pytest.raises(SmokeTestsFailed, match=r"\(pytest exit 4\): .*install httpx2 instead"):
        run_smoke_tests(shell, tmp_path / "venv", "http://127.0.0.1:1", "token")
