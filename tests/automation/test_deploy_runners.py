"""Deploys from throw-away clones, as CI runners make them: the state is the environment's.

Each runner is a fresh clone of one origin holding three commits: A (as is), B (a
new migration and a changed ``/healthz``) and C (an app that cannot start).
Runner 1 deploys A and runner 2 deploys B; runner 3, a clone that never deployed
anything, sees B live, finds redeploying it a no-op, watches C fail and B keep
serving, and rolls back to A; runner 4 promotes B to production: the release
staging kept, byte for byte (wheel, dependency lock, image digest if any), never
a rebuild. Nothing of it may depend on a clone's ``.ci-kit/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from ci.deploy.config import load_deploy_config
from ci.deploy.database import start_cluster
from ci_kit.connecting import connect_kwargs
from ci_kit.postgres import stop_persistent
from tests.automation.deploy_helpers import (
    BASE,
    REGISTRY_PASSWORD,
    REPO,
    USER,
    Deployer,
    configured_url,
    environment,
    free_port,
    git,
    three_releases,
    write_yaml,
)
from tests.helpers.server import TEST_PASSWORD, create_unmarked

# Real deploys from fresh clones, three targets: the slow tier.
pytestmark = pytest.mark.slow

Runner = Callable[[], Deployer]


def healthz(base_url: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as reply:  # noqa: S310
        return dict(json.loads(reply.read()))


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Path, tuple[str, str, str]]:
    repo = tmp_path / "origin"
    git(tmp_path, "clone", "-q", str(REPO), str(repo))
    return repo, three_releases(repo)


def environments(kind: str, tmp_path: Path, staging_db: URL, production_db: URL) -> dict[str, Any]:
    staging = environment(free_port(), database_url=configured_url(staging_db))
    production = environment(
        free_port(), database_url=configured_url(production_db), promote_from="staging"
    )
    if kind == "ssh":
        for name, settings in (("staging", staging), ("production", production)):
            settings.update(
                target="ssh",
                ssh_host="127.0.0.1",
                ssh_user="root",
                remote_path=str(tmp_path / f"host-{name}"),
                remote_python=sys.executable,
            )
    return {"staging": staging, "production": production}


def command_environments(settings: dict[str, Any], tmp_path: Path, clone: Path) -> dict[str, Any]:
    """The command target: the image by digest handed to a stand-in for ``kubectl set
    image``, which runs the app from a venv of the release (the image's stand-in)."""
    made = {}
    for name, env in settings.items():
        app_state = tmp_path / f"platform-{name}"
        app_state.mkdir(exist_ok=True)
        venvs = clone / ".ci-kit" / "deploy" / name / "venvs" / "{commit}"
        command = [
            sys.executable, str(Path(__file__).with_name("_start_app.py")), "{image}",
            str(venvs), str(env["port"]), str(app_state),
        ]  # fmt: skip
        made[name] = {
            **env,
            "target": "command",
            "command": command,
            "state": str(tmp_path / "shared-state" / name),
        }
    return made


@pytest.fixture(params=["local", "ssh", "command"])
def runners(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    origin: tuple[Path, tuple[str, str, str]],
    server_url: URL,
    deploy_database: URL,
) -> Iterator[tuple[Runner, dict[str, Any], Path, str]]:
    """Makes fresh clones of the origin, each with its own runner's invoke."""
    kind = str(request.param)
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CI_KIT_", "INVOKE_", "PYTEST_"))
    }
    if kind == "ssh":
        server = request.getfixturevalue("sshd")
        environ["CI_KIT_SSH_KEY_FILE"] = str(server.key)
    production_db = deploy_database.set(database=f"{deploy_database.database}_production")
    create_unmarked(server_url, str(production_db.database))
    settings = environments(kind, tmp_path, deploy_database, production_db)
    if kind == "local":  # the default: production's data on the deploy's own, durable cluster
        del settings["production"]["database_url"]
    if kind == "ssh":
        for env in settings.values():
            env["ssh_port"] = server.port
    image: dict[str, Any] = {}
    if kind == "command":
        registry = request.getfixturevalue("registry")
        image = {
            "repository": f"{registry.address}/finance-report",
            "containerfile": str(tmp_path / "Containerfile"),
            "engine": "podman",
            "engine_args": request.getfixturevalue("podman_args"),
            "tls_verify": False,
            "username": USER,
        }
        (tmp_path / "Containerfile").write_text(
            f"FROM {BASE}\nARG WHEEL\nCOPY dist/${{WHEEL}} /app/\n"
        )
        environ["CI_KIT_REGISTRY_PASSWORD"] = REGISTRY_PASSWORD
        environ["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    environ["CI_KIT_STAGING_DATABASE_PASSWORD"] = TEST_PASSWORD
    environ["CI_KIT_PRODUCTION_DATABASE_PASSWORD"] = TEST_PASSWORD
    made: list[Deployer] = []
    # The machine's state, where root's deploys keep a cluster the postgres user must
    # reach: not below pytest's private temporary directory.
    machine = Path(tempfile.mkdtemp(prefix="ci-kit-machine-", dir="/tmp"))
    machine.chmod(0o755)

    def runner() -> Deployer:
        clone = tmp_path / f"runner-{len(made) + 1}"
        git(tmp_path, "clone", "-q", str(origin[0]), str(clone))
        deploy = {
            "project": str(clone),
            "state_root": str(machine),
            "ssh_known_hosts": str(tmp_path / "known_hosts"),
        }
        environments = settings
        if kind == "command":
            environments = command_environments(settings, tmp_path, clone)
            deploy["image"] = image
        config = write_yaml(
            clone.with_suffix(".yaml"), {"deploy": {**deploy, "environments": environments}}
        )
        made.append(Deployer(clone, config, environ))
        return made[-1]

    yield runner, settings, machine, kind
    if made:
        for name in settings:
            made[-1]("deploy.stop", "--environment", name)
    durable = machine / "backend_sample" / "postgres"
    if durable.is_dir():
        stop_persistent(durable)
    shutil.rmtree(machine)
    for pid_file in tmp_path.glob("platform-*/app.pid"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
    transcript = "\n".join(line for run in made for line in run.transcript)
    print(transcript)
    assert TEST_PASSWORD not in transcript
    assert "p%40ss" not in transcript  # nor percent-encoded, as in a URL


def test_runners_share_the_environments_state(
    runners: tuple[Runner, dict[str, Any], Path, str],
    origin: tuple[Path, tuple[str, str, str]],
    deploy_database: URL,
) -> None:
    runner, settings, machine, kind = runners
    a, b, c = origin[1]
    staging = settings["staging"]["base_url"]

    first = runner()
    done = first("deploy.staging", "--commit", a)
    assert done.returncode == 0, done.stdout + done.stderr
    assert healthz(staging) == {"status": "ok", "commit": a}

    done = runner()("deploy.staging", "--commit", b)
    assert done.returncode == 0, done.stdout + done.stderr
    assert healthz(staging) == {"status": "ok", "commit": b, "release": "B"}
    with psycopg.connect(**connect_kwargs(deploy_database)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0013",)

    third = runner()
    done = third("deploy.status", "--environment", "staging")
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("staging ")]
    assert row.split()[3:4] == [b[:12]], done.stdout  # LIVE, seen from a clone that never deployed
    done = third("deploy.staging", "--commit", b)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already live on staging and healthy: nothing to do" in done.stdout
    assert "python -m build" not in done.stdout, "a release that went live is never rebuilt"

    done = third("deploy.staging", "--commit", c)
    assert done.returncode == 1
    if kind == "command":  # the platform, not the deploy, sees the app's own output
        assert f"did not report {c[:12]} healthy within" in done.stderr
    else:
        assert "release C cannot start" in done.stderr
    assert f"Rolled back automatically: {b[:12]} is live and healthy" in done.stderr
    assert healthz(staging)["commit"] == b

    done = third("deploy.rollback")
    assert done.returncode == 0, done.stdout + done.stderr
    assert healthz(staging) == {"status": "ok", "commit": a}

    fourth = runner()
    done = fourth("deploy.production", "--commit", c)
    assert done.returncode == 1
    assert "never went live on staging" in done.stderr
    done = fourth("deploy.production", "--commit", b)
    assert done.returncode == 0, done.stdout + done.stderr
    assert healthz(settings["production"]["base_url"]) == {
        "status": "ok",
        "commit": b,
        "release": "B",
    }
    if settings["production"].get("database_url") is None:
        config = load_deploy_config(
            {"state_root": str(machine), "environments": settings}, {}, fourth.repo
        )
        url = start_cluster(config, log=lambda _: None).set(database="finance_report_production")
        with psycopg.connect(**connect_kwargs(url)) as conn:
            shown = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in ("fsync", "full_page_writes", "synchronous_commit", "data_directory")
            }
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0013",)
        assert shown["fsync"] == shown["full_page_writes"] == shown["synchronous_commit"] == "on"
        assert Path(shown["data_directory"]).is_relative_to(machine)
    promoted = json.loads((fourth.repo / ".ci-kit" / "releases" / f"{b}.json").read_text())
    built = json.loads(
        (first.repo.parent / "runner-2" / ".ci-kit" / "releases" / f"{b}.json").read_text()
    )
    assert promoted == built, "production runs the release staging ran, not a rebuild"
