"""Deploy settings from every layer, parsed by one model: INVOKE_DEPLOY_* variables and files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke.config import Config
from invoke.context import MockContext

from ci.deploy import tasks
from ci.deploy.config import (
    BuildConfig,
    DeployConfig,
    EnvironmentConfig,
    ImageConfig,
    SshLocation,
    default_state_root,
    load_deploy_config,
)
from ci.deploy.errors import DeployConfigError
from ci.deploy.overrides import above_environment, variable
from tests.automation.deploy_helpers import REPO, VENV_BIN, commit_all, git, write_yaml

TLS = "INVOKE_DEPLOY_IMAGE_TLS_VERIFY"
STAGING = "INVOKE_DEPLOY_ENVIRONMENTS_STAGING_"
PROJECT = Path("/srv/project")
BOOLEAN = "true or false (or yes/no, on/off, 1/0)"

Run = Callable[..., subprocess.CompletedProcess[str]]


def base() -> dict[str, Any]:
    """The smallest configuration that loads: one environment on a port."""
    return {"environments": {"staging": {"port": 8801}}}


def load(
    environ: Mapping[str, str] | None = None, settings: Mapping[str, Any] | None = None
) -> DeployConfig:
    return load_deploy_config(base() if settings is None else settings, environ or {}, PROJECT)


def refusal(
    environ: Mapping[str, str] | None = None, settings: Mapping[str, Any] | None = None
) -> str:
    with pytest.raises(DeployConfigError) as raised:
        load(environ, settings)
    message = str(raised.value)
    assert "\n" not in message
    return message


def with_setting(path: tuple[str, ...], value: object) -> dict[str, Any]:
    """The base configuration with ``value`` at ``path``, as a file would give it."""
    settings = base()
    node = settings
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return settings


def value_at(config: DeployConfig, path: tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        node = node[key] if isinstance(node, Mapping) else getattr(node, key)
    return node


def dotted(path: tuple[str, ...]) -> str:
    return "deploy." + ".".join(path)


# Booleans: one parser for every layer, and "flase" is no boolean


BOOLEANS = [
    ("build", "isolation"),
    ("image", "tls_verify"),
    ("environments", "staging", "smoke_tests"),
]
TRUE = ["true", "True", " TRUE ", "1", "yes", "YES", "on"]
FALSE = ["false", "False", "0", "no", "off", " OFF\n", "Off"]


def test_the_boolean_family_covers_every_boolean_setting() -> None:
    tables = {(): DeployConfig, ("build",): BuildConfig, ("image",): ImageConfig}
    tables[("environments", "staging")] = EnvironmentConfig
    declared = {
        (*above, name)
        for above, model in tables.items()
        for name, field in model.model_fields.items()
        if field.annotation is bool
    }
    assert declared == set(BOOLEANS)


@pytest.mark.parametrize("path", BOOLEANS, ids=dotted)
@pytest.mark.parametrize(("text", "value"), [(t, True) for t in TRUE] + [(f, False) for f in FALSE])
def test_a_variable_sets_a_boolean_in_its_usual_spellings(
    path: tuple[str, ...], text: str, value: bool
) -> None:
    assert value_at(load({variable(path): text}), path) is value


@pytest.mark.parametrize("path", BOOLEANS, ids=dotted)
@pytest.mark.parametrize(("given", "value"), [("false", False), ("on", True), (False, False)])
def test_a_file_sets_a_boolean_with_the_same_parser(
    path: tuple[str, ...], given: object, value: bool
) -> None:
    assert value_at(load(settings=with_setting(path, given)), path) is value


@pytest.mark.parametrize("path", BOOLEANS, ids=dotted)
@pytest.mark.parametrize("text", ["flase", "2", "maybe", "truee"])
def test_anything_else_is_not_a_boolean_in_one_line(path: tuple[str, ...], text: str) -> None:
    name = variable(path)
    assert refusal({name: text}) == f"{name} must be {BOOLEAN}, not {text!r}"
    from_file = refusal(settings=with_setting(path, text))
    assert from_file == f"{dotted(path)} must be {BOOLEAN}, not {text!r}"


# Numbers


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("port", " 9001 ", 9001),
        ("ssh_port", "2222", 2222),
        ("health_timeout", "12.5", 12.5),
        ("health_timeout", "60", 60.0),
        ("health_timeout", " 1e1 ", 10.0),
    ],
)
def test_numbers_are_read_from_their_text(key: str, text: str, value: float) -> None:
    assert getattr(load({STAGING + key.upper(): text}).environment("staging"), key) == value


@pytest.mark.parametrize(
    ("key", "text", "must"),
    [
        ("port", "9001.5", "a whole number"),
        ("port", "http", "a whole number"),
        ("ssh_port", "twenty-two", "a whole number"),
        ("health_timeout", "12,5", "a number"),
        ("health_timeout", "soon", "a number"),
        ("health_timeout", "nan", "a finite number, such as 60 or 12.5"),
        ("health_timeout", "inf", "a finite number, such as 60 or 12.5"),
    ],
)
def test_a_number_that_is_not_one_is_refused_in_one_line(key: str, text: str, must: str) -> None:
    name = STAGING + key.upper()
    assert refusal({name: text}) == f"{name} must be {must}, not {text!r}"


# Lists


LISTS = [
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
    ("[kubectl, set, 'app={image}', \"x, y\"]", ["kubectl", "set", "app={image}", "x, y"]),
    ("[]", []),
]


@pytest.mark.parametrize("path", [("image", "engine_args"), ("environments", "staging", "command")])
@pytest.mark.parametrize(("text", "words"), LISTS)
def test_lists_are_shell_words_json_or_yaml_flow_in_every_layer(
    path: tuple[str, ...], text: str, words: list[str]
) -> None:
    assert value_at(load({variable(path): text}), path) == tuple(words)
    assert value_at(load(settings=with_setting(path, text)), path) == tuple(words)


def test_a_file_may_still_hold_a_list_itself() -> None:
    path = ("environments", "staging", "command")
    assert value_at(load(settings=with_setting(path, ["rollout", 8080])), path) == (
        "rollout",
        "8080",
    )


@pytest.mark.parametrize("text", ["--label 'unclosed", "[a, 'b]"])
def test_a_list_that_cannot_be_read_says_how_to_write_one(text: str) -> None:
    name = "INVOKE_DEPLOY_IMAGE_ENGINE_ARGS"
    assert refusal({name: text}) == (
        f"{name}: not a list (No closing quotation); "
        "write [a, b], a JSON list, or words quoted as in a shell"
    )


# Nulls: a setting given as nothing, null or ~ is unset, and its default applies


XDG = {"XDG_STATE_HOME": "/xdg"}
# A setting, a value a file gives it, and its default.
NULLABLE = [
    (("image", "repository"), "ghcr.io/acme/app", None),
    (("image", "username"), "deployer", None),
    (("image", "engine_args"), "--root /x", ()),
    (("environments", "staging", "database_url"), "postgresql://app@db/x", None),
    (("environments", "staging", "promote_from"), "qa", None),
    (("environments", "staging", "ssh_host"), "h", None),
    (("environments", "staging", "state"), "ssh://h/x", None),
    (("environments", "staging", "target"), "ssh", "local"),
    (("environments", "staging", "host"), "10.0.0.5", "127.0.0.1"),
    (("environments", "staging", "base_url"), "https://x", "http://127.0.0.1:8801"),
    (("environments", "staging", "health_timeout"), 5, 60.0),
    (("state_root",), "/x", default_state_root(XDG)),
]


@pytest.mark.parametrize(
    ("path", "given", "default"), NULLABLE, ids=[dotted(n[0]) for n in NULLABLE]
)
@pytest.mark.parametrize("text", ["", "  ", "null", "NULL", "~"])
def test_nothing_or_null_unsets_a_setting(
    path: tuple[str, ...], given: object, default: object, text: str
) -> None:
    settings = with_setting(path, given)
    assert value_at(load({**XDG, variable(path): text}, settings), path) == default
    assert value_at(load(XDG, with_setting(path, None)), path) == default


def test_text_is_taken_as_it_is_less_surrounding_space() -> None:
    config = load(
        {"INVOKE_DEPLOY_IMAGE_REPOSITORY": " ghcr.io/acme/app\n", STAGING + "HOST": "10.0.0.5"}
    )
    assert config.image.repository == "ghcr.io/acme/app"
    assert config.environment("staging").host == "10.0.0.5"


def test_a_state_variable_is_parsed_like_a_file_s() -> None:
    state = load({STAGING + "STATE": "ssh://ops@h:2222/var/st"}).environment("staging").state
    assert state == SshLocation("h", "ops", 2222, "/var/st")


# Which variables name which settings


# Every name README's Deploy section, the workflows and invoke.yaml's settings rely on.
DOCUMENTED = [
    "INVOKE_DEPLOY_PROJECT", "INVOKE_DEPLOY_STATE_DIR", "INVOKE_DEPLOY_STATE_ROOT",
    "INVOKE_DEPLOY_NAME", "INVOKE_DEPLOY_SSH_KNOWN_HOSTS", "INVOKE_DEPLOY_BUILD_ISOLATION",
    "INVOKE_DEPLOY_BUILD_DIRECTORY", "INVOKE_DEPLOY_IMAGE_REPOSITORY",
    "INVOKE_DEPLOY_IMAGE_CONTAINERFILE", "INVOKE_DEPLOY_IMAGE_ENGINE",
    "INVOKE_DEPLOY_IMAGE_ENGINE_ARGS", TLS, "INVOKE_DEPLOY_IMAGE_USERNAME",
    *(STAGING + key for key in (
        "TARGET", "HOST", "PORT", "BASE_URL", "DATABASE", "DATABASE_URL", "HEALTH_TIMEOUT",
        "SMOKE_TESTS", "PROMOTE_FROM", "COMMAND", "SSH_HOST", "SSH_USER", "SSH_PORT",
        "REMOTE_PATH", "REMOTE_PYTHON", "STATE",
    )),
]  # fmt: skip


def test_every_documented_variable_names_its_setting() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/staging-deploy.yml").read_text())
    used = {
        name
        for job in workflow["jobs"].values()
        for step in job["steps"]
        for name in step.get("env", {})
        if name.startswith("INVOKE_DEPLOY_")
    }
    assert used <= set(DOCUMENTED)
    load({**dict.fromkeys(DOCUMENTED, "null"), STAGING + "PORT": "8801"})  # each one known


def test_a_misspelt_variable_is_named_with_the_nearest_known_one() -> None:
    assert refusal({STAGING + "SMOKE_TEST": "false"}) == (
        f"{STAGING}SMOKE_TEST names no deploy setting "
        f"(did you mean {STAGING}SMOKE_TESTS or {STAGING}HOST?)"
    )


def test_a_variable_cannot_declare_an_environment() -> None:
    settings: dict[str, Any] = {"environments": {"staging": {"port": 1}, "production": {"port": 2}}}
    message = refusal({"INVOKE_DEPLOY_ENVIRONMENTS_QA_PORT": "9001"}, settings)
    assert message.startswith("INVOKE_DEPLOY_ENVIRONMENTS_QA_PORT names no deploy setting")
    assert "declared under deploy.environments in invoke.yaml (production, staging)" in message


def test_a_variable_naming_two_settings_is_refused() -> None:
    settings: dict[str, Any] = {"environments": {"eu": {"port": 1}, "eu_ssh": {"port": 2}}}
    assert refusal({"INVOKE_DEPLOY_ENVIRONMENTS_EU_SSH_PORT": "22"}, settings) == (
        "INVOKE_DEPLOY_ENVIRONMENTS_EU_SSH_PORT is ambiguous: it names both "
        "deploy.environments.eu.ssh_port and deploy.environments.eu_ssh.port"
    )


def test_every_problem_is_reported_on_one_line() -> None:
    environ = {TLS: "maybe", STAGING + "PORT": "http", "INVOKE_DEPLOY_IMAGE_REPO": "x"}
    assert refusal(environ).split("; ") == [
        "INVOKE_DEPLOY_IMAGE_REPO names no deploy setting (did you mean "
        "INVOKE_DEPLOY_IMAGE_REPOSITORY or INVOKE_DEPLOY_IMAGE_ENGINE?)",
        f"{TLS} must be {BOOLEAN}, not 'maybe'",
        f"{STAGING}PORT must be a whole number, not 'http'",
    ]


def test_a_misspelt_key_in_a_file_is_refused_with_the_nearest_one() -> None:
    settings = {"image": {"tls_verfy": False}, **base()}
    assert refusal(settings=settings) == (
        "deploy.image.tls_verfy is not a deploy setting (did you mean deploy.image.tls_verify?)"
    )


# Secrets come from CI_KIT_* variables only


@pytest.mark.parametrize(
    ("path", "origin"),
    [
        (("registry_password",), "read from CI_KIT_REGISTRY_PASSWORD only"),
        (("ssh_key_file",), "read from CI_KIT_SSH_KEY_FILE only"),
        (("environments", "staging", "admin_token"), "read from CI_KIT_STAGING_ADMIN_TOKEN only"),
        (
            ("environments", "staging", "database_password"),
            "read from CI_KIT_STAGING_DATABASE_PASSWORD only",
        ),
        (("environments", "staging", "name"), "the environment's key"),
    ],
)
def test_no_setting_holds_a_secret(path: tuple[str, ...], origin: str) -> None:
    assert refusal(settings=with_setting(path, "s3cret")) == (
        f"{dotted(path)} is not a setting: it is {origin}"
    )
    assert refusal({variable(path): "s3cret"}).startswith(
        f"{variable(path)} names no deploy setting"
    )


# Over what Invoke made of them, below what it ranks above them


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


def test_invoke_s_own_cast_of_a_boolean_does_not_survive(monkeypatch: pytest.MonkeyPatch) -> None:
    config = invoke_config({STAGING + "SMOKE_TESTS": "false", TLS: "no"}, monkeypatch)
    assert config.deploy.environments.staging.smoke_tests is True  # Invoke: not "0" nor ""
    assert config.deploy.image.tls_verify is True
    deploy, _ = tasks.load(MockContext(config=config))
    assert deploy.environment("staging").smoke_tests is False
    assert deploy.image.tls_verify is False


def test_layers_above_invoke_s_environment_still_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runtime = {"deploy": {"environments": {"staging": {"port": 7000}}}}
    environ = {
        STAGING + "PORT": "9001",
        STAGING + "SMOKE_TESTS": "0",
        "INVOKE_DEPLOY_IMAGE_ENGINE": "podman",
    }
    config = invoke_config(environ, monkeypatch)
    config.set_runtime_path(write_yaml(tmp_path / "run.yaml", runtime))
    config.load_runtime()
    config.deploy.image.engine = "docker"  # a modification, as a task may make
    assert {"environments": {"staging": {"port": 7000}}} in above_environment(config)
    deploy, _ = tasks.load(MockContext(config=config))
    staging = deploy.environment("staging")
    assert staging.port == 7000
    assert staging.smoke_tests is False
    assert deploy.image.engine == "docker"


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


def test_invoke_is_given_no_list_and_no_timeout_to_cast_a_variable_by() -> None:
    """What Invoke holds before it reads the environment decides whether it can read a
    variable: over a list it raises, over a number it runs int() or float() on the text."""
    assert tasks.namespace(REPO).configuration() == {"deploy": {"project": str(REPO)}}
    deploy = yaml.safe_load((REPO / "invoke.yaml").read_text())["deploy"]
    leaves = [deploy["image"], *deploy["environments"].values()]
    assert not any(isinstance(value, list) for table in leaves for value in table.values())
    assert not any("health_timeout" in table for table in deploy["environments"].values())


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
        "import json\n"
        "from pathlib import Path\n"
        "from invoke.tasks import Task\n"
        "from ci.deploy.tasks import load, namespace\n\n"
        "def show(c):\n"
        '    """Print the loaded image settings and environments as JSON."""\n'
        "    config, _ = load(c)\n"
        "    envs = {n: {'smoke_tests': e.smoke_tests, 'port': e.port} "
        "for n, e in config.environments.items()}\n"
        "    image = config.image.model_dump()\n"
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
            STAGING + "HEALTH_TIMEOUT": "12.5",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "  url:      http://127.0.0.1:9001\n" in done.stdout
    assert "--port 9001" in done.stdout
    assert "(at most 12.5 s)" in done.stdout
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


def test_a_boolean_invoke_would_read_as_true_arrives_false(invoke: Run, probe: Path) -> None:
    done = invoke("show", search_root=probe, **{TLS: "false", STAGING + "SMOKE_TESTS": "off"})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["image"]["tls_verify"] is False
    assert shown["environments"]["staging"]["smoke_tests"] is False
    assert shown["environments"]["production"]["smoke_tests"] is True


def test_a_list_arrives_as_its_words(invoke: Run, probe: Path) -> None:
    words = "--storage-driver vfs --isolation chroot"
    done = invoke("show", search_root=probe, INVOKE_DEPLOY_IMAGE_ENGINE_ARGS=words)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["image"]["engine_args"] == words.split()


def test_invoke_itself_refuses_a_variable_over_a_list_from_a_file(
    invoke: Run, tmp_path: Path
) -> None:
    """The limit the deploy cannot lift: write lists in configuration files as strings."""
    write_yaml(
        tmp_path / "deploy.yaml",
        {"deploy": {"project": str(tmp_path / "repo"), "image": {"engine_args": ["--a"]}}},
    )
    done = invoke("deploy.staging", "--dry-run", INVOKE_DEPLOY_IMAGE_ENGINE_ARGS="--b")
    assert done.returncode != 0
    assert "UncastableEnvVar" in done.stderr


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {STAGING + "SMOKE_TEST": "false"},
            f"{STAGING}SMOKE_TEST names no deploy setting "
            f"(did you mean {STAGING}SMOKE_TESTS or {STAGING}HOST?)",
        ),
        ({TLS: "flase"}, f"{TLS} must be {BOOLEAN}, not 'flase'"),
        (
            {STAGING + "HEALTH_TIMEOUT": "12,5"},
            f"{STAGING}HEALTH_TIMEOUT must be a number, not '12,5'",
        ),
    ],
    ids=["misspelt", "not-a-boolean", "not-a-number"],
)
def test_a_bad_variable_stops_the_task_with_one_line(
    invoke: Run, environ: dict[str, str], line: str
) -> None:
    done = invoke("deploy.staging", "--dry-run", **environ)
    assert done.returncode == 1
    assert done.stderr == f"ci-kit deploy: error: {line}\n"
    assert "deploy " not in done.stdout
