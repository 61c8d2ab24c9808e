"""The local target end to end: real builds, a real PostgreSQL, real uvicorn processes.

Three commits of a clone of this repository: A (as is), B (a new migration and a
changed ``/healthz``), C (an app that cannot start). Deploying them in turn through
the ``invoke`` command line shows the whole story: B goes live migrated, C fails
and B keeps serving, ``deploy.rollback`` returns to A, ``deploy.status`` tells.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from ci.deploy import state
from ci.deploy.errors import DeployLocked
from ci_kit.provision import connect_kwargs
from tests.conftest import TEST_PASSWORD
from tests.deploy_helpers import (
    REPO,
    Deployer,
    commit_all,
    configured_url,
    environment,
    free_port,
    git,
    write_yaml,
)

MIGRATION_B = '''"""Deploy probe: a table only release B and later have."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("deploy_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("deploy_probe")
'''


def healthz(base_url: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as reply:  # noqa: S310
        return dict(json.loads(reply.read()))


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "-q", str(REPO), str(repo))
    return repo


@pytest.fixture
def deployer(tmp_path: Path, clone: Path, deploy_database: URL) -> Iterator[Deployer]:
    port = free_port()
    config = write_yaml(
        tmp_path / "deploy.yaml",
        {
            "deploy": {
                "project": str(clone),
                "environments": {
                    "staging": environment(port, database_url=configured_url(deploy_database)),
                    "production": environment(free_port(), promote_from="staging"),
                },
            }
        },
    )
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CI_KIT_", "INVOKE_", "PYTEST_"))
    }
    environ["CI_KIT_STAGING_DATABASE_PASSWORD"] = TEST_PASSWORD
    run = Deployer(clone, config, environ)
    yield run
    run("deploy.stop")


def test_deploy_migrate_fail_roll_back_and_status(
    deployer: Deployer, clone: Path, deploy_database: URL
) -> None:
    base_url = json.loads(deployer.config.read_text())["deploy"]["environments"]["staging"][
        "base_url"
    ]
    commit_a = git(clone, "rev-parse", "HEAD")
    migrations = clone / "backend_sample" / "migrations" / "versions"
    (migrations / "0013_deploy_probe.py").write_text(MIGRATION_B)
    health = clone / "backend_sample" / "api" / "health.py"
    health.write_text(
        health.read_text().replace(
            'return JSONResponse({"status": "ok", "commit": commit})',
            'return JSONResponse({"status": "ok", "commit": commit, "release": "B"})',
        )
    )
    commit_b = commit_all(clone, "B: a new migration and a changed /healthz")
    app = clone / "backend_sample" / "app.py"
    app.write_text(
        app.read_text().replace(
            '    """Build the FastAPI app for the given (or environment) settings."""\n',
            '    """Build the FastAPI app for the given (or environment) settings."""\n'
            '    raise RuntimeError("release C cannot start")\n',
        )
    )
    commit_c = commit_all(clone, "C: an app that cannot start")

    try:
        done = deployer("deploy.staging", "--commit", commit_a)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "smoke tests: 7 passed, 0 failed or errored, 0 skipped" in done.stdout
        assert healthz(base_url) == {"status": "ok", "commit": commit_a}

        done = deployer("deploy.staging", "--commit", commit_b)
        assert done.returncode == 0, done.stdout + done.stderr
        assert healthz(base_url) == {"status": "ok", "commit": commit_b, "release": "B"}
        with psycopg.connect(**connect_kwargs(deploy_database)) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0013",)
            assert conn.execute("SELECT count(*) FROM deploy_probe").fetchone() == (0,)

        done = deployer("deploy.staging", "--commit", commit_c)
        assert done.returncode == 1
        assert f"deploy of {commit_c[:12]} to staging failed" in done.stderr
        assert "release C cannot start" in done.stderr
        assert f"Rolled back automatically: {commit_b[:12]} is live and healthy" in done.stderr
        assert healthz(base_url)["commit"] == commit_b

        done = deployer("deploy.staging", "--commit", commit_b)
        assert done.returncode == 0
        assert "already live on staging and healthy: nothing to do" in done.stdout

        done = deployer("deploy.rollback")
        assert done.returncode == 0, done.stdout + done.stderr
        assert healthz(base_url) == {"status": "ok", "commit": commit_a}

        done = deployer("deploy.status", "--environment", "staging")
        assert f"live:     {commit_a}" in done.stdout
        assert f"healthy on {commit_a}" in done.stdout
        assert f"current -> releases/{commit_a}" in done.stdout

        done = deployer("deploy.production", "--commit", commit_c)
        assert done.returncode == 1
        assert "never went live on staging" in done.stderr

        pid = int((clone / ".ci-kit" / "deploy" / "staging" / "app.pid").read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        assert TEST_PASSWORD not in argv
    finally:
        transcript = "\n".join(deployer.transcript)
        print(transcript)
    assert TEST_PASSWORD not in transcript
    assert "p%40ss" not in transcript  # nor percent-encoded, as in a URL


def test_a_second_deploy_to_one_environment_waits_for_the_lock(tmp_path: Path) -> None:
    lines: list[str] = []
    with (
        state.deploy_lock(tmp_path, timeout=1, log=lines.append),
        pytest.raises(DeployLocked, match="another deploy to"),
        state.deploy_lock(tmp_path, timeout=0.3, log=lines.append),
    ):
        pass  # pragma: no cover
    assert lines == [f"waiting for another deploy to {tmp_path.name} to finish"]
    with state.deploy_lock(tmp_path, timeout=0.3, log=lines.append):
        pass  # free again once the first was released
