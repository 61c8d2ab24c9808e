"""staging-deploy.yml run as a runner would: its own steps, read from the YAML, in a clone.

The job's ``run:`` steps execute with bash as GitHub runs them (``defaults.run.shell:
bash``), in a fresh clone, with ``${{ }}`` replaced from the contexts each test
defines; an expression this module cannot evaluate, or a name no context holds, fails
the test, so a new setting in the workflow is noticed here. The two actions are
stood in for: ``actions/checkout`` by a ``git checkout`` of the clone (its
``fetch-depth`` honoured), ``actions/setup-python`` by a fresh ``python -m venv``.

What is cloned is this repository's committed HEAD; with
``CI_KIT_TEST_WORKFLOW_SOURCE=worktree`` it is a commit of the work tree as it is
(tracked and untracked files, less the ignored ones), to try a change before
committing it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from ci_kit.connecting import connect_kwargs
from tests.automation.deploy_helpers import (
    REPO,
    Sshd,
    commit_all,
    configured_url,
    free_port,
    git,
)
from tests.automation.workflow_runner import Runner, load
from tests.helpers.server import TEST_PASSWORD

WORKFLOW = Path(".github/workflows/staging-deploy.yml")
SOURCE = os.environ.get("CI_KIT_TEST_WORKFLOW_SOURCE", "head")
REPOSITORY = "acme/ci-kit"

# ---------------------------------------------------------------- contexts


def workflow_run_contexts(commit: str, **run: Any) -> dict[str, Any]:
    """The contexts of a ``workflow_run`` event: ci completed for ``commit``."""
    return {
        "github": {
            "event_name": "workflow_run",
            "repository": REPOSITORY,
            "event": {
                "workflow_run": {
                    "conclusion": "success",
                    "event": "push",
                    "head_branch": "main",
                    "head_sha": commit,
                    "head_repository": {"full_name": REPOSITORY},
                    **run,
                }
            },
        },
        "inputs": {"commit": None},
        "vars": {},
        "secrets": {},
    }


def dispatch_contexts(commit: str) -> dict[str, Any]:
    """The contexts of a ``workflow_dispatch`` with ``commit`` as its input."""
    return {
        "github": {
            "event_name": "workflow_dispatch",
            "repository": REPOSITORY,
            "event": {"workflow_run": None},  # no such property: null, as on GitHub
        },
        "inputs": {"commit": commit},
        "vars": {},
        "secrets": {},
    }


UNCONFIGURED_VARS = dict.fromkeys(
    [
        "STAGING_SSH_HOST", "STAGING_SSH_USER", "STAGING_SSH_PORT", "STAGING_SSH_KNOWN_HOSTS",
        "STAGING_REMOTE_PATH", "STAGING_REMOTE_PYTHON", "STAGING_BASE_URL", "STAGING_HOST",
        "STAGING_PORT", "STAGING_DATABASE_URL", "REGISTRY_REPOSITORY", "REGISTRY_USERNAME",
    ],
    "",
)  # fmt: skip
UNCONFIGURED_SECRETS = dict.fromkeys(
    ["STAGING_SSH_KEY", "STAGING_DATABASE_PASSWORD", "STAGING_ADMIN_TOKEN", "REGISTRY_PASSWORD"],
    "",
)
# Settings the deploy can do without: a default in the workflow, or no image at all.
OPTIONAL = {"STAGING_SSH_PORT", "STAGING_REMOTE_PYTHON", "STAGING_HOST"}
REGISTRY = {"REGISTRY_REPOSITORY", "REGISTRY_USERNAME", "REGISTRY_PASSWORD"}


def configured(contexts: dict[str, Any], **values: str) -> dict[str, Any]:
    """``contexts`` with every variable and secret set: ``values``, else a placeholder."""
    given = {"vars": dict(UNCONFIGURED_VARS), "secrets": dict(UNCONFIGURED_SECRETS)}
    for names in given.values():
        for name in names:
            if name not in REGISTRY:
                names[name] = values.get(name, f"placeholder-{name.lower()}")
    return {**contexts, **given}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose ``main`` is what is tested: HEAD, or the work tree committed."""
    if SOURCE not in ("head", "worktree"):
        pytest.fail(f"CI_KIT_TEST_WORKFLOW_SOURCE={SOURCE!r}: use head or worktree")
    repo = tmp_path_factory.mktemp("source") / "repo"
    if SOURCE == "head":
        git(REPO, "clone", "-q", str(REPO), str(repo))
        git(repo, "checkout", "-q", "-B", "main")
        return repo
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in sorted(set(filter(None, listed.split("\0")))):
        origin = REPO / name
        if origin.is_file() or origin.is_symlink():  # a deleted file is still "cached"
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, repo / name, follow_symlinks=False)
    commit_all(repo, "the work tree, as it is")
    return repo


@pytest.fixture
def checkout(source: Path, tmp_path: Path) -> Path:
    """A fresh clone, as the runner's workspace: ``origin/main`` is the tested commit."""
    clone = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(source), str(clone))
    return clone


@pytest.fixture
def workflow(checkout: Path) -> dict[str, Any]:
    return load(checkout / WORKFLOW)


def head(checkout: Path) -> str:
    return git(checkout, "rev-parse", "HEAD")


# ---------------------------------------------------------------- the file itself


def test_every_action_is_pinned_to_a_full_sha_with_its_version(checkout: Path) -> None:
    uses = [line.strip() for line in (checkout / WORKFLOW).read_text().splitlines()]
    uses = [line for line in uses if re.match(r"(- )?uses:", line)]
    assert uses
    for line in uses:
        assert re.fullmatch(r"(- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*", line), line


def test_the_job_is_bounded_in_time_permissions_and_concurrency(
    workflow: dict[str, Any],
) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"] == {"group": "staging-deploy", "cancel-in-progress": False}
    job = workflow["jobs"]["deploy"]
    assert 0 < job["timeout-minutes"] <= 60
    assert all("timeout-minutes" in s for s in job["steps"] if s.get("id") in ("install", "deploy"))
    for step in job["steps"]:  # values reach scripts through env:, never spliced in
        assert "${{" not in step.get("run", ""), step.get("id")


@pytest.mark.parametrize(
    ("run", "deploys"),
    [
        pytest.param({}, True, id="ci passed on a push to main"),
        pytest.param({"conclusion": "failure"}, False, id="ci failed"),
        pytest.param({"event": "pull_request"}, False, id="a pull request's run"),
        pytest.param({"head_branch": "feature"}, False, id="another branch"),
        pytest.param(
            {"head_repository": {"full_name": "mallory/ci-kit"}}, False, id="a fork's main"
        ),
    ],
)
def test_only_ci_passing_on_a_push_to_this_repositorys_main_deploys(
    workflow: dict[str, Any], tmp_path: Path, run: dict[str, Any], deploys: bool
) -> None:
    runner = Runner(workflow, workflow_run_contexts("0" * 40, **run), tmp_path, tmp_path / "w")
    assert runner.should_run() is deploys


def test_a_dispatch_runs_the_job(workflow: dict[str, Any], tmp_path: Path) -> None:
    runner = Runner(workflow, dispatch_contexts("0" * 40), tmp_path, tmp_path / "w")
    assert runner.should_run()


# ---------------------------------------------------------------- refusals, in one line


def test_an_unconfigured_staging_fails_in_one_line_and_deploys_nothing(
    workflow: dict[str, Any], checkout: Path, tmp_path: Path
) -> None:
    contexts = workflow_run_contexts(head(checkout))
    contexts |= {"vars": UNCONFIGURED_VARS, "secrets": UNCONFIGURED_SECRETS}
    runs = Runner(workflow, contexts, checkout, tmp_path / "runner").run()
    assert [run.key for run in runs] == ["configured"]
    assert runs[0].returncode != 0
    assert len(runs[0].errors) == 1, runs[0].output
    assert runs[0].errors[0].startswith("::error::staging is not configured")
    assert "STAGING_SSH_HOST" in runs[0].errors[0]
    assert not (checkout / ".ci-kit").exists()


@pytest.mark.parametrize(
    "name", sorted((set(UNCONFIGURED_VARS) | set(UNCONFIGURED_SECRETS)) - OPTIONAL - REGISTRY)
)
def test_each_missing_setting_is_named(
    workflow: dict[str, Any], checkout: Path, tmp_path: Path, name: str
) -> None:
    contexts = configured(workflow_run_contexts(head(checkout)))
    kind = "vars" if name in UNCONFIGURED_VARS else "secrets"
    contexts[kind][name] = ""
    runs = Runner(workflow, contexts, checkout, tmp_path / "runner").run(until="configured")
    assert runs[-1].returncode != 0
    assert len(runs[-1].errors) == 1
    assert f"{'variable' if kind == 'vars' else 'secret'} {name}" in runs[-1].errors[0]


def test_an_image_repository_needs_registry_credentials(
    workflow: dict[str, Any], checkout: Path, tmp_path: Path
) -> None:
    contexts = configured(workflow_run_contexts(head(checkout)))
    contexts["vars"]["REGISTRY_REPOSITORY"] = "ghcr.io/acme/finance-report"
    runs = Runner(workflow, contexts, checkout, tmp_path / "runner").run(until="configured")
    assert runs[-1].errors == [
        "::error::staging is not configured, nothing was deployed: set variable "
        "REGISTRY_USERNAME, secret REGISTRY_PASSWORD in the repository's staging environment "
        "(Settings > Environments > staging)"
    ]


def test_a_dispatched_commit_off_main_is_refused_before_anything_is_installed(
    workflow: dict[str, Any], checkout: Path, tmp_path: Path
) -> None:
    git(checkout, "checkout", "-q", "-b", "elsewhere")
    (checkout / "elsewhere.txt").write_text("not on main\n")
    elsewhere = commit_all(checkout, "a commit only on a side branch")
    git(checkout, "checkout", "-q", "main")
    contexts = configured(dispatch_contexts(elsewhere))
    runs = Runner(workflow, contexts, checkout, tmp_path / "runner").run()
    assert runs[-1].key == "on-main"
    assert runs[-1].errors == [
        f"::error::{elsewhere} is not on main (not an ancestor of origin/main); "
        "only main's commits deploy to staging"
    ]
    assert "install" not in [run.key for run in runs]


def test_a_dispatched_ref_that_is_not_a_full_sha_is_refused(
    workflow: dict[str, Any], checkout: Path, tmp_path: Path
) -> None:
    contexts = configured(dispatch_contexts("main; touch pwned"))
    runs = Runner(workflow, contexts, checkout, tmp_path / "runner").run()
    assert [run.key for run in runs] == ["configured", "sha"]
    assert len(runs[-1].errors) == 1
    assert "pwned" not in runs[-1].output
    assert not (checkout / "pwned").exists()


# ---------------------------------------------------------------- the real deploy


@pytest.mark.slow
def test_a_ci_verified_commit_deploys_over_ssh_with_the_workflows_own_steps(
    workflow: dict[str, Any],
    checkout: Path,
    tmp_path: Path,
    sshd: Sshd,
    deploy_database: URL,
) -> None:
    commit = head(checkout)
    port = free_port()
    remote = tmp_path / "remote"
    secrets = {
        "STAGING_SSH_KEY": sshd.key.read_text().strip(),
        "STAGING_DATABASE_PASSWORD": TEST_PASSWORD,
        "STAGING_ADMIN_TOKEN": f"admin-{uuid.uuid4().hex}",
    }
    contexts = configured(
        workflow_run_contexts(commit),
        STAGING_SSH_HOST="127.0.0.1",
        STAGING_SSH_USER="root",
        STAGING_SSH_PORT=str(sshd.port),
        STAGING_SSH_KNOWN_HOSTS=sshd.known_hosts,
        STAGING_REMOTE_PATH=str(remote),
        STAGING_REMOTE_PYTHON=sys.executable,
        STAGING_BASE_URL=f"http://127.0.0.1:{port}",
        STAGING_HOST="127.0.0.1",
        STAGING_PORT=str(port),
        STAGING_DATABASE_URL=configured_url(deploy_database),
        **secrets,
    )
    runner = Runner(workflow, contexts, checkout, tmp_path / "runner", deploys=True)
    assert runner.should_run()
    try:
        runs = runner.run()
        outputs = "\n".join(f"## {run.key}: exit {run.returncode}\n{run.output}" for run in runs)
        assert runs[-1].key == "deploy", outputs
        assert runs[-1].returncode == 0, outputs
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            assert json.loads(reply.read()) == {"status": "ok", "commit": commit}
        assert (remote / "current").readlink() == Path("releases") / commit
        with psycopg.connect(**connect_kwargs(deploy_database)) as conn:  # the configured one
            assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    finally:
        stopped = _stop(runner, sshd)
    assert stopped.returncode == 0, stopped.stdout
    assert not (remote / "app.pid").exists()
    assert list(runner.temp.glob("*key*")) == []  # the key file lived for its step only
    assert sshd.known_hosts in (runner.home / ".ssh/known_hosts").read_text()
    for secret in secrets.values():
        for line in secret.splitlines():
            assert line not in outputs + stopped.stdout


def _stop(runner: Runner, sshd: Sshd) -> subprocess.CompletedProcess[str]:
    """``invoke deploy.stop`` with the deploy step's settings; kill what it leaves."""
    deploy = next(step for step in runner.steps if step.get("id") == "deploy")
    environ = runner.environ(deploy) | {"CI_KIT_SSH_KEY_FILE": str(sshd.key)}
    invoke = runner.work / "python/bin/invoke"  # none if the job ended before installing
    stopped = subprocess.run(
        [str(invoke) if invoke.exists() else "true", "deploy.stop"],
        cwd=runner.checkout,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    pid_file = Path(runner.contexts["vars"]["STAGING_REMOTE_PATH"]) / "app.pid"
    if pid_file.exists():  # the stop failed: no app may outlive the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    return stopped
