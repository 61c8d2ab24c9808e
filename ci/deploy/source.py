"""The commit to ship: resolving it, checking the work tree, exporting exactly it."""

from __future__ import annotations

import tarfile
import urllib.parse
from pathlib import Path

from ci.deploy.errors import DirtyWorkTree, UnknownCommit
from ci.deploy.shell import Shell


def resolve_commit(shell: Shell, root: Path, ref: str) -> str:
    """The full SHA of ``ref`` (a branch, tag, SHA or ``HEAD``)."""
    output = shell.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=root,
        check=False,
        query=True,
    )
    sha = output.stdout.strip()
    if not output.ok or len(sha) != 40:
        raise UnknownCommit(f"{ref!r} is not a commit in {root}; fetch it or check the SHA")
    return sha


def check_clean(shell: Shell, root: Path) -> None:
    """Refuse a work tree with uncommitted or untracked changes.

    The build always uses the commit's own files (:func:`export`), so such changes
    would silently not be deployed: a new migration left untracked is the classic.
    """
    status = shell.run(["git", "status", "--porcelain"], cwd=root, query=True).stdout
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    if changed:
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        raise DirtyWorkTree(
            f"the work tree has uncommitted changes ({shown}); a deploy ships exactly one "
            "commit: commit or stash them, or pass --allow-dirty to build the commit without them"
        )


def origin_url(shell: Shell, root: Path) -> str:
    """Where the source lives, for the image's ``org.opencontainers.image.source`` label."""
    output = shell.run(["git", "remote", "get-url", "origin"], cwd=root, check=False, query=True)
    url = output.stdout.strip()
    if not output.ok or not url:
        return root.as_uri()
    # A remote URL may carry a token (https://user:token@host/...): labels are public.
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname or ""))
    return url


def export(shell: Shell, root: Path, commit: str, dest: Path) -> Path:
    """The files of ``commit`` (nothing else from the work tree) under ``dest/src``."""
    archive = dest / "source.tar"
    shell.run(["git", "archive", "--format=tar", "-o", archive, commit], cwd=root)
    source = dest / "src"
    source.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(source, filter="data")
    archive.unlink()
    return source
