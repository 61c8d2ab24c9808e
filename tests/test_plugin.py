"""Real pytest suites run through ``pytester``, serially and under xdist, on real servers."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy.engine import URL

from ci_kit.admin import Admin
from ci_kit.dburl import environment_url, render, secret_forms
from ci_kit.marks import Mark
from ci_kit.postgres import PREFIX, reuse_data_dir, stop_persistent
from tests.helpers.clusters import cluster_directory
from tests.helpers.projects import MODELS, seen, write_project, write_suite
from tests.helpers.runs import running, wait_for, wait_until
from tests.helpers.server import (
    TEST_PASSWORD,
    connect_to,
    create_unmarked,
    database_names,
    new_base_name,
    password_in_query,
)

pytestmark = pytest.mark.usefixtures("no_ambient_configuration")


def external_env(monkeypatch: pytest.MonkeyPatch, server_url: URL, base: str) -> None:
    monkeypatch.setenv("CI_KIT_DATABASE_URL", render(server_url.set(database=base)))


class TestEmbeddedServer:
    def test_serial_run_uses_the_base_name(self, pytester: pytest.Pytester) -> None:
        log = write_project(pytester, "embedded_test")
        result = pytester.runpytest_subprocess("-p", "no:randomly")
        result.assert_outcomes(passed=12)
        assert {row["db"] for row in seen(log)} == {"embedded_test"}
        result.stdout.fnmatch_lines(["ci-kit: PostgreSQL 1*(embedded, *", "*template*built*"])

    @pytest.mark.parametrize("workers", [2, 4])
    def test_each_worker_gets_its_own_database(
        self, pytester: pytest.Pytester, workers: int
    ) -> None:
        log = write_project(pytester, "embedded_test", count=8)
        result = pytester.runpytest_subprocess("-n", str(workers), "-p", "no:randomly")
        result.assert_outcomes(passed=16)
        rows = seen(log)
        by_worker = {row["worker"]: row["db"] for row in rows}
        assert len(by_worker) > 1
        assert all(db == f"embedded_test_{worker}" for worker, db in by_worker.items())
        assert all(row["seen"] == 0 for row in rows)

    @pytest.mark.parametrize("shape", ["deeper than a socket's path", "with spaces"])
    def test_the_plan_reaches_the_workers_whatever_the_temp_dir(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        reachable_temp: Path,
        shape: str,
    ) -> None:
        """The controller hands the plan over a Unix socket it makes in the temp dir."""
        parts = ["d" * 60, "e" * 60] if shape.startswith("deeper") else ["a b"]
        temp = reachable_temp
        for part in parts:
            temp = temp / part
            temp.mkdir()
            temp.chmod(0o755)  # whatever the umask: as root, the postgres user reads files here
        monkeypatch.setenv("TMPDIR", str(temp))
        log = write_project(pytester, "embedded_test", count=4)
        result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
        result.assert_outcomes(passed=8)
        by_worker = {row["worker"]: row["db"] for row in seen(log)}
        assert all(db == f"embedded_test_{worker}" for worker, db in by_worker.items())

    def test_reuse_keeps_the_server_and_its_template_for_the_next_run(
        self, pytester: pytest.Pytester
    ) -> None:
        write_project(pytester, "embedded_test", count=1)
        data_dir = reuse_data_dir(pytester.path)
        try:
            first = pytester.runpytest_subprocess("--ci-kit-reuse", "-p", "no:randomly")
            first.stdout.fnmatch_lines(["*embedded, kept for reuse*", "*template*built*"])
            second = pytester.runpytest_subprocess("--ci-kit-reuse", "-p", "no:randomly")
            second.assert_outcomes(passed=2)
            second.stdout.fnmatch_lines(["*template*reused*"])
        finally:
            assert stop_persistent(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)

    @pytest.mark.slow
    @pytest.mark.parametrize(
        ("sent", "args", "to_group"),
        [
            (signal.SIGINT, (), False),
            (signal.SIGINT, ("-n", "2"), False),
            (signal.SIGTERM, (), False),
            (signal.SIGTERM, ("-n", "2"), False),
            (signal.SIGTERM, ("-n", "2"), True),
        ],
        ids=["ctrl-c", "ctrl-c-xdist", "sigterm", "sigterm-xdist", "sigterm-like-timeout"],
    )
    def test_ctrl_c_or_sigterm_stops_and_deletes_the_server(
        self,
        pytester: pytest.Pytester,
        sent: signal.Signals,
        args: tuple[str, ...],
        to_group: bool,
    ) -> None:
        """SIGINT is Ctrl-C; SIGTERM is a CI timeout. ``timeout`` signals the run, then
        its whole process group (xdist workers included): the run gets it twice."""
        write_project(pytester, "embedded_test", count=1)
        started = pytester.path / "started"
        pytester.makepyfile(
            test_hang=f"""
            import pathlib, time
            def test_hangs(db_connection):
                data = db_connection.exec_driver_sql("SHOW data_directory").scalar()
                pathlib.Path({str(started)!r}).write_text(data)
                time.sleep(120)
            """
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args, "-p", "no:randomly", "-k", "hang"],
            cwd=pytester.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            wait_for(started, process)
            cluster = cluster_directory(started.read_text())
            postmaster = int((cluster / "data" / "postmaster.pid").read_text().split()[0])
            assert running(postmaster)
            process.send_signal(sent)
            if to_group:
                os.killpg(process.pid, sent)
            output = process.communicate(timeout=60)[0]
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        assert process.returncode != 0
        assert "KeyboardInterrupt" in output
        assert not running(postmaster), "the postmaster outlived the interrupted run"
        assert not cluster.exists(), "the embedded cluster outlived the interrupted run"

    @pytest.mark.parametrize(
        ("where", "ending"),
        [
            ("import", "raise ImportError('the app cannot be imported')"),
            ("import", "os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)"),
            ("import", "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)"),
            ("configure", "raise pytest.UsageError('a conftest refuses the options')"),
        ],
        ids=["conftest-import-error", "sigterm", "ctrl-c", "usage-error-in-configure"],
    )
    def test_a_controller_that_ends_before_its_session_leaves_no_server(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str, ending: str
    ) -> None:
        """An xdist controller starts the server on a thread while it imports the
        conftests and configures: every way that start can end stops the server.

        The conftest waits until its own process's server is up, so the ending meets
        a running server, then records that server's directory and ends.
        """
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the inner run's to set
        write_project(pytester, "embedded_test", count=1)
        record = pytester.path / "cluster.txt"
        pytester.makeconftest(
            f"""
            import json, os, pathlib, signal, time
            import pytest
            from ci_kit.postgres import cluster_directories

            def own_cluster():
                for cluster in cluster_directories():
                    try:
                        owner = json.loads((cluster / "owner.json").read_text())
                    except (OSError, ValueError):
                        continue
                    if owner["pid"] == os.getpid() and (cluster / "data/postmaster.pid").exists():
                        return cluster
                return None

            def wait_then_end():
                deadline = time.monotonic() + 60
                while (found := own_cluster()) is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                pathlib.Path({str(record)!r}).write_text(str(found))
                {ending}

            CONTROLLER = "PYTEST_XDIST_WORKER" not in os.environ

            def pytest_configure(config):
                if CONTROLLER and {where == "configure"}:
                    wait_then_end()

            if CONTROLLER and {where == "import"}:
                wait_then_end()
            """
        )
        result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", timeout=120)
        output = result.stdout.str() + result.stderr.str()
        assert result.ret != 0, output
        cluster = Path(record.read_text())
        assert cluster.name.startswith(PREFIX), output
        assert not cluster.exists(), f"the server's cluster outlived the controller: {output}"

    @pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["serial", "xdist"])
    def test_progress_lines_survive_a_conftest_that_keeps_existing_loggers(
        self, pytester: pytest.Pytester, args: tuple[str, ...]
    ) -> None:
        """What the README tells a project whose conftest configures logging: with
        ``disable_existing_loggers=False`` the kit's progress lines stay, even at
        ``-n 2``, where the controller prepares while that conftest runs."""
        write_project(pytester, "embedded_test", count=1)
        conftest = pytester.path / "conftest.py"
        conftest.write_text(
            "import logging.config, time\n"
            "logging.config.dictConfig({'version': 1, 'disable_existing_loggers': False})\n"
            "time.sleep(0.5)  # an application's import: the preparation logs meanwhile\n"
            + (conftest.read_text() if conftest.exists() else "")
        )
        result = pytester.runpytest_subprocess(*args, "-p", "no:randomly")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(
            ["ci-kit: starting embedded PostgreSQL*", "ci-kit: building template*"]
        )

    @pytest.mark.slow
    @pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["serial", "xdist"])
    def test_a_server_killed_mid_run_is_one_line_and_leaves_nothing(
        self, pytester: pytest.Pytester, args: tuple[str, ...]
    ) -> None:
        """The OOM killer, or a person's kill -9, takes the postmaster away under the tests.

        What the killed server leaves is judged by its own cluster, named by the inner
        test, not by a diff of /dev/shm, where concurrent runs come and go.
        """
        write_project(pytester, "embedded_test", count=1)
        killed = pytester.path / "killed.json"
        pytester.makepyfile(
            test_kill=f"""
            import json, os, signal, time
            import pytest

            @pytest.mark.parametrize("n", range(20))
            def test_queries(db_connection, n):
                if n == 3:
                    show = db_connection.exec_driver_sql
                    data = show("SHOW data_directory").scalar()
                    shared = show("SHOW dynamic_shared_memory_type").scalar()
                    with open({str(killed)!r}, "w") as record:
                        json.dump({{"data": data, "shared_memory": shared}}, record)
                    with open(os.path.join(data, "postmaster.pid")) as pid_file:
                        os.kill(int(pid_file.readline()), signal.SIGKILL)
                    time.sleep(0.5)
                db_connection.exec_driver_sql("SELECT 1")
            """
        )
        result = pytester.runpytest_subprocess(*args, "-p", "no:randomly", "-k", "queries")
        output = result.stdout.str() + result.stderr.str()
        assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED), output
        assert "Traceback" not in output
        assert "went away during the run" in output
        assert len(output.splitlines()) < 40, output
        assert result.parseoutcomes().get("passed", 0) < 20, "the run stopped at the loss"
        record = json.loads(killed.read_text())
        cluster = cluster_directory(record["data"])
        assert not cluster.exists(), "the killed server's cluster was left"
        # Segments in the cluster's own directory go with it; POSIX ones (the default)
        # would stay in /dev/shm after a SIGKILL.
        assert record["shared_memory"] == "mmap"

    @pytest.mark.slow
    @pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None,
        reason="a private /dev/shm takes root and unshare",
    )
    @pytest.mark.parametrize("reuse", [False, True], ids=["ephemeral", "reuse"])
    def test_a_small_dev_shm_sends_the_cluster_to_the_temp_dir(
        self, pytester: pytest.Pytester, reachable_temp: Path, reuse: bool
    ) -> None:
        """Docker's 64 MB /dev/shm fails a two-worker run: the cluster goes elsewhere."""
        write_project(pytester, "embedded_test", count=8)
        temp = reachable_temp  # as root, the postgres user must reach the cluster inside
        pytest_argv = [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:randomly", "-v"]
        commands = [pytest_argv]
        if reuse:
            stop = [sys.executable, "-m", "ci_kit", "server", "--stop"]
            commands = [[*pytest_argv, "--ci-kit-reuse"], [*pytest_argv, "--ci-kit-reuse"], stop]
        output = in_docker_sized_dev_shm(commands, pytester.path, temp)
        left_in_temp = sorted(path.name for path in temp.iterdir())
        fallback = (
            f"ci-kit: /dev/shm has 64 MB free (< 256 MB): "
            f"the embedded cluster goes to {temp}, slower clones"
        )
        assert output.splitlines().count(fallback) == 1, output  # a kept one stays: no 2nd
        assert output.count(" 16 passed in ") == (2 if reuse else 1)
        cache = f"ci-kit-initdb-{os.geteuid()}"  # initdb's output, kept beside the clusters
        if reuse:
            data_dir = reuse_data_dir(pytester.path)
            assert output.count(f"initdb -D {temp / data_dir.name}") == 1
            assert " reused in " in output  # the second run found the first's server
            assert f"stopped the server in {temp / data_dir.name}" in output
            assert left_in_temp == [f".{data_dir.name}.lock", cache], "--stop removed it"
        else:
            assert f"initdb -D {temp}/ci-kit-pg-" in output
            assert left_in_temp == [cache]


def in_docker_sized_dev_shm(commands: list[list[str]], cwd: Path, temp: Path) -> str:
    """Run ``commands`` with a private 64 MB /dev/shm (Docker's default) and ``temp`` as
    TMPDIR; each must succeed, and /dev/shm must be left empty. Their output."""
    script = "\n".join(
        [
            "mount -t tmpfs -o size=64m tmpfs /dev/shm || exit 99",
            *(f'{shlex.join(argv)}; echo "exit status: $?"' for argv in commands),
            'echo "left in /dev/shm: [$(ls -A /dev/shm)]"',
        ]
    )
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        cwd=cwd,
        env={**os.environ, "TMPDIR": str(temp)},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert output.count("exit status: 0") == len(commands), output
    assert "left in /dev/shm: []" in output
    return output


class TestExternalServer:
    @pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["serial", "xdist"])
    def test_runs_leave_only_the_template_behind(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
        args: tuple[str, ...],
    ) -> None:
        log = write_project(pytester, base_name)
        external_env(monkeypatch, server_url, base_name)
        result = pytester.runpytest_subprocess(*args, "-p", "no:randomly")
        result.assert_outcomes(passed=12)
        assert TEST_PASSWORD not in result.stdout.str() + result.stderr.str()
        assert {row["seen"] for row in seen(log)} == {0}
        names = database_names(server_url, base_name)
        assert len(names) == 1
        assert names.pop().startswith(f"{base_name}_tpl_")

    @pytest.mark.parametrize("enabled", [True, False], ids=["enabled", "inert"])
    def test_a_project_without_xdist_runs(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
        enabled: bool,
    ) -> None:
        """The kit implements one of xdist's hooks: without xdist it must stay optional."""
        if enabled:
            write_project(pytester, base_name, count=1)
            external_env(monkeypatch, server_url, base_name)
        else:
            pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
        result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:randomly")
        result.assert_outcomes(passed=2 if enabled else 1)

    @pytest.mark.parametrize(
        ("args", "who", "process_phases"),
        [
            ((), "the run's", {"prepare", "server", "template"}),
            (("-n", "2"), "the slowest worker's", set()),
        ],
        ids=["serial", "xdist"],
    )
    def test_the_kits_share_of_a_start_is_timed_and_said(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
        args: tuple[str, ...],
        who: str,
        process_phases: set[str],
    ) -> None:
        write_project(pytester, base_name, count=1)
        external_env(monkeypatch, server_url, base_name)
        phases_log = pytester.path / "phases.jsonl"
        pytester.makepyfile(
            test_phases=f"""
            import json
            from ci_kit.plugin import phase_seconds

            def test_records_its_process_phases(request, db_engine):
                with open({str(phases_log)!r}, "a") as log:
                    log.write(json.dumps(phase_seconds(request.config)) + "\\n")
            """
        )
        result = pytester.runpytest_subprocess(*args, "-p", "no:randomly")
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(
            [f"ci-kit: 3 tests*; kit's share of {who} start * ms (import *, clone *, engine *)"]
        )
        (phases,) = [json.loads(line) for line in phases_log.read_text().splitlines()]
        waited = {"plan"} if args else set()  # a worker waits for the controller's plan
        assert set(phases) == {"libraries", "import", "clone", "engine"} | process_phases | waited
        assert all(seconds > 0 for seconds in phases.values())

    def test_an_unchanged_schema_is_reused_and_a_changed_one_replaced(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        private_url: URL,
    ) -> None:
        """On a server of its own: a concurrent test's run holding the sweep lock would make
        the third run leave the old template to a later run, as it should."""
        server_url, base_name = private_url, new_base_name()
        write_project(pytester, base_name, count=1)
        external_env(monkeypatch, server_url, base_name)
        first = pytester.runpytest_subprocess("-p", "no:randomly")
        first.stdout.fnmatch_lines(["*template*built*"])
        second = pytester.runpytest_subprocess("-p", "no:randomly")
        second.stdout.fnmatch_lines(["*template*reused*"])
        old_templates = database_names(server_url, base_name)

        pytester.makepyfile(models=MODELS + "    note: Mapped[str | None]\n")
        third = pytester.runpytest_subprocess("-p", "no:randomly")
        third.assert_outcomes(passed=2)
        third.stdout.fnmatch_lines(["*template*built*", "*dropped 1 leftover database(s)*"])
        new_templates = database_names(server_url, base_name)
        assert len(new_templates) == 1
        assert new_templates.isdisjoint(old_templates)

    def test_application_engines_get_the_worker_url_before_collection(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
    ) -> None:
        write_project(pytester, base_name, count=1, **{"url-env": "APP_DATABASE_URL"})
        external_env(monkeypatch, server_url, base_name)
        pytester.makepyfile(
            test_app=f"""
            import os
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url
            URL_AT_IMPORT = os.environ["APP_DATABASE_URL"]

            def test_app_engine_reaches_the_worker_database(db_url):
                assert make_url(URL_AT_IMPORT).password == {TEST_PASSWORD!r}
                engine = create_engine(URL_AT_IMPORT)
                with engine.connect() as conn:
                    assert conn.scalar(text("SELECT current_database()")) == db_url.database
                engine.dispose()
            """
        )
        result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
        result.assert_outcomes(passed=3)

    def test_libpq_parameters_in_the_url_reach_every_connection(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
    ) -> None:
        write_project(pytester, base_name, count=2)
        pytester.makepyfile(
            test_parameters="""
            from sqlalchemy import text

            def test_the_session_has_the_urls_parameters(db_session):
                assert db_session.scalar(text("SHOW application_name")) == "ci-kit-field"
            """
        )
        url = password_in_query(
            server_url.set(database=base_name),
            TEST_PASSWORD,
            sslmode="disable",
            connect_timeout="5",
            application_name="ci-kit-field",
        )
        monkeypatch.setenv("CI_KIT_DATABASE_URL", render(url))
        result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
        result.assert_outcomes(passed=5)
        output = result.stdout.str() + result.stderr.str()
        assert not [form for form in secret_forms(TEST_PASSWORD) if form in output]


class TestIsolation:
    def test_truncate_and_fresh_markers(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
    ) -> None:
        write_project(pytester, base_name, count=2)
        external_env(monkeypatch, server_url, base_name)
        pytester.makepyfile(
            test_modes="""
            import pytest
            from sqlalchemy import func, select, text
            from models import Item

            def count(conn):
                return conn.scalar(select(func.count()).select_from(Item))

            @pytest.mark.db_isolation("truncate")
            @pytest.mark.parametrize("n", range(3))
            def test_truncate_commits_for_real_and_is_emptied_after(db_engine, db_session, n):
                db_session.add(Item(name="committed"))
                db_session.commit()
                with db_engine.connect() as other:
                    assert count(other) == 1

            @pytest.mark.db_isolation("fresh")
            @pytest.mark.parametrize("n", range(2))
            def test_fresh_is_its_own_database(db_connection, db_url, n):
                name = db_connection.scalar(text("SELECT current_database()"))
                assert name != db_url.database and name.startswith(db_url.database + "_f")
                assert count(db_connection) == 0

            def test_rollback_is_the_default(db_connection):
                assert db_connection.in_transaction()

            @pytest.mark.db_isolation("sometimes")
            def test_bad_mode(db_connection):
                pass
            """
        )
        result = pytester.runpytest_subprocess("-p", "no:randomly")
        result.assert_outcomes(passed=10, errors=1)
        result.stdout.fnmatch_lines(["*db_isolation takes one of rollback, truncate, fresh*"])


class TestErrors:
    def run_failing(
        self, pytester: pytest.Pytester, *args: str, secrets: tuple[str, ...] = ()
    ) -> str:
        result = pytester.runpytest_subprocess(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output
        for secret in (TEST_PASSWORD, *secrets):
            assert not [form for form in secret_forms(secret) if form in output]
        return output

    def error_line(self, output: str) -> str:
        """The run's one line of error, with nothing else of the kit's around it."""
        (line,) = [line for line in output.splitlines() if "ci-kit" in line]
        assert line.startswith("ERROR: ci-kit: ")
        return line

    def test_wrong_password(self, pytester: pytest.Pytester, server_url: URL) -> None:
        write_project(pytester, "app_test")
        url = render(server_url.set(password="not" + TEST_PASSWORD, database="app_test"))
        output = self.run_failing(pytester, "--ci-kit-url", url)
        assert "ERROR: ci-kit: password authentication failed for role 'ci_kit'" in output

    def test_unreachable_server(self, pytester: pytest.Pytester, server_url: URL) -> None:
        write_project(pytester, "app_test")
        url = render(server_url.set(port=1, database="app_test"))
        output = self.run_failing(pytester, "--ci-kit-url", url)
        assert "ERROR: ci-kit: cannot reach PostgreSQL at" in output

    def test_role_without_createdb(
        self, pytester: pytest.Pytester, server_url: URL, base_name: str
    ) -> None:
        write_project(pytester, base_name)
        url = render(server_url.set(username="ci_kit_nocreatedb", database=base_name))
        output = self.run_failing(pytester, "--ci-kit-url", url)
        assert "ALTER ROLE ci_kit_nocreatedb CREATEDB" in output

    def test_an_unknown_url_parameter(self, pytester: pytest.Pytester, server_url: URL) -> None:
        write_project(pytester, "app_test")
        url = render(server_url.set(database="app_test", query={"foo": "bar"}))
        line = self.error_line(self.run_failing(pytester, "--ci-kit-url", url))
        assert 'a parameter in the database URL is refused: invalid connection option "foo"' in line

    def test_a_port_that_is_not_a_number(self, pytester: pytest.Pytester) -> None:
        write_project(pytester, "x_test")
        url = f"postgresql://ci_kit:{quote(TEST_PASSWORD, safe='')}@127.0.0.1:abc/x_test"
        line = self.error_line(self.run_failing(pytester, "--ci-kit-url", url))
        assert line.startswith("ERROR: ci-kit: the port in the database URL is not a number")

    @pytest.mark.parametrize(
        ("key", "secret"),
        [("password", "hunter2"), ("password", TEST_PASSWORD), ("sslpassword", TEST_PASSWORD)],
        ids=["password", "tricky-password", "sslpassword"],
    )
    def test_a_password_in_the_query_of_an_unreachable_server(
        self, pytester: pytest.Pytester, key: str, secret: str
    ) -> None:
        write_project(pytester, "x_test")
        url = f"postgresql://u@127.0.0.1:1/x_test?{urlencode({key: secret})}"
        output = self.run_failing(pytester, "--ci-kit-url", url, secrets=(secret,))
        line = self.error_line(output)
        where = f"postgresql+psycopg://u@127.0.0.1:1/postgres?{key}=***:"
        assert line.startswith(f"ERROR: ci-kit: cannot reach PostgreSQL at {where}")

    def test_not_a_postgres_url(self, pytester: pytest.Pytester) -> None:
        write_project(pytester, "app_test")
        output = self.run_failing(pytester, "--ci-kit-url", "mysql://u:hunter2@localhost/app_test")
        assert "is not a PostgreSQL URL" in output
        assert "hunter2" not in output

    def test_unsafe_base_name(self, pytester: pytest.Pytester, server_url: URL) -> None:
        write_project(pytester, "finance")
        output = self.run_failing(
            pytester, "--ci-kit-url", render(server_url.set(database="finance"))
        )
        assert "refusing base database name 'finance'" in output

    def test_schema_that_does_not_import(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
    ) -> None:
        write_project(pytester, base_name)
        external_env(monkeypatch, server_url, base_name)
        output = self.run_failing(pytester, "--ci-kit-schema", "no_such_module:Base")
        assert "schema source 'no_such_module:Base' does not import" in output

    @pytest.mark.parametrize("where", ["import", "build"])
    def test_a_schema_module_that_exits(
        self, pytester: pytest.Pytester, server_url: URL, base_name: str, where: str
    ) -> None:
        """A settings module that sys.exit()s when an environment variable is missing."""
        write_project(pytester, base_name)
        body = "import sys\nsys.exit('DJANGO_SETTINGS_MODULE is not set')\n"
        if where == "build":
            body = (
                MODELS
                + "\nfrom sqlalchemy import event\n"
                + (
                    "@event.listens_for(Base.metadata, 'before_create')\n"
                    "def refuse(*args, **kwargs):\n"
                    "    raise SystemExit('DJANGO_SETTINGS_MODULE is not set')\n"
                )
            )
        pytester.makepyfile(models=body)
        url = render(server_url.set(database=base_name))
        line = self.error_line(self.run_failing(pytester, "--ci-kit-url", url))
        assert "SystemExit: DJANGO_SETTINGS_MODULE is not set" in line
        assert database_names(server_url, base_name) == set()

    def test_failing_migration(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
    ) -> None:
        write_project(pytester, base_name)
        pytester.makepyfile(
            broken="""
            from sqlalchemy import Column, Integer, MetaData, Table, text, DDL, event
            metadata = MetaData()
            items = Table("items", metadata, Column("id", Integer, primary_key=True))
            event.listen(items, "after_create", DDL("ALTER TABLE items ADD COLUMN x no_such_type"))
            """
        )
        external_env(monkeypatch, server_url, base_name)
        output = self.run_failing(pytester, "--ci-kit-schema", "broken:metadata")
        assert "building the schema from metadata (broken:metadata) failed" in output
        assert 'type "no_such_type" does not exist' in output
        assert database_names(server_url, base_name) == set()

    def test_foreign_database_with_the_base_name(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
    ) -> None:
        write_project(pytester, base_name)
        external_env(monkeypatch, server_url, base_name)
        create_unmarked(server_url, base_name)
        output = self.run_failing(pytester)
        assert f"refusing to drop database '{base_name}'" in output
        assert base_name in database_names(server_url, base_name)

    def test_fixtures_without_configuration(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile("def test_needs_db(db_url):\n    pass\n")
        result = pytester.runpytest_subprocess()
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*ci-kit is not enabled for this run*"])


class TestWhatWouldStopAWorker:
    """Under xdist, a worker that cannot get its database would die and be replaced,
    over and over, or the run would pass without it: the controller finds it first."""

    def run_failing(self, pytester: pytest.Pytester, url: URL, workers: str = "2") -> str:
        result = pytester.runpytest_subprocess("-n", workers, "--ci-kit-url", render(url))
        output = result.stdout.str() + result.stderr.str()
        assert result.ret == pytest.ExitCode.USAGE_ERROR, output
        assert "Traceback" not in output
        assert "replacing crashed worker" not in output
        assert TEST_PASSWORD not in output
        (line,) = [line for line in result.stderr.lines if line.strip()]
        assert line.startswith("ERROR: ci-kit: ")
        return line

    @pytest.mark.parametrize("workers", ["2", "auto"])
    def test_a_foreign_database_on_a_workers_name(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
        workers: str,
    ) -> None:
        write_project(pytester, base_name)
        create_unmarked(server_url, f"{base_name}_gw1")
        with connect_to(server_url, f"{base_name}_gw1") as conn:
            conn.execute("CREATE TABLE precious AS SELECT 42 AS answer")
        monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "2")  # -n auto: 2 workers here too
        line = self.run_failing(pytester, server_url.set(database=base_name), workers)
        assert f"database '{base_name}_gw1' exists and was not created by the kit" in line
        with connect_to(server_url, f"{base_name}_gw1") as conn:
            assert conn.execute("SELECT answer FROM precious").fetchall() == [(42,)]

    @pytest.mark.parametrize(
        ("args", "breaks", "said"),
        [
            ((), "", "ci-kit: could not open the test database: "),
            (("-n", "2"), "gw1", "ci-kit: worker gw1 could not open its database: "),
        ],
        ids=["serial", "a-worker"],
    )
    @pytest.mark.parametrize(
        ("failure", "reason"),
        [
            ("raise RuntimeError('disk full, say')", "RuntimeError: disk full, say"),
            # A driver's own error, raised where the connection string is a local.
            (
                "psycopg.connect(os.environ['BREAKER_DSN'], dbname='kit_no_such_database')",
                'database "kit_no_such_database" does not exist',
            ),
        ],
        ids=["unforeseen", "driver-error"],
    )
    def test_a_process_failing_at_its_clone_ends_the_run_once(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
        args: tuple[str, ...],
        breaks: str,
        said: str,
        failure: str,
        reason: str,
    ) -> None:
        """The controller's rehearsal cannot see everything: a process's own failure still
        ends the run on one line, rather than xdist replacing the worker until one passes,
        or a traceback whose frames hold the password."""
        write_project(pytester, base_name)
        pytester.makepyfile(
            breaker=f"""
            import os
            import psycopg
            if os.environ.get("PYTEST_XDIST_WORKER", "") == {breaks!r}:
                from ci_kit import workers

                def create(self):
                    {failure}

                workers.WorkerDatabases.create = create
            """
        )
        monkeypatch.setenv("BREAKER_DSN", environment_url(server_url, "postgresql"))
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this test's own worker
        url = server_url.set(database=base_name)
        result = pytester.runpytest_subprocess(
            "-p", "breaker", *args, "--ci-kit-url", render(url), "--tb=long", "-l"
        )
        output = result.stdout.str() + result.stderr.str()
        assert result.ret == pytest.ExitCode.USAGE_ERROR, output
        assert "Traceback" not in output
        assert "replacing crashed worker" not in output
        assert not [form for form in secret_forms(TEST_PASSWORD) if form in output]
        (line,) = [line for line in output.splitlines() if "could not open" in line]
        assert said in line
        assert reason in line
        clones = {name for name in database_names(server_url, base_name) if "_tpl_" not in name}
        assert clones == set(), "every clone dropped, the template kept for the next run"

    def test_a_role_without_createdb_when_the_template_exists(
        self, pytester: pytest.Pytester, server_url: URL, base_name: str
    ) -> None:
        write_project(pytester, base_name)
        built = pytester.runpytest_subprocess(
            "--ci-kit-url", render(server_url.set(database=base_name))
        )
        assert built.ret == 0
        url = server_url.set(username="ci_kit_nocreatedb", database=base_name)
        line = self.run_failing(pytester, url)
        assert "ALTER ROLE ci_kit_nocreatedb CREATEDB" in line

    def test_a_session_left_on_the_template(
        self, pytester: pytest.Pytester, server_url: URL, base_name: str
    ) -> None:
        write_project(pytester, base_name)
        url = server_url.set(database=base_name)
        assert pytester.runpytest_subprocess("--ci-kit-url", render(url)).ret == 0
        (template,) = database_names(server_url, f"{base_name}_tpl_")
        with connect_to(server_url, "postgres") as conn:
            conn.execute(f'ALTER DATABASE "{template}" ALLOW_CONNECTIONS true')
        with connect_to(server_url, template):
            line = self.run_failing(pytester, url)
        assert f"cannot clone '{template}': another session is connected to it" in line

    @pytest.mark.parametrize(
        ("setting", "said"),
        [
            ('work_mem = "lots"', "database-settings work_mem = 'lots' is refused by the server"),
            (  # the role has CREATEDB: the right it lacks is another
                'log_min_duration_statement = "10"',
                "GRANT SET ON PARAMETER log_min_duration_statement TO ci_kit",
            ),
        ],
        ids=["bad-value", "superuser-only"],
    )
    def test_a_database_setting_the_server_refuses(
        self, pytester: pytest.Pytester, server_url: URL, base_name: str, setting: str, said: str
    ) -> None:
        write_project(pytester, base_name)
        pyproject = pytester.path / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text() + f"\n[tool.ci-kit.database-settings]\n{setting}\n"
        )
        line = self.run_failing(pytester, server_url.set(database=base_name))
        assert said in line
        assert database_names(server_url, f"{base_name}_gw") == set()


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(
        [
            "ci-kit: a PostgreSQL database per xdist worker:",
            "*--ci-kit-url=URL*",
            "*--ci-kit-schema=*",
            "*--ci-kit-isolation=*",
            "*--ci-kit-reuse, --no-ci-kit-reuse*",
            "*--ci-kit-allow-any-name, --no-ci-kit-allow-any-name*",
            "*ci_kit_url (string):*",
            "*ci_kit_schema (string):*",
            "*ci_kit_reuse (bool):*",
        ]
    )


class TestSettingsAsPytestOptions:
    """Each setting is also a pytest ini option (``ci_kit_url``, ...), read wherever pytest
    reads them, and each boolean has a ``--no-`` flag."""

    @pytest.mark.parametrize(
        ("filename", "section", "quote"),
        [
            ("pytest.ini", "[pytest]", ""),
            ("tox.ini", "[pytest]", ""),
            ("setup.cfg", "[tool:pytest]", ""),
            ("pyproject.toml", "[tool.pytest.ini_options]", '"'),
        ],
    )
    def test_ini_options_alone_configure_the_kit_and_switch_it_on(
        self,
        pytester: pytest.Pytester,
        server_url: URL,
        base_name: str,
        filename: str,
        section: str,
        quote: str,
    ) -> None:
        log = write_suite(pytester, count=1)
        options = {
            "ci_kit_url": render(server_url.set(database=base_name)),
            "ci_kit_schema": "models:Base",
        }
        lines = "".join(f"{name} = {quote}{value}{quote}\n" for name, value in options.items())
        (pytester.path / filename).write_text(f"{section}\n{lines}")
        result = pytester.runpytest_subprocess("-p", "no:randomly")
        result.assert_outcomes(passed=2)
        assert {row["db"] for row in seen(log)} == {base_name}

    def test_an_ini_option_from_the_command_line_beats_the_table(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
    ) -> None:
        log = write_project(pytester, f"{base_name}_from_table", count=1)
        external_env(monkeypatch, server_url, f"{base_name}_from_url")
        result = pytester.runpytest_subprocess(
            "-p", "no:randomly", "-o", f"ci_kit_base_name={base_name}"
        )
        result.assert_outcomes(passed=2)
        assert {row["db"] for row in seen(log)} == {base_name}

    def test_a_bad_ini_value_is_one_line_naming_the_option(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
        result = pytester.runpytest_subprocess("-o", "ci_kit_reuse=maybe")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        (line,) = [line for line in result.stderr.lines if line.strip()]
        assert line == "ERROR: ci-kit: ini option ci_kit_reuse: invalid truth value 'maybe'"

    def test_no_reuse_beats_reuse_true_in_the_table_for_one_run(
        self, pytester: pytest.Pytester
    ) -> None:
        write_project(pytester, "embedded_test", count=1, reuse="true")
        data_dir = reuse_data_dir(pytester.path)
        try:
            result = pytester.runpytest_subprocess("--no-ci-kit-reuse", "-p", "no:randomly")
            result.assert_outcomes(passed=2)
            result.stdout.fnmatch_lines(["ci-kit: PostgreSQL 1*(embedded, *"])
            assert "kept for reuse" not in result.stdout.str()
            assert not data_dir.exists()
        finally:
            if data_dir.exists():
                stop_persistent(data_dir)
                shutil.rmtree(data_dir, ignore_errors=True)

    def test_a_no_flag_alone_does_not_switch_the_kit_on(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
        result = pytester.runpytest_subprocess("--no-ci-kit-reuse", "--no-ci-kit-allow-any-name")
        result.assert_outcomes(passed=1)
        assert "ci-kit:" not in result.stdout.str()  # no header line, no closing line


class TestCrashesAndConcurrency:
    @pytest.mark.slow
    def test_a_killed_runs_databases_are_swept_by_the_next_run_and_foreign_ones_survive(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        private_url: URL,
    ) -> None:
        """On a server of its own: a concurrent test's run would sweep the leftovers too."""
        base_name = new_base_name()
        server_url = private_url
        write_project(pytester, base_name, count=1)
        bystander = f"{base_name}_gw7"
        create_unmarked(server_url, bystander)
        started = pytester.path / "started"
        pytester.makepyfile(
            test_hang=f"""
            import pathlib, time
            def test_hangs(db_url):
                pathlib.Path({str(started)!r}).touch()
                time.sleep(120)
            """
        )
        external_env(monkeypatch, server_url, base_name)
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:randomly"],
            cwd=pytester.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            wait_for(started, process)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        leftovers = database_names(server_url, f"{base_name}_gw") - {bystander}
        assert leftovers, "the killed run should have left its worker databases"

        pytester.path.joinpath("test_hang.py").unlink()
        result = pytester.runpytest_subprocess("-p", "no:randomly")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["*dropped * leftover database(s)*"])
        assert database_names(server_url, f"{base_name}_gw") == {bystander}

    def test_two_runs_at_once_on_one_server_both_pass(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        server_url: URL,
        base_name: str,
    ) -> None:
        log = write_project(pytester, base_name, count=20)
        external_env(monkeypatch, server_url, base_name)
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:randomly", "-q"],
                cwd=pytester.path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=300)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        rows = seen(log)
        assert len(rows) == 80
        assert {row["seen"] for row in rows} == {0}
        assert len({row["db"] for row in rows}) == 4  # two workers each, distinct names
        assert database_names(server_url, f"{base_name}_gw") == set()

    @pytest.mark.slow
    def test_a_drop_interrupted_inside_postgres_harms_no_later_run_of_another_base(
        self, pytester: pytest.Pytester, private_url: URL
    ) -> None:
        """What execnet's SIGINT to a slow worker does: the DROP stops half-way, invalid.

        On a server of its own: its checkpointer is stopped for a while, and a concurrent
        test's run would sweep the invalid database before this test's next run.
        """
        server_url = private_url
        base_name = new_base_name()
        name = f"{base_name}_gw0"
        admin = Admin(server_url)
        admin.create(name, Mark("worker", f"dead{uuid.uuid4().hex[:8]}", base_name))
        admin.close()
        with connect_to(server_url, "postgres") as conn:  # its superuser sees its processes
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
            ).fetchone()
        assert row is not None
        checkpointer = int(row[0])
        os.kill(checkpointer, signal.SIGSTOP)  # DROP DATABASE now waits for a checkpoint
        try:
            dropper = subprocess.Popen([sys.executable, "-c", _DROPPER, render(server_url), name])
            wait_until(lambda: _connection_limit(server_url, name) == -2)
            dropper.send_signal(signal.SIGINT)
            dropper.wait(timeout=60)
        finally:
            os.kill(checkpointer, signal.SIGCONT)
        assert dropper.returncode != 0
        assert _connection_limit(server_url, name) == -2, "left invalid, as PostgreSQL does"

        other = f"{base_name}_next"
        write_project(pytester, other, count=2)
        result = pytester.runpytest_subprocess(
            "-n", "2", "--ci-kit-url", render(server_url.set(database=other))
        )
        assert result.ret == 0, result.stdout.str()
        result.stdout.fnmatch_lines([f"*dropped 1 leftover database(s): {name}*"])
        assert database_names(server_url, name) == set()


# Drops one database the way a worker's teardown does, until a SIGINT lands in it.
_DROPPER = """
import sys
from sqlalchemy.engine import make_url
from ci_kit.admin import Admin
Admin(make_url(sys.argv[1])).drop(sys.argv[2], allowed=lambda mark: True)
"""


def _connection_limit(url: URL, name: str) -> int | None:
    with connect_to(url, "postgres") as conn:
        row = conn.execute(
            "SELECT datconnlimit FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    return None if row is None else int(row[0])


class TestUrlEnvKeepsTheConfiguredScheme:
    """``url-env`` reads as the user wrote the URL: a raw libpq client connects with it."""

    RAW_CLIENT = """
import os
import psycopg
import pytest

@pytest.mark.parametrize("n", range(2))
def test_a_raw_client_connects_with_the_variable(db_url, n):
    variable = os.environ["DATABASE_URL"]
    assert variable.startswith("{scheme}://")
    with psycopg.connect(variable) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == db_url.database

@pytest.mark.db_isolation("fresh")
def test_a_fresh_clone_is_named_the_same_way(db_url, db_connection):
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0].startswith(
            db_url.database + "_f")
"""

    @pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["serial", "xdist"])
    @pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
    def test_a_configured_postgresql_url_reaches_raw_clients_as_such(
        self,
        pytester: pytest.Pytester,
        server_url: URL,
        base_name: str,
        scheme: str,
        args: tuple[str, ...],
    ) -> None:
        write_project(pytester, base_name, count=1, **{"url-env": "DATABASE_URL"})
        pytester.makepyfile(test_raw=self.RAW_CLIENT.replace("{scheme}", scheme))
        url = render(server_url.set(drivername=scheme, database=base_name))
        result = pytester.runpytest_subprocess(
            "--ci-kit-url", url + "\n", "-p", "no:randomly", *args
        )
        result.assert_outcomes(passed=5)
        assert TEST_PASSWORD not in result.stdout.str() + result.stderr.str()
