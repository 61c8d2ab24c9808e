"""A release pins its dependencies at build time; every venv of it installs exactly those.

One real build of ``backend_sample`` from a clone of this repository (the module's
fixture), resolved with uv against the package index; the command shapes of the
installs and of the ssh target's remote venv are checked without running them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
from invoke.context import Context, MockContext
from invoke.runners import Result
from sqlalchemy.engine import URL

from ci.deploy import manifest, venvs
from ci.deploy.build import build_release
from ci.deploy.config import DeployConfig, load_deploy_config
from ci.deploy.errors import ArtifactMismatch
from ci.deploy.plan import LOCK_NAME, Artifact, Masker, Release
from ci.deploy.shell import Argv, Output, Shell
from tests.automation.deploy_helpers import REPO, git

COMMIT = "c" * 40
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(text: str) -> list[str]:
    """The lock's requirements, each with its ``\\``-continued options on one line."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and line.split()[0][0] != "#"
    ]


def pins(text: str) -> dict[str, str]:
    found = {}
    for entry in lock_entries(text):
        match = _PIN.match(entry.split()[0])
        assert match, f"not pinned with ==: {entry}"
        found[canonical(match[1])] = match[2]
    return found


def frozen(venv: Path) -> dict[str, str]:
    uv = venvs.uv_binary()
    assert uv is not None
    out = subprocess.run(
        [uv, "pip", "freeze", "--python", str(venv / "bin" / "python")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    versions = {}
    for line in out.splitlines():
        name, _, version = line.partition("==")
        versions[canonical(name.split(" @ ")[0].strip())] = version or "(wheel)"
    return versions


class Runner:
    """Invoke's ``Context.run`` as far as :class:`Shell` uses it, on ``subprocess.run``.

    Invoke's own runner leaves its pipes to the garbage collector, and the
    ResourceWarning that follows fails a later test under ``filterwarnings = error``.
    """

    def run(self, command: str, **options: Any) -> Result:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            env={**os.environ, **options.get("env", {})},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return Result(stdout=done.stdout, stderr=done.stderr, exited=done.returncode)


def shell(lines: list[str]) -> Shell:
    return Shell(cast(Context, Runner()), Masker(), lines.append)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[DeployConfig, Release, list[str]]:
    """A clone of this repository's last commit, its ``backend_sample`` built once."""
    if venvs.uv_binary() is None:
        pytest.skip("uv is not installed (the deploy extra)")
    base = tmp_path_factory.mktemp("pinned")
    repo = base / "repo"
    git(base, "clone", "-q", str(REPO), str(repo))
    config = load_deploy_config({"state_root": str(base / "state")}, {}, repo)
    lines: list[str] = []
    release = build_release(shell(lines), config, git(repo, "rev-parse", "HEAD"), image=False)
    return config, release, lines


def test_the_manifest_records_the_lock_and_its_hash(
    built: tuple[DeployConfig, Release, list[str]],
) -> None:
    config, release, _ = built
    lock = manifest.artifact_path(config.releases_dir, release, release.lock or release.wheel)
    assert release.lock == Artifact(LOCK_NAME, manifest.sha256_of(lock))
    recorded = json.loads(manifest.manifest_path(config.releases_dir, release.commit).read_text())
    assert {"name": LOCK_NAME, "sha256": release.lock.sha256} in recorded["artifacts"]
    assert manifest.load(config.releases_dir, release.commit) == release
    manifest.verify(config.releases_dir, release)


def test_every_requirement_is_pinned_with_hashes_and_the_wheel_is_not_one(
    built: tuple[DeployConfig, Release, list[str]],
) -> None:
    config, release, _ = built
    assert release.lock is not None
    text = manifest.artifact_path(config.releases_dir, release, release.lock).read_text()
    entries = lock_entries(text)
    for entry in entries:
        assert "--hash=sha256:" in entry, entry
    pinned = pins(text)
    # The app's dependencies and the smoke extra's, resolved; the wheel itself left out.
    assert {"fastapi", "uvicorn", "sqlalchemy", "alembic", "pytest", "httpx"} <= set(pinned)
    assert "backend-sample" not in pinned
    assert "file:" not in text
    assert " @ " not in text


def test_venvs_installed_from_the_lock_have_exactly_its_versions_every_time(
    built: tuple[DeployConfig, Release, list[str]], tmp_path: Path
) -> None:
    config, release, _ = built
    assert release.lock is not None
    wheel = manifest.artifact_path(config.releases_dir, release, release.wheel)
    lock = manifest.artifact_path(config.releases_dir, release, release.lock)
    expected = {**pins(lock.read_text()), "backend-sample": "(wheel)"}

    installed = []
    for name in ("first", "second"):
        lines: list[str] = []
        venv = venvs.install(shell(lines), tmp_path / name, wheel, lock=lock)
        assert any("--require-hashes -r" in line for line in lines), lines
        assert any(f"--no-deps {wheel}" in line for line in lines), lines
        installed.append(frozen(venv))

    assert installed[0] == expected
    assert installed[1] == installed[0]


def test_a_changed_lock_is_refused_like_a_changed_wheel(
    built: tuple[DeployConfig, Release, list[str]],
) -> None:
    config, release, _ = built
    assert release.lock is not None
    lock = manifest.artifact_path(config.releases_dir, release, release.lock)
    original = lock.read_bytes()
    lock.write_bytes(original + b"evil==6.6.6 --hash=sha256:" + b"0" * 64 + b"\n")
    try:
        with pytest.raises(ArtifactMismatch, match=LOCK_NAME):
            manifest.verify(config.releases_dir, release)
    finally:
        lock.write_bytes(original)


def test_a_release_built_before_locks_has_none() -> None:
    old = Release(
        COMMIT, "2024-01-01T00:00:00Z", "origin", (Artifact("app-1-py3-none-any.whl", "a"),)
    )
    assert Release.from_json(old.to_json()).lock is None


class Recorder(Shell):
    """A shell that records the commands, makes the venv directory, and runs nothing."""

    def __init__(self, venv: Path) -> None:
        super().__init__(MockContext(), Masker(), lambda _: None)
        self.venv = venv
        self.commands: list[list[str]] = []

    def run(self, argv: Argv, **_: Any) -> Output:
        self.commands.append([str(arg) for arg in argv])
        self.venv.mkdir(exist_ok=True)
        return Output("", "", 0)


@pytest.mark.parametrize("uv", [True, False], ids=["uv", "pip"])
def test_install_without_a_lock_resolves_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uv: bool
) -> None:
    if not uv:
        monkeypatch.setattr(venvs, "uv_binary", lambda: None)
    recorder = Recorder(tmp_path / "venv")
    wheel = tmp_path / "app-1-py3-none-any.whl"
    venvs.install(recorder, recorder.venv, wheel)
    *_, install = recorder.commands
    assert install[-1] == f"app[smoke] @ {wheel.as_uri()}"
    assert "--require-hashes" not in install
    assert "--no-deps" not in install


@pytest.mark.parametrize("uv", [True, False], ids=["uv", "pip"])
def test_install_with_a_lock_takes_its_hashes_then_the_wheel_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uv: bool
) -> None:
    if not uv:
        monkeypatch.setattr(venvs, "uv_binary", lambda: None)
    recorder = Recorder(tmp_path / "venv")
    wheel, lock = tmp_path / "app-1-py3-none-any.whl", tmp_path / LOCK_NAME
    venvs.install(recorder, recorder.venv, wheel, lock=lock)
    *_, pinned, alone = recorder.commands
    assert pinned[-3:] == ["--require-hashes", "-r", str(lock)]
    assert alone[-2:] == ["--no-deps", str(wheel)]
    assert pinned[:-3] == alone[:-2]  # the same installer, into the same venv
    assert (recorder.venv / ".ci-kit-complete").is_file()


class FakeConnection:
    """Fabric's Connection as far as ``SshTarget.prepare`` uses it; records, runs nothing."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.uploads: list[tuple[Any, str]] = []

    def run(self, command: str, **_: Any) -> Any:
        self.commands.append(command)
        return Result(stdout="", exited=0)

    def put(self, local: Any, remote: str) -> None:
        self.uploads.append((local, remote))


@pytest.fixture
def ssh_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    from ci.deploy.targets import AppSettings, SshTarget

    environment = {
        "target": "ssh",
        "ssh_host": "deploy.invalid",
        "remote_path": "/srv/app",
        "port": 8000,
    }
    config = load_deploy_config({"environments": {"staging": environment}}, {}, tmp_path)
    settings = AppSettings(URL.create("postgresql", host="db.invalid", database="app"), "token")
    target = SshTarget(
        Shell(MockContext(), Masker(), lambda _: None),
        config,
        config.environment("staging"),
        settings,
    )
    target._connection = FakeConnection()
    local: list[Any] = []
    monkeypatch.setattr(venvs, "install", lambda *args, **kwargs: local.append((args, kwargs)))
    return target, local


def test_the_ssh_target_installs_the_remote_venv_from_the_same_lock(
    ssh_target: tuple[Any, list[Any]],
) -> None:
    target, local = ssh_target
    wheel = Artifact("app-1-py3-none-any.whl", "a")
    release = Release(COMMIT, "2024-01-01T00:00:00Z", "origin", (wheel, Artifact(LOCK_NAME, "b")))
    directory = f"/srv/app/releases/{COMMIT}"
    dist = manifest.dist_dir(target.config.releases_dir, COMMIT)

    target.prepare(release)

    uploads = target.connection.uploads
    assert (str(dist / LOCK_NAME), f"{directory}/{LOCK_NAME}") in uploads
    assert (str(dist / wheel.name), f"{directory}/{wheel.name}") in uploads
    install = target.connection.commands[-1]
    pip = f"{directory}/venv/bin/pip install --progress-bar off"
    pinned = f"{pip} --require-hashes -r {directory}/{LOCK_NAME}"
    alone = (
        f"{directory}/venv/bin/pip install --progress-bar off --no-deps {directory}/{wheel.name}"
    )
    assert f" && {pinned} && {alone} && touch " in install
    ((args, kwargs),) = local
    assert args[2] == dist / wheel.name
    assert kwargs == {"lock": dist / LOCK_NAME}


def test_the_ssh_target_installs_a_release_without_a_lock_as_before(
    ssh_target: tuple[Any, list[Any]],
) -> None:
    target, local = ssh_target
    wheel = Artifact("app-1-py3-none-any.whl", "a")
    target.prepare(Release(COMMIT, "2024-01-01T00:00:00Z", "origin", (wheel,)))

    directory = f"/srv/app/releases/{COMMIT}"
    assert [remote for _, remote in target.connection.uploads][-1] == f"{directory}/{wheel.name}"
    install = target.connection.commands[-1]
    assert "--require-hashes" not in install
    assert f"pip install --progress-bar off {directory}/{wheel.name} && touch " in install
    ((_, kwargs),) = local
    assert kwargs == {"lock": None}
