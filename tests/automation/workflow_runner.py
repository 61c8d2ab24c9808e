"""A GitHub Actions job run as a hosted runner would: its steps, read from the YAML.

``run:`` steps execute with bash, ``${{ }}`` replaced from contexts a test defines;
an expression this module cannot evaluate, or a name no context holds, fails the
test, so a new setting in a workflow is noticed. ``actions/checkout`` and
``actions/setup-python`` are stood in for by a ``git checkout`` and a fresh venv.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.automation.deploy_helpers import VENV_BIN, git


class UnknownExpression(Exception):
    """An expression this module does not evaluate, or a name the test did not define."""


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|&&|\|\||!|\(|\))|(?P<name>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*))"
)


class _Parser:
    """GitHub's expression language, the part workflows here use: literals, context
    properties, ``== != ! && ||`` and parentheses; no functions, no indexing."""

    def __init__(self, text: str, contexts: Mapping[str, Any]) -> None:
        self.text = text
        self.contexts = contexts
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while text[position:].strip():
            match = _TOKEN.match(text, position)
            if match is None or match.lastgroup is None:
                raise UnknownExpression(f"cannot read {text[position:]!r} in {text!r}")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup)))
            position = match.end()
        self.tokens.append(("end", ""))

    def evaluate(self) -> Any:
        value = self._or()
        if self.tokens[0][0] != "end":
            raise UnknownExpression(f"unexpected {self.tokens[0][1]!r} in {self.text!r}")
        return value

    def _take(self, *ops: str) -> bool:
        if self.tokens[0] in [("op", op) for op in ops]:
            self.tokens.pop(0)
            return True
        return False

    def _or(self) -> Any:
        value = self._and()
        while self._take("||"):
            right = self._and()
            value = value if _truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._compare()
        while self._take("&&"):
            right = self._compare()
            value = right if _truthy(value) else value
        return value

    def _compare(self) -> Any:
        value = self._unary()
        if self._take("=="):
            return _equal(value, self._unary())
        if self._take("!="):
            return not _equal(value, self._unary())
        return value

    def _unary(self) -> Any:
        if self._take("!"):
            return not _truthy(self._unary())
        if self._take("("):
            value = self._or()
            if not self._take(")"):
                raise UnknownExpression(f"unbalanced parentheses in {self.text!r}")
            return value
        kind, token = self.tokens.pop(0)
        if kind == "str":
            return token[1:-1].replace("''", "'")
        if kind == "num":
            return float(token)
        if kind == "name":
            literals = {"true": True, "false": False, "null": None}
            return literals[token] if token in literals else self._lookup(token)
        raise UnknownExpression(f"unexpected {token!r} in {self.text!r}")

    def _lookup(self, path: str) -> Any:
        value: Any = self.contexts
        for part in path.split("."):
            if value is None:  # a property of null is null, as on GitHub
                return None
            if not isinstance(value, Mapping) or part not in value:
                raise UnknownExpression(f"{path} is not defined by the test's contexts")
            value = value[part]
        return value


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()  # GitHub compares strings ignoring case
    return bool(left == right)


def evaluate(expression: str, contexts: Mapping[str, Any]) -> Any:
    """The value of one expression, with or without its ``${{ }}``."""
    inner = re.fullmatch(r"\s*\$\{\{(.*)\}\}\s*", expression, re.DOTALL)
    return _Parser(inner.group(1) if inner else expression, contexts).evaluate()


def substitute(text: object, contexts: Mapping[str, Any]) -> str:
    """``text`` with every ``${{ }}`` replaced by its value rendered as GitHub does."""

    def render(match: re.Match[str]) -> str:
        value = _Parser(match.group(1), contexts).evaluate()
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return re.sub(r"\$\{\{(.*?)\}\}", render, str(text), flags=re.DOTALL)


# ---------------------------------------------------------------- the job, run here


def load(path: Path) -> dict[str, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as true.
    document["on"] = document.pop(True, document.get("on"))
    return document


@dataclass(frozen=True)
class StepRun:
    key: str
    returncode: int
    output: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith("::error::")]


@dataclass
class Runner:
    """One job of the workflow in ``checkout``, as a GitHub-hosted runner would run it."""

    workflow: dict[str, Any]
    contexts: dict[str, Any]
    checkout: Path
    work: Path
    job: str = "deploy"
    # A refusal test runs with False: reaching the install or deploy step fails it there,
    # rather than installing from PyPI and deploying onto this machine.
    deploys: bool = False
    runs: list[StepRun] = field(init=False, default_factory=list)
    path: list[str] = field(init=False)
    job_env: dict[str, str] = field(init=False)
    temp: Path = field(init=False)
    home: Path = field(init=False)

    def __post_init__(self) -> None:
        self.temp = self.work / "runner-temp"
        self.home = self.work / "home"
        self.temp.mkdir(parents=True)
        self.home.mkdir()
        spec = self.workflow["jobs"][self.job]
        if spec.get("defaults", {}).get("run", {}).get("shell") != "bash":
            pytest.fail("the job must set defaults.run.shell: bash, the shell this test runs")
        self.job_env = {k: substitute(v, self.contexts) for k, v in spec.get("env", {}).items()}
        self.contexts = {**self.contexts, "env": self.job_env}
        # The runner's PATH, less this repository's venv: only what setup-python adds.
        self.path = [
            entry
            for entry in os.environ["PATH"].split(os.pathsep)
            if Path(entry).resolve() != VENV_BIN.resolve()
        ]

    @property
    def steps(self) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = self.workflow["jobs"][self.job]["steps"]
        return steps

    def should_run(self) -> bool:
        condition = self.workflow["jobs"][self.job].get("if")
        return condition is None or _truthy(evaluate(condition, self.contexts))

    def environ(self, step: Mapping[str, Any]) -> dict[str, str]:
        """A step's environment: the runner's, the job's ``env``, the step's ``env``."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CI_KIT_", "INVOKE_", "PYTEST_", "GITHUB_", "RUNNER_"))
            and key not in ("VIRTUAL_ENV", "PYTHONPATH", "HOME", "PATH")
        }
        caches = {  # the developer's download caches: the same packages, fetched once
            "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache/pip")),
            "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache/uv")),
        }
        runner = {
            "CI": "true",
            "HOME": str(self.home),
            "RUNNER_TEMP": str(self.temp),
            "PATH": os.pathsep.join(self.path),
        }
        own = {k: substitute(v, self.contexts) for k, v in step.get("env", {}).items()}
        return {**inherited, **caches, **runner, **self.job_env, **own}

    def run(self, until: str | None = None) -> list[StepRun]:
        """Every step in order, stopping after a failure or after the step ``until``;
        none if the job's ``if`` skips it."""
        if not self.should_run():
            return self.runs
        for step in self.steps:
            if "if" in step and not _truthy(evaluate(step["if"], self.contexts)):
                continue
            if not self.deploys and step.get("id") in ("install", "deploy"):
                ran = "\n".join(f"{run.key}: exit {run.returncode}" for run in self.runs)
                pytest.fail(f"the job reached its {step['id']} step after:\n{ran}")
            done = self._uses(step) if "uses" in step else self._run(step)
            self.runs.append(done)
            if done.returncode != 0 or done.key == until:
                break
        return self.runs

    def _run(self, step: Mapping[str, Any]) -> StepRun:
        key = step.get("id") or step["name"]
        if step.get("shell", "bash") != "bash":
            pytest.fail(f"step {key}: shell {step['shell']}; this test runs bash only")
        script = self.temp / f"{key}.sh"
        script.write_text(substitute(step["run"], self.contexts))
        minutes = step.get("timeout-minutes", self.workflow["jobs"][self.job]["timeout-minutes"])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.checkout,
            env=self.environ(step),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=float(minutes) * 60,
            check=False,
        )
        return StepRun(key, done.returncode, done.stdout)

    def _uses(self, step: Mapping[str, Any]) -> StepRun:
        action = step["uses"].split("@")[0]
        given = {k: substitute(v, self.contexts) for k, v in step.get("with", {}).items()}
        if action == "actions/checkout":
            if given.get("fetch-depth", "1") != "0":  # a shallow fetch of the ref alone
                for ref in git(self.checkout, "for-each-ref", "--format=%(refname)").split():
                    if ref.startswith("refs/remotes/"):
                        git(self.checkout, "update-ref", "-d", ref)
            git(self.checkout, "checkout", "-q", "--detach", given["ref"])
        elif action == "actions/setup-python":
            venv = self.work / "python"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            self.path.insert(0, str(venv / "bin"))
        else:
            pytest.fail(f"{action}: this test has no stand-in for it; add one to Runner._uses")
        return StepRun(action, 0, "")
