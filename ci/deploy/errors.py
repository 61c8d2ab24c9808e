"""The deploy failures a person can act on, one type each, messages already masked."""

from __future__ import annotations

from ci_kit.errors import CiKitError


class DeployError(CiKitError):
    """Base of every deploy failure; the tasks print it as one account and exit non-zero."""


class DeployConfigError(DeployError):
    """``invoke.yaml`` or an environment variable describes an impossible deploy."""


class DirtyWorkTree(DeployError):
    """The work tree has uncommitted changes, which a build of one commit would leave out."""


class UnknownCommit(DeployError):
    """The commit to build or deploy does not exist in this repository."""


class CommandFailed(DeployError):
    """A command the deploy ran exited non-zero."""


class ReleaseNotBuilt(DeployError):
    """There is no release manifest (or no artifact) for the commit to deploy."""


class ArtifactMismatch(DeployError):
    """An artifact on disk no longer has the hash its manifest recorded."""


class NotPromotable(DeployError):
    """Production only takes a commit that staging has run, healthy and smoke-tested."""


class DeployLocked(DeployError):
    """Another deploy to the same environment holds its lock."""


class HealthCheckFailed(DeployError):
    """The new release did not report itself healthy, on the new commit, in time."""


class SmokeTestsFailed(DeployError):
    """The E2E smoke tests failed, errored, were skipped, or none ran."""


class RolloutFailed(DeployError):
    """The deploy failed; the message says what, and where the environment stands now."""


class NothingToRollBack(DeployError):
    """The environment has no earlier release to return to."""


class RegistryError(DeployError):
    """Logging in to, or pushing to, the image registry failed."""
