"""The plugin's side of xdist: how many workers a run gets, and which processes take its plan.

The kit decides before xdist does (``pytest_load_initial_conftests`` runs before
xdist's ``pytest_cmdline_main``), so it must reach xdist's verdict from the same
options: a run xdist keeps in one process opens its own database, and every
worker xdist starts is rehearsed by the controller.
"""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy.engine import URL

from ci_kit.config import SETTINGS
from ci_kit.dburl import render
from ci_kit.plan import RunPlan
from tests.conftest import create_unmarked, database_names
from tests.test_plugin import seen, write_project


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each inner run says exactly where its server is."""
    for setting in SETTINGS:
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)


@pytest.mark.parametrize(
    "args",
    [("--tx", "2*popen"), ("-n", "0"), ("-n", "auto", "--pdb")],
    ids=["tx-without-dist", "no-workers", "auto-with-pdb"],
)
def test_a_run_xdist_keeps_in_one_process_opens_its_own_database(
    pytester: pytest.Pytester, server_url: URL, base_name: str, args: tuple[str, ...]
) -> None:
    log = write_project(pytester, base_name, count=1)
    url = render(server_url.set(database=base_name))
    result = pytester.runpytest_subprocess("-p", "no:randomly", *args, "--ci-kit-url", url)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "ci-kit: 2 tests (2 passed) on 1 process" in output
    assert {row["db"] for row in seen(log)} == {base_name}


@pytest.mark.parametrize(
    "args",
    [("--tx", "2*popen", "--dist", "load"), ("-n", "3", "--maxprocesses", "2")],
    ids=["tx-spec-of-two", "capped-at-two"],
)
def test_every_worker_xdist_starts_is_rehearsed_and_counted(
    pytester: pytest.Pytester, server_url: URL, base_name: str, args: tuple[str, ...]
) -> None:
    log = write_project(pytester, base_name, count=4)
    url = render(server_url.set(database=base_name))
    passed = pytester.runpytest_subprocess("-p", "no:randomly", *args, "--ci-kit-url", url)
    assert passed.ret == 0, passed.stdout.str() + passed.stderr.str()
    assert "ci-kit: 8 tests (8 passed) on 2 workers" in passed.stdout.str()
    assert {row["db"] for row in seen(log)} <= {f"{base_name}_gw0", f"{base_name}_gw1"}

    create_unmarked(server_url, f"{base_name}_gw1")
    stopped = pytester.runpytest_subprocess("-p", "no:randomly", *args, "--ci-kit-url", url)
    assert stopped.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in stopped.stderr.lines if line.strip()]
    assert line.startswith(
        f"ERROR: ci-kit: database '{base_name}_gw1' exists and was not created by the kit"
    )


def test_a_pytest_inheriting_another_controllers_plan_ignores_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str
) -> None:
    """Started by a test, not by xdist: the plan (and its password) is not for it."""
    plan = RunPlan.for_server(
        server_url,
        run_id="elsewhere",
        base_name=base_name,
        template=f"{base_name}_tpl_gone",  # believed, its clone would stop the run
        isolation="rollback",
    )
    wire = {"controller": os.getppid(), "plan": plan.to_wire()}  # not the inner run's parent
    monkeypatch.setenv("CI_KIT_RUN_PLAN", json.dumps(wire))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    pytester.makepyfile(test_inner="def test_inner():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert database_names(server_url, base_name) == set()
