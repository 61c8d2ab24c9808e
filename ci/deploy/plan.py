"""What a deploy will do, as values: releases, plans and secret masking. Pure, no I/O.

A :class:`Release` is the record of one commit's build (its manifest on disk); a
:class:`DeployPlan` lists the steps a deploy of it to one environment takes, so
``--dry-run`` and the real deploy describe the same thing. :class:`Masker` is the
one place secrets are replaced before anything is shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ci_kit.dburl import secret_forms

MASK = "***"
MANIFEST_VERSION = 1
LOCK_NAME = "requirements.lock"
"""The artifact pinning a release's dependencies, hashes included (see ci.deploy.build)."""


@dataclass(frozen=True)
class Artifact:
    """One built file (wheel or sdist), by name and SHA-256, relative to the release."""

    name: str
    sha256: str

    @property
    def is_wheel(self) -> bool:
        return self.name.endswith(".whl")


@dataclass(frozen=True)
class Image:
    """An OCI image of a release: where it is tagged, and the digest the registry gave it."""

    repository: str
    tag: str
    image_id: str
    digest: str | None = None
    pushed_to: str | None = None

    @property
    def reference(self) -> str:
        """``repo:tag`` before a push; ``repo@sha256:...`` (immutable) once pushed."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Release:
    """The manifest of one commit's build: what was built from what, and its hashes."""

    commit: str
    created: str
    source: str
    artifacts: tuple[Artifact, ...]
    image: Image | None = None

    @property
    def short(self) -> str:
        return self.commit[:12]

    @property
    def wheel(self) -> Artifact:
        for artifact in self.artifacts:
            if artifact.is_wheel:
                return artifact
        raise ValueError(f"release {self.short} has no wheel")

    @property
    def lock(self) -> Artifact | None:
        """The pinned, hashed requirements its venvs install; None for releases built before."""
        for artifact in self.artifacts:
            if artifact.name == LOCK_NAME:
                return artifact
        return None

    def with_image(self, image: Image | None) -> Release:
        return replace(self, image=image)

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "version": MANIFEST_VERSION,
            "commit": self.commit,
            "created": self.created,
            "source": self.source,
            "artifacts": [{"name": a.name, "sha256": a.sha256} for a in self.artifacts],
            "image": None,
        }
        if self.image is not None:
            body["image"] = {
                "repository": self.image.repository,
                "tag": self.image.tag,
                "image_id": self.image.image_id,
                "digest": self.image.digest,
                "pushed_to": self.image.pushed_to,
            }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Release:
        body = json.loads(text)
        image = body.get("image")
        return cls(
            commit=body["commit"],
            created=body["created"],
            source=body["source"],
            artifacts=tuple(Artifact(a["name"], a["sha256"]) for a in body["artifacts"]),
            image=Image(**image) if image else None,
        )


@dataclass(frozen=True)
class Step:
    """One step of a deploy: what it does, and the command it runs when there is one."""

    name: str
    description: str
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployPlan:
    """Every step a deploy of one commit to one environment will take, in order."""

    environment: str
    target: str
    commit: str
    base_url: str
    database: str
    live: str | None
    steps: tuple[Step, ...] = field(default=())

    @property
    def noop(self) -> bool:
        return self.live == self.commit

    def lines(self, masker: Masker) -> list[str]:
        """The plan as a person reads it, every secret masked."""
        head = [
            f"deploy {self.commit[:12]} to {self.environment} ({self.target} target)",
            f"  url:      {self.base_url}",
            f"  database: {self.database}",
            f"  live now: {self.live[:12] if self.live else 'nothing'}",
        ]
        if self.noop:
            return [*head, "  nothing to do: this commit is already live"]
        body = []
        for number, step in enumerate(self.steps, 1):
            body.append(f"  {number}. {step.name}: {step.description}")
            if step.command:
                body.append(f"       $ {format_command(step.command)}")
        return [masker.mask(line) for line in (*head, *body)]


def format_command(argv: Sequence[str]) -> str:
    """A command line as a shell would need it quoted, for display only."""
    import shlex

    return shlex.join(argv)


class Masker:
    """Replaces known secrets, raw or URL-encoded, by ``***`` in any text shown."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms.update(secret_forms(secret))
        # Longest first, so a secret containing another is masked whole.
        self._forms = tuple(sorted(forms, key=len, reverse=True))

    def with_secrets(self, *secrets: str | None) -> Masker:
        merged = Masker(secrets)
        merged._forms = tuple(sorted({*self._forms, *merged._forms}, key=len, reverse=True))
        return merged

    def mask(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, MASK)
        return text

    def leaks(self, text: str) -> bool:
        """Whether the text contains any secret (raw or encoded)."""
        return any(form in text for form in self._forms)

    def mask_env(self, env: Mapping[str, str]) -> dict[str, str]:
        return {key: self.mask(value) for key, value in env.items()}
