"""Release manifests on disk: ``<state>/releases/<sha>.json`` and its ``<sha>/dist/``."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ci.deploy.errors import ArtifactMismatch, ReleaseNotBuilt
from ci.deploy.plan import Artifact, Release
from ci.deploy.store import Store, write_atomic


def manifest_path(releases_dir: Path, commit: str) -> Path:
    return releases_dir / f"{commit}.json"


def dist_dir(releases_dir: Path, commit: str) -> Path:
    return releases_dir / commit / "dist"


def load(releases_dir: Path, commit: str) -> Release | None:
    """The recorded release of ``commit``, or None when it was never built."""
    path = manifest_path(releases_dir, commit)
    if not path.is_file():
        return None
    return Release.from_json(path.read_text())


def require(releases_dir: Path, commit: str) -> Release:
    """The release of ``commit`` with its artifacts verified against their hashes."""
    release = load(releases_dir, commit)
    if release is None:
        raise ReleaseNotBuilt(
            f"commit {commit[:12]} has not been built here; run: invoke build --commit {commit}"
        )
    verify(releases_dir, release)
    return release


def save(releases_dir: Path, release: Release) -> Path:
    """Write the manifest atomically: a reader sees the old one or the new one."""
    path = manifest_path(releases_dir, release.commit)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, release.to_json())
    return path


def artifact_path(releases_dir: Path, release: Release, artifact: Artifact) -> Path:
    return dist_dir(releases_dir, release.commit) / artifact.name


def verify(releases_dir: Path, release: Release) -> None:
    """Refuse artifacts that changed since the build: what is deployed is what was built."""
    for artifact in release.artifacts:
        path = artifact_path(releases_dir, release, artifact)
        if not path.is_file():
            raise ReleaseNotBuilt(
                f"{path} of release {release.short} is missing; rebuild with "
                f"invoke build --commit {release.commit}"
            )
        if sha256_of(path) != artifact.sha256:
            raise ArtifactMismatch(
                f"{path} does not match the SHA-256 its manifest recorded; "
                "it changed after the build: rebuild it"
            )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def publish(store: Store, releases_dir: Path, release: Release) -> None:
    """Put a release with its environment, so any runner can roll back to or promote it.

    Artifacts go first and the manifest last: a reader that finds the manifest
    finds everything it names.
    """
    manifest = release.to_json().encode()
    if store.read(_stored_manifest(release.commit)) == manifest:
        return
    for artifact in release.artifacts:
        data = artifact_path(releases_dir, release, artifact).read_bytes()
        store.write(_stored_artifact(release.commit, artifact), data)
    store.write(_stored_manifest(release.commit), manifest)


def fetch(store: Store, releases_dir: Path, commit: str) -> Release | None:
    """The release of ``commit`` as its environment keeps it, copied here and verified;
    None when it never went there."""
    stored = store.read(_stored_manifest(commit))
    if stored is None:
        return None
    release = Release.from_json(stored.decode())
    for artifact in release.artifacts:
        path = artifact_path(releases_dir, release, artifact)
        if path.is_file() and sha256_of(path) == artifact.sha256:
            continue
        data = store.read(_stored_artifact(commit, artifact))
        if data is None:
            raise ReleaseNotBuilt(
                f"{artifact.name} of release {commit[:12]} is missing at {store.where}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    save(releases_dir, release)
    verify(releases_dir, release)
    return release


def require_kept(store: Store, releases_dir: Path, commit: str) -> Release:
    """:func:`fetch`, for a release that must be there (one that went live)."""
    release = fetch(store, releases_dir, commit)
    if release is None:
        raise ReleaseNotBuilt(
            f"release {commit[:12]} is not kept at {store.where}: it never went live there"
        )
    return release


def _stored_manifest(commit: str) -> str:
    return f"kept-releases/{commit}/manifest.json"


def _stored_artifact(commit: str, artifact: Artifact) -> str:
    return f"kept-releases/{commit}/{artifact.name}"
