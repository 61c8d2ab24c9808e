"""The pure half of deploys: releases, plans, configuration and secret masking."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ci.deploy.config import load_deploy_config
from ci.deploy.errors import DeployConfigError
from ci.deploy.plan import MASK, Artifact, DeployPlan, Image, Masker, Release, Step

SHA = "0123456789abcdef0123456789abcdef01234567"
PASSWORD = "p@ss:w/rd%20 #?+"


def release(**changes: object) -> Release:
    fields: dict[str, object] = {
        "commit": SHA,
        "created": "2026-11-25T10:00:00Z",
        "source": "https://example.invalid/repo.git",
        "artifacts": (
            Artifact("app-1.0-py3-none-any.whl", "a" * 64),
            Artifact("app-1.0.tar.gz", "b" * 64),
        ),
    }
    fields.update(changes)
    return Release(**fields)  # type: ignore[arg-type]


def test_release_round_trips_through_its_manifest() -> None:
    image = Image(
        "registry.invalid/app",
        SHA,
        "sha256:" + "c" * 64,
        "sha256:" + "d" * 64,
        "registry.invalid/app",
    )
    for original in (release(), release(image=image)):
        assert Release.from_json(original.to_json()) == original


def test_release_names_its_wheel_and_image_by_digest_once_pushed() -> None:
    built = release(image=Image("registry.invalid/app", SHA, "sha256:1"))
    assert built.wheel.name.endswith(".whl")
    assert built.image is not None
    assert built.image.reference == f"registry.invalid/app:{SHA}"
    pushed = built.with_image(Image("registry.invalid/app", SHA, "sha256:1", "sha256:" + "e" * 64))
    assert pushed.image is not None
    assert pushed.image.reference == "registry.invalid/app@sha256:" + "e" * 64


@given(st.text(min_size=1, max_size=30), st.text(max_size=30), st.text(max_size=30))
def test_masker_hides_a_secret_raw_and_url_encoded(secret: str, before: str, after: str) -> None:
    assume(secret not in MASK)  # a "secret" such as "*" is in every masked text: no mask hides it
    masker = Masker([secret])
    for form in (secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
        shown = masker.mask(before + form + after)
        assert not masker.leaks(shown)


def test_masker_ignores_unset_secrets_and_merges() -> None:
    masker = Masker([None, ""]).with_secrets("tok3n", None)
    assert masker.mask("a tok3n b") == f"a {MASK} b"
    assert masker.mask_env({"T": "tok3n"}) == {"T": MASK}


def plan(live: str | None) -> DeployPlan:
    return DeployPlan(
        environment="staging",
        target="local",
        commit=SHA,
        base_url="http://127.0.0.1:8801",
        database="postgresql+psycopg://ci_kit:***@db/app",
        live=live,
        steps=(Step("migrate", f"with password {PASSWORD}", ("alembic", PASSWORD)),),
    )


def test_plan_lines_are_masked() -> None:
    text = "\n".join(plan(None).lines(Masker([PASSWORD])))
    assert PASSWORD not in text
    assert "1. migrate" in text
    assert "live now: nothing" in text


def test_plan_of_the_live_commit_is_a_no_op() -> None:
    lines = plan(SHA).lines(Masker())
    assert plan(SHA).noop
    assert lines[-1].endswith("already live")


def settings(**staging: object) -> dict[str, object]:
    return {"environments": {"staging": {"port": 8801, **staging}}}


def test_config_defaults_fill_an_environment(tmp_path: Path) -> None:
    config = load_deploy_config(settings(), {}, tmp_path)
    staging = config.environment("staging")
    assert staging.target == "local"
    assert staging.base_url == "http://127.0.0.1:8801"
    assert staging.database == "finance_report_staging"
    assert staging.database_url is None
    assert config.state_dir == tmp_path / ".ci-kit"
    assert config.image.repository is None
    assert config.build.directory == "backend_sample"


def test_config_takes_database_password_and_tokens_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "CI_KIT_STAGING_DATABASE_PASSWORD": PASSWORD,
        "CI_KIT_STAGING_ADMIN_TOKEN": "admin-t0ken",
        "CI_KIT_REGISTRY_PASSWORD": "registry-s3cret",
    }
    url = "postgresql://app@db.invalid:5432/finance"
    config = load_deploy_config(settings(database_url=url), environ, tmp_path)
    staging = config.environment("staging")
    assert staging.database_url is not None
    assert staging.database_url.password == PASSWORD
    assert PASSWORD not in staging.database_display()
    assert PASSWORD not in repr(config)
    masker = config.masker()
    for secret in (PASSWORD, "admin-t0ken", "registry-s3cret"):
        assert masker.mask(f"x {secret} y") == f"x {MASK} y"


@pytest.mark.parametrize(
    ("staging", "message"),
    [
        ({"database_url": "postgresql://app:secret@db/x"}, "must not contain a password"),
        ({"database_url": "mysql://app@db/x"}, "not a PostgreSQL URL"),
        (
            {"target": "kubernetes"},
            r"^deploy.environments.staging.target must be one of 'local', 'ssh' or 'command', "
            "not 'kubernetes'$",
        ),
        ({"target": "command"}, "needs a rollout command"),
        ({"target": "ssh"}, "needs ssh_host"),
    ],
)
def test_config_refuses_impossible_environments(
    tmp_path: Path, staging: dict[str, object], message: str
) -> None:
    with pytest.raises(DeployConfigError, match=message) as raised:
        load_deploy_config(settings(**staging), {}, tmp_path)
    assert "secret" not in str(raised.value).replace("must not contain", "")


def test_config_names_known_environments_when_one_is_missing(tmp_path: Path) -> None:
    config = load_deploy_config(settings(), {}, tmp_path)
    with pytest.raises(DeployConfigError, match="known: staging"):
        config.environment("production")


def test_config_accepts_invoke_string_values(tmp_path: Path) -> None:
    # INVOKE_DEPLOY_... environment variables arrive as strings.
    raw = {
        "image": {"tls_verify": "false", "engine_args": "--root /x"},
        **settings(smoke_tests="0"),
    }
    config = load_deploy_config(raw, {}, tmp_path)
    assert config.image.tls_verify is False
    assert config.image.engine_args == ("--root", "/x")
    assert config.environment("staging").smoke_tests is False


@pytest.mark.parametrize("directory", ["/srv/app", "../elsewhere", "backend_sample/../.."])
def test_config_builds_only_a_directory_inside_the_commit(tmp_path: Path, directory: str) -> None:
    with pytest.raises(DeployConfigError, match="must be a path inside the repository"):
        load_deploy_config({**settings(), "build": {"directory": directory}}, {}, tmp_path)
