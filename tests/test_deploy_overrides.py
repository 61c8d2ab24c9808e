"""INVOKE_DEPLOY_* variables: parsed by each setting's kind, over what Invoke made of them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from invoke.config import Config
from invoke.context import MockContext

from ci.deploy import tasks
from ci.deploy.config import DEFAULTS, ENVIRONMENT_DEFAULTS
from ci.deploy.errors import DeployConfigError
from ci.deploy.overrides import Kind, Setting, above_environment, apply, known_settings, parse
from tests.deploy_helpers import REPO, VENV_BIN, commit_all, git, write_yaml

TLS = "INVOKE_DEPLOY_IMAGE_TLS_VERIFY"
STAGING = "INVOKE_DEPLOY_ENVIRONMENTS_STAGING_"

Run = Callable[..., subprocess.CompletedProcess[str]]


def setting(kind: Kind, *, nullable: bool = False) -> Setting:
    return Setting(("image", "x"), kind, nullable)


def invoke_config(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Config:
    """This repository's configuration as Invoke's executor hands it to a task."""
    for name in list(os.environ):
        if name.startswith("INVOKE_"):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = Config(project_location=REPO)
    config.load_project()
    config.load_collection(tasks.namespace(REPO).configuration())
    config.load_shell_env()
    return config


def settings_of(config: Config) -> dict[str, Any]:
    return dict(tasks._plain(config.deploy))


# What Invoke holds before it reads the environment decides whether it can read a variable.
_BEFORE = Config(project_location=REPO)
_BEFORE.load_project()
_BEFORE.load_collection(tasks.namespace(REPO).configuration())
ENGINE_ARGS_IS_A_LIST = isinstance(_BEFORE.deploy.image.engine_args, list)
TIMEOUT_IS_AN_INT = type(_BEFORE.deploy.environments.staging.health_timeout) is int


# Parsing, one kind at a time


@pytest.mark.parametrize("text", ["true", "True", " TRUE ", "1", "yes", "on"])
def test_true_in_its_usual_spellings(text: str) -> None:
    assert parse(setting(Kind.BOOL), text) is True


@pytest.mark.parametrize("text", ["false", "False", "0", "no", "off", " OFF\n"])
def test_false_in_its_usual_spellings(text: str) -> None:
    assert parse(setting(Kind.BOOL), text) is False


@pytest.mark.parametrize("text", ["", "maybe", "flase", "2"])
def test_anything_else_is_not_a_boolean(text: str) -> None:
    with pytest.raises(ValueError, match=r"^deploy.image.x is true or false \(or yes/no"):
        parse(setting(Kind.BOOL), text)


@pytest.mark.parametrize(("text", "value"), [("12.5", 12.5), ("60", 60.0), (" 1e1 ", 10.0)])
def test_numbers_may_be_fractional(text: str, value: float) -> None:
    assert parse(setting(Kind.FLOAT), text) == value


@pytest.mark.parametrize("text", ["soon", "", "nan", "inf", "12,5"])
def test_a_number_must_be_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"is a number, such as 60 or 12\.5"):
        parse(setting(Kind.FLOAT), text)


def test_whole_numbers_refuse_fractions() -> None:
    assert parse(setting(Kind.INT), " 9001 ") == 9001
    with pytest.raises(ValueError, match="is a whole number"):
        parse(setting(Kind.INT), "9001.5")


@pytest.mark.parametrize("text", ["", "null", "NULL", "~", "  "])
def test_null_or_nothing_unsets_a_setting_that_may_be_unset(text: str) -> None:
    for kind in Kind:
        assert parse(setting(kind, nullable=True), text) is None


def test_text_is_taken_as_it_is_unless_it_may_be_unset() -> None:
    assert parse(setting(Kind.STR), "null") == "null"
    assert parse(setting(Kind.STR), " spaced ") == " spaced "
    assert parse(setting(Kind.STR, nullable=True), "ghcr.io/acme/app") == "ghcr.io/acme/app"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "--storage-driver vfs --isolation chroot",
            ["--storage-driver", "vfs", "--isolation", "chroot"],
        ),
        (
            "kubectl set image deploy/app app={image}",
            ["kubectl", "set", "image", "deploy/app", "app={image}"],
        ),
        ("--label 'a b' \"c d\"", ["--label", "a b", "c d"]),
        ('["--root", "/var/lib/my containers", 3]', ["--root", "/var/lib/my containers", "3"]),
        ("[--storage-driver, vfs]", ["--storage-driver", "vfs"]),
        (
            "[kubectl, set, image, 'app={image}', \"x, y\"]",
            ["kubectl", "set", "image", "app={image}", "x, y"],
        ),
        ("[]", []),
        ("", []),
    ],
)
def test_lists_as_shell_words_json_or_yaml_flow(text: str, value: list[str]) -> None:
    assert parse(setting(Kind.LIST), text) == value


@pytest.mark.parametrize("text", ["--label 'unclosed", '["a", {"b": 1}]', '["a", null]'])
def test_a_list_that_cannot_be_read_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"write \[a, b\], a JSON list, or words quoted"):
        parse(setting(Kind.LIST), text)


# Which variables name which settings


def test_every_default_and_every_declared_environment_s_settings_are_known() -> None:
    known = known_settings({"environments": {"staging": {}, "pre-prod": None}})
    names = set(known)
    assert {"INVOKE_DEPLOY_STATE_DIR", TLS, "INVOKE_DEPLOY_BUILD_ISOLATION"} <= names
    assert "INVOKE_DEPLOY_PROJECT" in names
    for key in ENVIRONMENT_DEFAULTS:
        assert f"{STAGING}{key.upper()}" in names
        assert f"INVOKE_DEPLOY_ENVIRONMENTS_PRE-PROD_{key.upper()}" in names
    kinds = {name: found[0].kind for name, found in known.items()}
    assert kinds[TLS] is Kind.BOOL
    assert kinds["INVOKE_DEPLOY_IMAGE_ENGINE_ARGS"] is Kind.LIST
    assert kinds[STAGING + "PORT"] is Kind.INT
    assert kinds[STAGING + "HEALTH_TIMEOUT"] is Kind.FLOAT
    assert kinds[STAGING + "COMMAND"] is Kind.LIST
    assert kinds[STAGING + "SMOKE_TESTS"] is Kind.BOOL


def test_kinds_declared_by_hand_name_settings_that_exist() -> None:
    # A setting renamed in config.py must not leave a stale declaration behind.
    assert "engine_args" in DEFAULTS["image"]
    assert {"port", "health_timeout", "command"} <= set(ENVIRONMENT_DEFAULTS)


# Applying them


def test_variables_are_parsed_by_kind_and_set_where_invoke_would_not() -> None:
    settings = {"environments": {"staging": {"port": 8801, "smoke_tests": True}}}
    environ = {
        STAGING + "SMOKE_TESTS": "false",
        STAGING + "HEALTH_TIMEOUT": "12.5",
        STAGING + "COMMAND": "kubectl set image deploy/app app={image}",
        STAGING + "TARGET": "command",
        STAGING + "BASE_URL": "null",
        "INVOKE_DEPLOY_IMAGE_ENGINE_ARGS": "[--storage-driver, vfs]",
        TLS: "off",
        "INVOKE_RUN_ECHO": "1",
        "DEPLOY_ANYTHING": "x",
    }
    result = apply(settings, environ)
    assert result == {
        "environments": {
            "staging": {
                "port": 8801,
                "smoke_tests": False,
                "health_timeout": 12.5,
                "command": ["kubectl", "set", "image", "deploy/app", "app={image}"],
                "target": "command",
                "base_url": None,
            }
        },
        "image": {"engine_args": ["--storage-driver", "vfs"], "tls_verify": False},
    }
    assert settings == {"environments": {"staging": {"port": 8801, "smoke_tests": True}}}


def test_invoke_s_own_cast_of_a_boolean_does_not_survive(monkeypatch: pytest.MonkeyPatch) -> None:
    config = invoke_config({STAGING + "SMOKE_TESTS": "false", TLS: "no"}, monkeypatch)
    assert config.deploy.environments.staging.smoke_tests is True  # Invoke: not "0" nor ""
    assert config.deploy.image.tls_verify is True
    result = apply(settings_of(config), os.environ, shadowed=above_environment(config))
    assert result["environments"]["staging"]["smoke_tests"] is False
    assert result["image"]["tls_verify"] is False


def test_layers_above_invoke_s_environment_still_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runtime = {"deploy": {"environments": {"staging": {"port": 7000}}}}
    environ = {STAGING + "PORT": "9001", STAGING + "SMOKE_TESTS": "0"}
    config = invoke_config(environ, monkeypatch)
    config.set_runtime_path(write_yaml(tmp_path / "run.yaml", runtime))
    config.load_runtime()
    config.deploy.image.engine = "docker"  # a modification, as a task may make
    tables = above_environment(config)
    assert {"environments": {"staging": {"port": 7000}}} in tables
    result = apply(settings_of(config), os.environ, shadowed=tables)
    assert result["environments"]["staging"]["port"] == 7000
    assert result["environments"]["staging"]["smoke_tests"] is False
    assert result["image"]["engine"] == "docker"


def test_the_tasks_load_the_parsed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    config = invoke_config(
        {STAGING + "SMOKE_TESTS": "false", STAGING + "PORT": "9001", STAGING + "BASE_URL": ""},
        monkeypatch,
    )
    deploy, _ = tasks.load(MockContext(config=config))
    staging = deploy.environment("staging")
    assert staging.smoke_tests is False
    assert staging.port == 9001
    assert staging.base_url == "http://127.0.0.1:9001"


def test_a_misspelt_variable_is_named_with_the_nearest_known_one() -> None:
    settings: dict[str, Any] = {"environments": {"staging": {}}}
    with pytest.raises(DeployConfigError) as raised:
        apply(settings, {STAGING + "SMOKE_TEST": "false"})
    assert str(raised.value) == (
        f"{STAGING}SMOKE_TEST names no deploy setting "
        f"(did you mean {STAGING}SMOKE_TESTS or {STAGING}HOST?)"
    )


def test_a_variable_cannot_declare_an_environment() -> None:
    settings: dict[str, Any] = {"environments": {"staging": {}, "production": {}}}
    with pytest.raises(DeployConfigError, match="INVOKE_DEPLOY_ENVIRONMENTS_QA_PORT names no") as e:
        apply(settings, {"INVOKE_DEPLOY_ENVIRONMENTS_QA_PORT": "9001"})
    assert "declared under deploy.environments in invoke.yaml (production, staging)" in str(e.value)


def test_every_problem_is_reported_on_one_line() -> None:
    environ = {TLS: "maybe", STAGING + "PORT": "http", "INVOKE_DEPLOY_IMAGE_REPO": "x"}
    with pytest.raises(DeployConfigError) as raised:
        apply({"environments": {"staging": {}}}, environ)
    message = str(raised.value)
    assert "\n" not in message
    assert message.count("; ") == 2
    assert f"{TLS}='maybe': deploy.image.tls_verify is true or false" in message
    assert f"{STAGING}PORT='http': deploy.environments.staging.port is a whole number" in message
    assert "INVOKE_DEPLOY_IMAGE_REPO names no deploy setting" in message


def test_a_variable_naming_two_settings_is_refused() -> None:
    settings: dict[str, Any] = {"environments": {"eu": {}, "eu_ssh": {}}}
    with pytest.raises(DeployConfigError, match="ambiguous: it names both"):
        apply(settings, {"INVOKE_DEPLOY_ENVIRONMENTS_EU_SSH_PORT": "22"})


# Through the invoke command line


@pytest.fixture
def invoke(tmp_path: Path) -> Run:
    """Runs ``invoke`` (this work tree's tasks) on a one-commit repository, dry."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README").write_text("a deployable project\n")
    commit_all(repo, "one commit")
    config = write_yaml(
        tmp_path / "deploy.yaml",
        {
            "deploy": {
                "project": str(repo),
                "state_root": str(tmp_path / "state"),
                "environments": {"staging": {"state": str(tmp_path / "shared")}},
            }
        },
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CI_KIT_", "INVOKE_"))}
    base["XDG_STATE_HOME"] = str(tmp_path / "xdg")

    def run(
        *args: str, search_root: Path = REPO, **environ: str
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(VENV_BIN / "invoke"), "--search-root", str(search_root), "-f", str(config)]
        return subprocess.run(
            [*argv, *args],
            cwd=repo,
            env={**base, "PYTHONPATH": str(REPO), **environ},
            capture_output=True,
            text=True,
            check=False,
        )

    return run


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    """A tasks.py printing the configuration the tasks load, beside this repo's invoke.yaml."""
    root = tmp_path / "probe"
    root.mkdir()
    shutil.copy(REPO / "invoke.yaml", root / "invoke.yaml")
    (root / "tasks.py").write_text(
        "import dataclasses, json\n"
        "from pathlib import Path\n"
        "from invoke.tasks import Task\n"
        "from ci.deploy.tasks import load, namespace\n\n"
        "def show(c):\n"
        '    """Print the loaded image settings and environments as JSON."""\n'
        "    config, _ = load(c)\n"
        "    envs = {n: {'smoke_tests': e.smoke_tests, 'port': e.port} "
        "for n, e in config.environments.items()}\n"
        "    image = dataclasses.asdict(config.image)\n"
        "    print(json.dumps({'image': image, 'environments': envs}))\n\n"
        "ns = namespace(Path(__file__).resolve().parent)\n"
        "ns.add_task(Task(show))\n"
    )
    return root


def test_booleans_numbers_and_urls_arrive_in_the_plan(invoke: Run) -> None:
    done = invoke(
        "deploy.staging",
        "--dry-run",
        **{
            STAGING + "SMOKE_TESTS": "false",
            STAGING + "PORT": "9001",
            STAGING + "BASE_URL": "null",
            STAGING + "HEALTH_TIMEOUT": "12",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "  url:      http://127.0.0.1:9001\n" in done.stdout
    assert "--port 9001" in done.stdout
    assert "(at most 12 s)" in done.stdout
    assert "smoke" not in done.stdout


@pytest.mark.parametrize(
    "command",
    [
        "kubectl set image deploy/app app={image}",
        '["kubectl", "set", "image", "deploy/app", "app={image}"]',
        "[kubectl, set, image, deploy/app, 'app={image}']",
    ],
)
def test_a_command_target_and_its_command_arrive_in_the_plan(invoke: Run, command: str) -> None:
    done = invoke(
        "deploy.staging",
        "--dry-run",
        **{STAGING + "TARGET": "command", STAGING + "COMMAND": command},
    )
    assert done.returncode == 0, done.stderr
    assert "to staging (command target)" in done.stdout
    assert "$ kubectl set image deploy/app 'app=<repository>@<digest>'\n" in done.stdout


@pytest.mark.xfail(
    TIMEOUT_IS_AN_INT,
    reason="invoke.yaml's health_timeout is an integer, so Invoke itself runs int('12.5') "
    "and fails before any task runs; write it 60.0",
    raises=AssertionError,
)
def test_a_fractional_timeout_arrives_in_the_plan(invoke: Run) -> None:
    done = invoke("deploy.staging", "--dry-run", **{STAGING + "HEALTH_TIMEOUT": "12.5"})
    assert done.returncode == 0, done.stderr
    assert "(at most 12.5 s)" in done.stdout


def test_a_boolean_invoke_would_read_as_true_arrives_false(invoke: Run, probe: Path) -> None:
    done = invoke("show", search_root=probe, **{TLS: "false", STAGING + "SMOKE_TESTS": "off"})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["image"]["tls_verify"] is False
    assert shown["environments"]["staging"]["smoke_tests"] is False
    assert shown["environments"]["production"]["smoke_tests"] is True


@pytest.mark.xfail(
    ENGINE_ARGS_IS_A_LIST,
    reason="config.DEFAULTS holds image.engine_args = [], and Invoke raises UncastableEnvVar "
    "for any variable over a list before a task runs; make the default None",
    raises=AssertionError,
)
def test_a_list_arrives_as_its_words(invoke: Run, probe: Path) -> None:
    words = "--storage-driver vfs --isolation chroot"
    done = invoke("show", search_root=probe, INVOKE_DEPLOY_IMAGE_ENGINE_ARGS=words)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["image"]["engine_args"] == words.split()


def test_invoke_itself_refuses_a_variable_over_a_list_from_a_file(
    invoke: Run, tmp_path: Path
) -> None:
    """The limit this module cannot lift: write lists in configuration files as strings."""
    write_yaml(
        tmp_path / "deploy.yaml",
        {"deploy": {"project": str(tmp_path / "repo"), "image": {"engine_args": ["--a"]}}},
    )
    done = invoke("deploy.staging", "--dry-run", INVOKE_DEPLOY_IMAGE_ENGINE_ARGS="--b")
    assert done.returncode != 0
    assert "UncastableEnvVar" in done.stderr


def test_a_misspelt_variable_stops_the_task_with_one_line(invoke: Run) -> None:
    done = invoke("deploy.staging", "--dry-run", **{STAGING + "SMOKE_TEST": "false"})
    assert done.returncode == 1
    assert done.stderr == (
        f"ci-kit deploy: error: {STAGING}SMOKE_TEST names no deploy setting "
        f"(did you mean {STAGING}SMOKE_TESTS or {STAGING}HOST?)\n"
    )
    assert "deploy " not in done.stdout
