"""The Invoke tasks: ``build``, ``push``, ``e2e`` and ``deploy.<environment>``.

Each task is a few lines: read the configuration once, make a :class:`Shell`
that masks its secrets, call the module that does the work. A :class:`DeployError`
ends the task with its one-paragraph account and exit code 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from ci.deploy import health, manifest, overrides, registry, rollout, state
from ci.deploy.build import build_release
from ci.deploy.config import DeployConfig, load_deploy_config
from ci.deploy.errors import DeployConfigError, DeployError, ReleaseNotBuilt
from ci.deploy.plan import Release
from ci.deploy.shell import Shell
from ci.deploy.smoke import run_smoke_tests
from ci.deploy.source import resolve_commit
from ci.deploy.status import StatusRow, render_status
from ci.deploy.store import Store, store_for
from ci.deploy.targets import make_target

_COMMIT_HELP = "commit to ship: a SHA, branch or tag (default: HEAD)"
_DRY_HELP = "print the full plan, secrets masked, and change nothing (invoke --dry does too)"
_DIRTY_HELP = "build even with uncommitted changes (they are left out: the build is the commit)"
_ENV_HELP = "environment from invoke.yaml's deploy.environments (default: staging)"


def say(message: str) -> None:
    print(f"ci-kit deploy: {message}", flush=True)


def load(c: Context) -> tuple[DeployConfig, Shell]:
    """The validated configuration and a shell masking its secrets.

    The project is ``deploy.project``, which :func:`namespace` sets to the directory
    of the ``tasks.py`` invoke loaded: the same repository whatever directory
    invoke was started in. A runtime file (``invoke -f``) may point it elsewhere.
    """
    settings = _plain(c.config.get("deploy", {}))
    if not settings.get("project"):
        raise DeployConfigError(
            "deploy.project is not set; build the tasks with "
            "namespace(Path(__file__).resolve().parent) in the project's tasks.py"
        )
    # Invoke casts INVOKE_DEPLOY_* by the type already there ("false" -> True): the
    # configuration reads them again, below the layers Invoke ranks above them.
    shadowed = overrides.above_environment(c.config)
    config = load_deploy_config(settings, os.environ, shadowed=shadowed)
    return config, Shell(c, config.masker(), say)


@contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except DeployError as error:
        raise Exit(f"ci-kit deploy: error: {error}", code=1) from None


def _dry(c: Context, dry_run: bool) -> bool:
    return bool(dry_run or c.config.get("run", {}).get("dry", False))


def _release(
    shell: Shell, config: DeployConfig, commit: str, store: Store, *, allow_dirty: bool
) -> Release:
    """The release of ``commit``: the one its environment keeps, else this clone's build
    (built, and pushed with a repository, if it is not yet).

    A commit that went to the environment before is never rebuilt: another runner's
    build is the one that ran there, byte for byte.
    """
    release = manifest.fetch(store, config.releases_dir, commit)
    if release is None:
        release = manifest.load(config.releases_dir, commit)
    if release is None:
        release = build_release(shell, config, commit, allow_dirty=allow_dirty)
    else:
        manifest.verify(config.releases_dir, release)
    if config.image.repository and (release.image is None or not release.image.digest):
        release = build_release(shell, config, commit, allow_dirty=True)
        release = release.with_image(registry.push(shell, config, release))
        manifest.save(config.releases_dir, release)
    return release


def build(
    c: Context,
    commit: str = "HEAD",
    allow_dirty: bool = False,
    no_image: bool = False,
    rebuild: bool = False,
) -> None:
    """Build one commit: wheel + sdist (python -m build), its image, its release manifest."""
    with _reported():
        config, shell = load(c)
        sha = resolve_commit(shell, config.root, commit)
        if _dry(c, False):
            say(f"would build {sha} into {manifest.dist_dir(config.releases_dir, sha)}")
            return
        build_release(
            shell, config, sha, allow_dirty=allow_dirty, image=not no_image, rebuild=rebuild
        )


def push(c: Context, commit: str = "HEAD") -> None:
    """Push a built commit's image (login with --password-stdin); record the registry's digest."""
    with _reported():
        config, shell = load(c)
        sha = resolve_commit(shell, config.root, commit)
        release = manifest.require(config.releases_dir, sha)
        if _dry(c, False):
            say(f"would push {release.image.reference if release.image else 'no image'}")
            return
        pushed = registry.push(shell, config, release)
        manifest.save(config.releases_dir, release.with_image(pushed))


def e2e(c: Context, environment: str = "staging", commit: str = "") -> None:
    """Run the sample's e2e smoke tests against an environment's URL (never the unit suite)."""
    with _reported():
        config, shell = load(c)
        env = config.environment(environment)
        store = store_for(config, env)
        sha = commit or state.live_commit(store)
        if not sha:
            raise ReleaseNotBuilt(f"nothing is live on {env.name}; pass --commit")
        sha = resolve_commit(shell, config.root, sha)
        release = manifest.fetch(store, config.releases_dir, sha) or manifest.require(
            config.releases_dir, sha
        )
        settings = rollout.settings_for(config, env, shell, store)
        target = make_target(shell, config, env, settings)
        target.prepare(release)
        run_smoke_tests(
            shell, target.smoke_venv(release), env.base_url, target.settings.admin_token
        )


def _deploy(c: Context, name: str, commit: str, dry_run: bool, allow_dirty: bool) -> None:
    with _reported():
        config, shell = load(c)
        env = config.environment(name)
        store = store_for(config, env)
        source = (
            store_for(config, config.environment(env.promote_from)) if env.promote_from else None
        )
        ref = commit or "HEAD"
        if source is not None and not commit:
            ref = state.live_commit(source) or ""
            if not ref:
                raise ReleaseNotBuilt(f"nothing is live on {env.promote_from}; pass --commit")
        sha = resolve_commit(shell, config.root, ref)
        existing = manifest.load(config.releases_dir, sha)
        for line in rollout.plan(config, env, sha, existing, shell, store).lines(shell.masker):
            print(line)
        if _dry(c, dry_run):
            say("dry run: nothing was changed")
            return
        if source is not None:
            # Exactly what the source environment ran: its manifest, wheel, lock, digest.
            rollout.check_promotable(env, sha, source)
            release = manifest.require_kept(source, config.releases_dir, sha)
        else:
            release = _release(shell, config, sha, store, allow_dirty=allow_dirty)
        outcome = rollout.deploy(shell, config, env, release, store)
        print(f"{env.name}: {outcome.base_url} runs {sha}")


def staging(c: Context, commit: str = "", dry_run: bool = False, allow_dirty: bool = False) -> None:
    """Deploy one commit to staging: build if needed, migrate, switch, health, smoke, rollback."""
    _deploy(c, "staging", commit, dry_run, allow_dirty)


def production(c: Context, commit: str = "", dry_run: bool = False) -> None:
    """Promote to production what staging ran (default: staging's live commit), never a rebuild."""
    _deploy(c, "production", commit, dry_run, allow_dirty=False)


def rollback(c: Context, environment: str = "staging", dry_run: bool = False) -> None:
    """Return an environment to the release before the live one (health-checked, smoke-tested)."""
    with _reported():
        config, shell = load(c)
        env = config.environment(environment)
        store = store_for(config, env)
        if _dry(c, dry_run):
            stack = state.live_stack(state.read_history(store))
            target = stack[-2][:12] if len(stack) > 1 else "nothing (no earlier release)"
            say(f"would roll {env.name} back to {target}")
            return
        rollout.rollback(shell, config, env, store)


def status(c: Context, environment: str = "") -> None:
    """Show what is live where: a table of commit, health, previous release, state; processes."""
    with _reported():
        config, shell = load(c)
        names = [environment] if environment else sorted(config.environments)
        rows, processes = [], []
        for name in names:
            env = config.environment(name)
            store = store_for(config, env)
            history = state.read_history(store)
            stack = state.live_stack(history)
            reply = health.probe(env.base_url)
            rows.append(
                StatusRow(
                    environment=name,
                    target=env.target,
                    base_url=env.base_url,
                    live_commit=stack[-1] if stack else None,
                    deployed_at=history[-1].deployed_at if history else None,
                    health=f"healthy on {reply.commit}" if reply.ok else reply.detail,
                    previous_commit=stack[-2] if len(stack) > 1 else None,
                    state_location=store.where,
                )
            )
            processes.append(f"{name}: {make_target(shell, config, env, None).describe()}")
        print(render_status(rows))
        print("\n".join(processes))


def stop(c: Context, environment: str = "staging") -> None:
    """Stop an environment's app (local target); its releases and history are kept."""
    with _reported():
        config, shell = load(c)
        env = config.environment(environment)
        say(make_target(shell, config, env, None).stop())


def namespace(project: Path) -> Collection:
    """The tasks as one Collection, with the deploy defaults and ``project`` in its configuration.

    ``project`` is the repository the tasks build and deploy (its git history, its
    ``.ci-kit/`` state). It travels in invoke's configuration, as ``deploy.project``,
    so every task reads it from its context like any other setting.
    """
    deploy = Collection("deploy")
    deploy.add_task(
        Task(
            staging, help={"commit": _COMMIT_HELP, "dry-run": _DRY_HELP, "allow-dirty": _DIRTY_HELP}
        )
    )
    deploy.add_task(
        Task(
            production,
            help={"commit": "commit to promote (default: live on staging)", "dry-run": _DRY_HELP},
        )
    )
    deploy.add_task(Task(rollback, help={"environment": _ENV_HELP, "dry-run": _DRY_HELP}))
    deploy.add_task(Task(status, help={"environment": "only this environment (default: all)"}))
    deploy.add_task(Task(stop, help={"environment": _ENV_HELP}))
    ns = Collection()
    ns.add_task(
        Task(
            build,
            help={
                "commit": _COMMIT_HELP,
                "allow-dirty": _DIRTY_HELP,
                "no-image": "skip the OCI image even if deploy.image.repository is set",
                "rebuild": "build again even if the commit's release manifest exists",
            },
        )
    )
    ns.add_task(Task(push, help={"commit": _COMMIT_HELP}))
    ns.add_task(
        Task(
            e2e,
            help={
                "environment": _ENV_HELP,
                "commit": "whose smoke tests to run (default: the commit live there)",
            },
        )
    )
    ns.add_collection(deploy)
    # Only the project: the defaults live in the configuration's model, where Invoke
    # finds no boolean, number or list to cast an INVOKE_DEPLOY_* variable by.
    ns.configure({"deploy": {"project": str(project)}})
    return ns


def _plain(value: Any) -> Any:
    """Invoke's config proxies as plain dicts and lists."""
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


__all__ = ["namespace"]
if __name__ == "__main__":  # pragma: no cover
    sys.exit("run these tasks with invoke: invoke --list")
