"""A deploy, start to end: plan, lock, install, migrate, switch, health, smoke, rollback.

Any failure after the switch puts the previous release back (or stops the app when
nothing was live before) and raises :class:`RolloutFailed` whose message is the
whole account: what failed, what was done about it, and what is live now.
Migrations are not reversed: they must stay compatible with the previous release
(expand first, contract in a later release), the usual rule for rolling deploys.
"""

from __future__ import annotations

from dataclasses import dataclass

from ci.deploy import health, manifest, state
from ci.deploy.config import DeployConfig, EnvironmentConfig
from ci.deploy.database import resolve
from ci.deploy.errors import (
    DeployError,
    HealthCheckFailed,
    NothingToRollBack,
    NotPromotable,
    RolloutFailed,
)
from ci.deploy.plan import DeployPlan, Release, Step
from ci.deploy.shell import Shell
from ci.deploy.smoke import run_smoke_tests
from ci.deploy.store import Store
from ci.deploy.targets import AppSettings, Target, make_target

LOCK_TIMEOUT_SECONDS = 1800.0


@dataclass(frozen=True)
class Outcome:
    environment: str
    commit: str
    base_url: str
    changed: bool


def plan(
    config: DeployConfig,
    env: EnvironmentConfig,
    commit: str,
    release: Release | None,
    shell: Shell,
    store: Store,
) -> DeployPlan:
    """The steps a deploy of ``commit`` to ``env`` takes; reads state, changes nothing."""
    live = state.live_commit(store)
    steps: list[Step] = [Step("state", f"history, releases and lock at {store.where}")]
    if env.promote_from:
        steps.append(
            Step(
                "promote", f"the artifacts {env.promote_from} runs for {commit[:12]}, not a rebuild"
            )
        )
    elif release is None:
        steps.append(
            Step(
                "build",
                f"wheel and sdist of {commit[:12]}'s {config.build.directory}/ "
                "from git archive (python -m build)",
            )
        )
        if config.image.repository:
            steps.append(
                Step("image", f"{config.image.repository}:{commit}, OCI labels, then push")
            )
    else:
        steps.append(
            Step("release", f"already built: {manifest.manifest_path(config.releases_dir, commit)}")
        )
    target = make_target(shell, config, env, None)
    steps += target.steps(commit, live)
    steps.append(
        Step(
            "health",
            f"poll {env.base_url}/healthz until it reports {commit[:12]} "
            f"(at most {env.health_timeout:g} s)",
        )
    )
    if env.smoke_tests:
        steps.append(Step("smoke", f"e2e smoke tests against {env.base_url} (ADMIN_TOKEN in env)"))
    steps.append(
        Step(
            "on failure", f"roll back to {live[:12]}" if live else "stop the app (nothing was live)"
        )
    )
    return DeployPlan(
        environment=env.name,
        target=env.target,
        commit=commit,
        base_url=env.base_url,
        database=env.database_display(),
        live=live,
        steps=tuple(steps),
    )


def check_promotable(env: EnvironmentConfig, commit: str, source: Store) -> None:
    """Production takes only a commit its source environment ran successfully."""
    if not env.promote_from:
        return
    if commit not in state.ran_healthy(source):
        raise NotPromotable(
            f"{commit[:12]} never went live on {env.promote_from}; {env.name} only promotes what "
            f"{env.promote_from} ran healthy and smoke-tested: deploy it there first"
        )


def settings_for(
    config: DeployConfig, env: EnvironmentConfig, shell: Shell, store: Store
) -> AppSettings:
    """The app's database and admin token; adds both secrets to the shell's masker."""
    database = resolve(config, env, shell.log)
    token = env.admin_token or state.admin_token(store)
    shell.masker = shell.masker.with_secrets(token, database.password)
    return AppSettings(database, token)


def deploy(
    shell: Shell, config: DeployConfig, env: EnvironmentConfig, release: Release, store: Store
) -> Outcome:
    """Roll ``release`` out to ``env``; roll back and raise :class:`RolloutFailed` on failure.

    The release is kept with the environment before anything changes, so any
    runner can later roll back to it, or promote it, without rebuilding it.
    """
    with store.locked(timeout=LOCK_TIMEOUT_SECONDS, log=shell.log):
        live = state.live_commit(store)
        if live == release.commit:
            now = health.probe(env.base_url)
            if now.ok and now.commit == release.commit:
                shell.log(
                    f"{release.short} is already live on {env.name} and healthy: nothing to do"
                )
                return Outcome(env.name, release.commit, env.base_url, changed=False)
            shell.log(
                f"{release.short} is recorded live on {env.name} but {env.base_url} says "
                f"{now.detail}; deploying it again"
            )
        settings = settings_for(config, env, shell, store)
        target = make_target(shell, config, env, settings)
        try:
            manifest.publish(store, config.releases_dir, release)
            target.prepare(release)
            target.migrate(release)
        except DeployError as error:
            # Nothing was switched: whatever was live still is.
            raise RolloutFailed(
                f"deploy of {release.short} to {env.name} failed before the switch: {error}; "
                f"{_live_text(live)} is still live, untouched"
            ) from None
        try:
            _go_live(shell, target, env, release)
        except DeployError as error:
            raise RolloutFailed(
                _roll_back(shell, config, target, env, release, live, error, store)
            ) from None
        state.record(store, release.commit, "promote" if env.promote_from else "deploy")
    shell.log(f"{release.short} is live on {env.name}: {env.base_url}")
    return Outcome(env.name, release.commit, env.base_url, changed=True)


def rollback(shell: Shell, config: DeployConfig, env: EnvironmentConfig, store: Store) -> Outcome:
    """Return ``env`` to the release before the live one, health-checked and smoke-tested."""
    with store.locked(timeout=LOCK_TIMEOUT_SECONDS, log=shell.log):
        stack = state.live_stack(state.read_history(store))
        if len(stack) < 2:
            raise NothingToRollBack(f"{env.name} has no earlier release to roll back to")
        previous = stack[-2]
        release = manifest.require_kept(store, config.releases_dir, previous)
        target = make_target(shell, config, env, settings_for(config, env, shell, store))
        shell.log(f"rolling {env.name} back from {stack[-1][:12]} to {release.short}")
        try:
            target.prepare(release)
            _go_live(shell, target, env, release)
        except DeployError as error:
            raise RolloutFailed(
                f"rollback of {env.name} to {release.short} failed: {error}; "
                "run invoke deploy.status to see what is running"
            ) from None
        state.record(store, previous, "rollback")
    shell.log(f"{release.short} is live on {env.name} again: {env.base_url}")
    return Outcome(env.name, release.commit, env.base_url, changed=True)


def _go_live(shell: Shell, target: Target, env: EnvironmentConfig, release: Release) -> None:
    target.activate(release)
    reply = health.wait_for(
        env.base_url, release.commit, timeout=env.health_timeout, alive=target.failure
    )
    if not (reply.ok and reply.commit == release.commit):
        raise HealthCheckFailed(
            f"{env.base_url}/healthz did not report {release.short} healthy within "
            f"{env.health_timeout:g} s: {reply.detail}"
        )
    shell.log(f"{env.base_url}/healthz reports {release.short}: ok")
    if env.smoke_tests:
        token = target.settings.admin_token
        run_smoke_tests(shell, target.smoke_venv(release), env.base_url, token)


def _roll_back(
    shell: Shell,
    config: DeployConfig,
    target: Target,
    env: EnvironmentConfig,
    release: Release,
    live: str | None,
    error: DeployError,
    store: Store,
) -> str:
    """Put the previous release back; the account of the failure and of the recovery."""
    account = f"deploy of {release.short} to {env.name} failed: {error}. "
    if live is None:
        stopped = target.stop()
        return account + f"Nothing was live before, so nothing to roll back to: {stopped}."
    shell.log(f"rolling back {env.name} to {live[:12]}")
    try:
        previous = manifest.require_kept(store, config.releases_dir, live)
        target.prepare(previous)  # a runner that never deployed it has nothing of it yet
        target.activate(previous)
        reply = health.wait_for(
            env.base_url, live, timeout=env.health_timeout, alive=target.failure
        )
    except DeployError as again:
        return account + f"The rollback to {live[:12]} failed too: {again}. {env.name} is DOWN."
    if not reply.ok:
        return account + f"Rolled back to {live[:12]}, but it is not healthy: {reply.detail}."
    return (
        account + f"Rolled back automatically: {live[:12]} is live and healthy on {env.base_url}. "
        "Migrations the failed release ran were kept."
    )


def _live_text(live: str | None) -> str:
    return live[:12] if live else "nothing (no earlier release)"
