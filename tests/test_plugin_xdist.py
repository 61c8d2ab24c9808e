"""The plugin's side of xdist: how many workers a run gets, and which processes take its plan.

The kit decides before xdist does (``pytest_load_initial_conftests`` runs before
xdist's ``pytest_cmdline_main``), so it must reach xdist's verdict from the same
options and xdist's own ``-n auto`` hook: a run xdist keeps in one process opens
its own database, every worker xdist starts is rehearsed by the controller, and a
count only a conftest could change stops the run in one line.
"""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import render
from ci_kit.handoff import PLAN_ENV
from ci_kit.plan import RunPlan
from tests.helpers.projects import seen, write_project
from tests.helpers.server import create_unmarked, database_names

pytestmark = pytest.mark.usefixtures("no_ambient_configuration")


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
    monkeypatch.setenv(PLAN_ENV, json.dumps(wire))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    pytester.makepyfile(test_inner="def test_inner():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert database_names(server_url, base_name) == set()


@pytest.mark.parametrize(
    ("foreign", "stops"), [("gw3", False), ("gw2", True)], ids=["beyond-three", "third"]
)
def test_n_auto_is_counted_by_xdists_own_hook(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    server_url: URL,
    base_name: str,
    foreign: str,
    stops: bool,
) -> None:
    """``PYTEST_XDIST_AUTO_NUM_WORKERS=3``: three workers rehearsed, gw0 to gw2, no fourth."""
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "3")
    write_project(pytester, base_name, count=2)
    create_unmarked(server_url, f"{base_name}_{foreign}")
    url = render(server_url.set(database=base_name))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "auto", "--ci-kit-url", url)
    if stops:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        (line,) = [line for line in result.stderr.lines if line.strip()]
        assert f"database '{base_name}_gw2' exists and was not created by the kit" in line
    else:
        assert result.ret == 0, result.stdout.str() + result.stderr.str()
        assert "ci-kit: 4 tests (4 passed) on 3 workers" in result.stdout.str()


def test_n_auto_counted_as_no_workers_runs_in_one_process(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str
) -> None:
    """xdist's hook says 0: xdist runs the tests in-process, on the run's own database."""
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "0")
    log = write_project(pytester, base_name, count=1)
    url = render(server_url.set(database=base_name))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "auto", "--ci-kit-url", url)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "ci-kit: 2 tests (2 passed) on 1 process" in output
    assert {row["db"] for row in seen(log)} == {base_name}


@pytest.mark.parametrize(
    ("conftest_says", "environment_says", "planned", "started"),
    [(0, None, "", "none"), (2, "0", "no", "2")],
    ids=["none-started", "none-planned"],
)
def test_an_auto_count_from_a_conftest_that_contradicts_the_kit_is_one_line(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    server_url: URL,
    base_name: str,
    conftest_says: int,
    environment_says: str | None,
    planned: str,
    started: str,
) -> None:
    """A conftest's answer reaches xdist only after the kit counted: stop, don't riddle."""
    if environment_says is None:
        monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    else:
        monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", environment_says)
    write_project(pytester, base_name, count=1)
    pytester.makeconftest(
        f"def pytest_xdist_auto_num_workers(config):\n    return {conftest_says}\n"
    )
    url = render(server_url.set(database=base_name))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "auto", "--ci-kit-url", url)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in result.stderr.lines if line.strip()]
    assert line.startswith(f"ERROR: ci-kit: the kit prepared this run for {planned}")
    assert f"xdist starts {started}: a pytest_xdist_auto_num_workers in a conftest.py" in line


def test_a_worker_takes_the_plan_and_its_password_out_of_its_environment(
    pytester: pytest.Pytester, server_url: URL, base_name: str
) -> None:
    write_project(pytester, base_name, count=1)
    pytester.makepyfile(
        test_environ=f"import os\n\ndef test_no_plan_left(db_url):\n"
        f"    assert {PLAN_ENV!r} not in os.environ\n"
    )
    url = render(server_url.set(database=base_name))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2", "--ci-kit-url", url)
    result.assert_outcomes(passed=3)
