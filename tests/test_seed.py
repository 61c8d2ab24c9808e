"""The seed: reference data loaded once into the template, cloned to every worker, by hash."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.config import load_config
from ci_kit.dburl import render
from ci_kit.errors import ConfigurationError, SeedSourceError
from ci_kit.plan import RunReport
from ci_kit.schema import Seed, fingerprint, parse_seed
from ci_kit.schema.empty import EmptySchema
from tests.helpers.clusters import initdb_base
from tests.helpers.projects import MODELS as ITEM_MODELS
from tests.helpers.server import database_names

ROOT = Path("/project")


pytestmark = pytest.mark.usefixtures("no_ambient_configuration")


@pytest.fixture
def seeds_module(tmp_path: Path) -> Iterator[str]:
    """A module of seed functions under ``tmp_path``, its name this test's own."""
    name = f"seeds_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def load(connection):
                pass

            async def load_async(connection):
                pass

            class Loader:
                def __call__(self, connection):
                    pass

            loader = Loader()
            NOT_A_FUNCTION = 42
            """
        )
    )
    yield name
    sys.modules.pop(name, None)


def write_data(root: Path, name: str, content: str) -> Path:
    path = root / "fixtures" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


class TestParsing:
    def test_no_seed_is_none(self, tmp_path: Path) -> None:
        assert parse_seed(None, (), tmp_path) is None
        assert parse_seed("", (), tmp_path) is None

    def test_a_seed_is_its_function_its_file_and_its_data_files(
        self, tmp_path: Path, seeds_module: str
    ) -> None:
        write_data(tmp_path, "b.json", "[]")
        write_data(tmp_path, "a.json", "[]")
        write_data(tmp_path, "notes.txt", "")
        seed = parse_seed(f"{seeds_module}:load", ["fixtures/*.json", "fixtures/a.*"], tmp_path)
        assert seed is not None
        assert seed.function.__name__ == "load"
        assert seed.source_file == tmp_path / f"{seeds_module}.py"
        assert seed.files == ("fixtures/a.json", "fixtures/b.json")

    def test_a_callable_instance_is_a_seed_of_its_modules_file(
        self, tmp_path: Path, seeds_module: str
    ) -> None:
        seed = parse_seed(f"{seeds_module}:loader", (), tmp_path)
        assert seed is not None
        assert seed.source_file == tmp_path / f"{seeds_module}.py"

    @pytest.mark.parametrize(
        ("target", "complaint"),
        [
            ("seeds", "seed 'seeds' is not 'package.module:function'"),
            ("no_such_module_xyz:load", "seed 'no_such_module_xyz:load' does not import: "
             "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
            ("{module}:nothing_here", "seed '{module}:nothing_here': module '{module}' has no "
             "attribute 'nothing_here'"),
            ("{module}:NOT_A_FUNCTION", "seed '{module}:NOT_A_FUNCTION' is a int, not a "
             "function taking a Connection"),
            ("{module}:load_async", "seed '{module}:load_async' is an async function: the kit "
             "calls it with a synchronous Connection, so make it a plain def"),
        ],
    )  # fmt: skip
    def test_a_target_that_is_no_seed_function_is_one_line(
        self, tmp_path: Path, seeds_module: str, target: str, complaint: str
    ) -> None:
        with pytest.raises(SeedSourceError) as caught:
            parse_seed(target.format(module=seeds_module), (), tmp_path)
        assert str(caught.value) == complaint.format(module=seeds_module)

    def test_seed_files_without_a_seed_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(SeedSourceError, match="seed-files is set but seed is not"):
            parse_seed(None, ["fixtures/*.json"], tmp_path)

    def test_a_pattern_matching_no_file_is_refused_as_a_likely_typo(
        self, tmp_path: Path, seeds_module: str
    ) -> None:
        write_data(tmp_path, "items.json", "[]")
        with pytest.raises(SeedSourceError) as caught:
            parse_seed(f"{seeds_module}:load", ["fixtures/*.json", "fixture/*.json"], tmp_path)
        assert str(caught.value) == (
            f"seed-files pattern 'fixture/*.json' matches no file under {tmp_path}"
        )

    def test_an_absolute_pattern_is_refused(self, tmp_path: Path, seeds_module: str) -> None:
        data = write_data(tmp_path, "items.json", "[]")
        with pytest.raises(SeedSourceError, match="is absolute: give it relative to the project"):
            parse_seed(f"{seeds_module}:load", [str(data)], tmp_path)


class TestFingerprint:
    def seeded(self, root: Path, module: str) -> str:
        return fingerprint(
            EmptySchema(), server_major=15, seed=parse_seed(f"{module}:load", ["**/*.json"], root)
        )

    def test_a_seed_makes_another_template(self, tmp_path: Path, seeds_module: str) -> None:
        write_data(tmp_path, "items.json", "[]")
        assert self.seeded(tmp_path, seeds_module) != fingerprint(EmptySchema(), server_major=15)

    def test_unchanged_data_keeps_the_template(self, tmp_path: Path, seeds_module: str) -> None:
        write_data(tmp_path, "items.json", "[]")
        assert self.seeded(tmp_path, seeds_module) == self.seeded(tmp_path, seeds_module)

    def test_changed_data_a_new_data_file_or_changed_code_make_another_template(
        self, tmp_path: Path, seeds_module: str
    ) -> None:
        data = write_data(tmp_path, "items.json", '["a"]')
        seen = {self.seeded(tmp_path, seeds_module)}

        data.write_text('["a", "b"]')
        seen.add(self.seeded(tmp_path, seeds_module))
        write_data(tmp_path, "more/currencies.json", "[]")
        seen.add(self.seeded(tmp_path, seeds_module))
        code = tmp_path / f"{seeds_module}.py"
        code.write_text(code.read_text() + "\n# a tweak\n")
        seen.add(self.seeded(tmp_path, seeds_module))
        assert len(seen) == 4

    def test_a_checkout_elsewhere_keeps_the_template(self, tmp_path: Path) -> None:
        """Data files count by their place in the project, not on the machine."""

        def seed_at(root: Path) -> Seed:
            write_data(root, "items.json", '["a"]')
            return Seed("seeds:load", lambda _: None, None, root, ("fixtures/items.json",))

        here, there = seed_at(tmp_path / "here"), seed_at(tmp_path / "there")
        assert list(here.fingerprint_parts()) == list(there.fingerprint_parts())


class TestConfiguration:
    def test_pyproject_takes_a_list_of_patterns(self) -> None:
        table = {"seed": "tests.seeds:load", "seed-files": ["a/*.json", "b/**/*.csv"]}
        config = load_config(ROOT, table, {}, {})
        assert (config.seed, config.seed_files) == ("tests.seeds:load", ("a/*.json", "b/**/*.csv"))

    def test_environment_and_flag_take_commas_and_the_flag_wins(self) -> None:
        environ = {"CI_KIT_SEED": "env.seeds:load", "CI_KIT_SEED_FILES": "a/*.json, b/*.csv"}
        from_env = load_config(ROOT, {"seed-files": ["x/*"]}, environ, {})
        assert (from_env.seed, from_env.seed_files) == ("env.seeds:load", ("a/*.json", "b/*.csv"))
        flags = {"ci_kit_seed": "cli.seeds:load", "ci_kit_seed_files": "c/*.json"}
        from_flag = load_config(ROOT, {}, environ, flags)
        assert (from_flag.seed, from_flag.seed_files) == ("cli.seeds:load", ("c/*.json",))

    @pytest.mark.parametrize("patterns", [["a/*.json", "b/*.csv"], "a/*.json,b/*.csv"])
    def test_an_ini_option_takes_a_list_or_commas(self, patterns: object) -> None:
        """``[tool.pytest.ini_options]`` hands a TOML list over as a list, an ini file text."""
        ini = {"ci_kit_seed": "ini.seeds:load", "ci_kit_seed_files": patterns}
        config = load_config(ROOT, {}, {}, {}, ini=ini)
        assert (config.seed, config.seed_files) == ("ini.seeds:load", ("a/*.json", "b/*.csv"))

    def test_nothing_configured_is_no_seed(self) -> None:
        config = load_config(ROOT, {}, {}, {})
        assert (config.seed, config.seed_files) == (None, ())

    @pytest.mark.parametrize("value", [["a/*.json", 3], ["a,b"], 3])
    def test_a_pyproject_value_that_is_no_list_of_patterns_is_refused(self, value: object) -> None:
        with pytest.raises(ConfigurationError, match=r"\[tool.ci-kit\] seed-files must be"):
            load_config(ROOT, {"seed-files": value}, {}, {})


REPORT = RunReport(
    server="127.0.0.1:5432, external",
    version="15.1",
    base_name="app_test",
    template="app_test_tpl_abc",
    schema="metadata (models:Base)",
    template_built=False,
    template_seconds=0.01,
    swept=(),
)


def test_the_header_and_the_closing_line_say_the_template_is_seeded() -> None:
    report = replace(REPORT, seed="seeds:load")
    assert report.lines()[1] == (
        "template app_test_tpl_abc reused in 0.01 s from metadata (models:Base), "
        "seeded by seeds:load; test databases app_test[_gwN]"
    )
    assert report.summary().endswith("template reused (seeded) in 0.01 s")


@pytest.mark.parametrize("stop_command", [None, "python -m ci_kit server --stop"])
def test_the_closing_line_says_how_to_stop_a_server_the_run_leaves_running(
    stop_command: str | None,
) -> None:
    report = replace(REPORT, server="embedded, kept for reuse, system", stop_command=stop_command)
    kept = ", kept running: python -m ci_kit server --stop stops it" if stop_command else ""
    assert report.summary() == f"PostgreSQL 15.1 (embedded{kept}); template reused in 0.01 s"


MODELS = (
    ITEM_MODELS
    + """
class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]
"""
)

# Each run of the seed leaves a line next to it: the tests count its runs.
SEEDS = """
import json
from pathlib import Path
from sqlalchemy import insert
from models import Item

HERE = Path(__file__).parent

def load(connection):
    with open(HERE / "seed_runs.log", "a") as runs:
        runs.write("ran\\n")
    names = json.loads((HERE / "fixtures" / "items.json").read_text())
    connection.execute(insert(Item), [{"name": name} for name in names])
"""

# Rollback tests delete the seeded rows and must not see another test's deletion;
# truncate tests commit a note and must find the seed intact and no note behind.
SUITE = """
import json, os
from pathlib import Path
import pytest
from sqlalchemy import delete, func, select
from models import Item, Note

NAMES = sorted(json.loads((Path(__file__).parent / "fixtures" / "items.json").read_text()))

def seeded_names(session):
    return sorted(session.scalars(select(Item.name)))

def record(db_url):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "serial")
    with open(Path(__file__).parent / "seen.jsonl", "a") as log:
        log.write(json.dumps({"worker": worker, "db": db_url.database}) + "\\n")

@pytest.mark.parametrize("n", range(4))
def test_every_test_starts_from_the_seed(db_session, db_url, n):
    record(db_url)
    assert seeded_names(db_session) == NAMES
    db_session.execute(delete(Item))
    db_session.commit()
    assert seeded_names(db_session) == []

@pytest.mark.db_isolation("truncate")
@pytest.mark.parametrize("n", range(2))
def test_truncate_keeps_the_seeded_rows_and_empties_the_rest(db_session, db_url, n):
    record(db_url)
    assert seeded_names(db_session) == NAMES
    assert db_session.scalar(select(func.count()).select_from(Note)) == 0
    db_session.add(Note(text="committed"))
    db_session.commit()
"""


def write_seeded_project(
    pytester: pytest.Pytester, base: str, names: list[str], seeds: str = SEEDS
) -> None:
    pytester.makefile(
        ".toml",
        pyproject=(
            f'[tool.ci-kit]\nbase-name = "{base}"\nschema = "models:Base"\n'
            'seed = "seeds:load"\nseed-files = ["fixtures/*.json"]\n'
        ),
    )
    pytester.makepyfile(models=MODELS, seeds=seeds, test_seeded=SUITE)
    write_data(pytester.path, "items.json", json.dumps(names))


def seed_runs(pytester: pytest.Pytester) -> int:
    log = pytester.path / "seed_runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture
def on_server(monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str) -> str:
    """The inner runs use the test server, under this test's own base name."""
    monkeypatch.setenv("CI_KIT_DATABASE_URL", render(server_url.set(database=base_name)))
    return base_name


class TestSeededRuns:
    def test_every_worker_gets_the_seeded_rows(
        self, pytester: pytest.Pytester, on_server: str
    ) -> None:
        write_seeded_project(pytester, on_server, ["EUR", "USD", "JPY"])
        result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
        result.assert_outcomes(passed=6)
        result.stdout.fnmatch_lines(
            [
                "ci-kit: template * built in * s from metadata (models:Base), "
                "seeded by seeds:load; test databases *",
                "ci-kit: 6 tests (6 passed) on 2 workers in *; "
                "PostgreSQL * template built (seeded) in *",
            ]
        )
        seen = (pytester.path / "seen.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in seen]
        assert {row["worker"]: row["db"] for row in rows} == {
            "gw0": f"{on_server}_gw0",
            "gw1": f"{on_server}_gw1",
        }
        assert seed_runs(pytester) == 1  # in the controller, for the template only

    def test_the_seed_runs_again_only_when_its_data_changes(
        self, pytester: pytest.Pytester, on_server: str
    ) -> None:
        write_seeded_project(pytester, on_server, ["EUR"])
        first = pytester.runpytest_subprocess("-p", "no:randomly")
        first.assert_outcomes(passed=6)
        first.stdout.fnmatch_lines(["*template * built *seeded by seeds:load*"])

        second = pytester.runpytest_subprocess("-p", "no:randomly")
        second.assert_outcomes(passed=6)
        second.stdout.fnmatch_lines(["*template * reused *seeded by seeds:load*"])
        assert seed_runs(pytester) == 1

        write_data(pytester.path, "items.json", json.dumps(["EUR", "GBP"]))
        third = pytester.runpytest_subprocess("-p", "no:randomly")
        third.assert_outcomes(passed=6)  # the suite expects the new rows
        third.stdout.fnmatch_lines(["*template * built *seeded by seeds:load*"])
        assert seed_runs(pytester) == 2


class TestSeedErrors:
    def error_line(self, result: pytest.RunResult) -> str:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        output = "\n".join([*result.stdout.lines, *result.stderr.lines])
        assert "Traceback" not in output
        (line,) = [line for line in output.splitlines() if line.startswith("ERROR")]
        return line

    def test_a_failing_seed_is_one_line_and_leaves_no_template(
        self, pytester: pytest.Pytester, on_server: str, server_url: URL
    ) -> None:
        failing = SEEDS + "    raise ValueError(f'no currency {names[0]!r}\\nsee the docs')\n"
        write_seeded_project(pytester, on_server, ["XYZ"], seeds=failing)
        result = pytester.runpytest_subprocess("-n", "2")
        assert self.error_line(result) == (
            "ERROR: ci-kit: seeding the template with seeds:load failed: "
            "ValueError: no currency 'XYZ'"
        )
        assert database_names(server_url, on_server) == set()

    def test_a_seed_that_is_no_function_is_one_line_and_leaves_no_server(
        self, pytester: pytest.Pytester
    ) -> None:
        """The schema is read while the server starts: the error stops both."""
        write_seeded_project(pytester, "embedded_test", ["EUR"])
        result = pytester.runpytest_subprocess("--ci-kit-seed", "seeds:nothing_here", "-v")
        assert self.error_line(result) == (
            "ERROR: ci-kit: seed 'seeds:nothing_here': module 'seeds' has no attribute "
            "'nothing_here'"
        )
        said = [line.removeprefix("ci-kit: ") for line in result.stdout.lines]
        if any("initdb -D" in line or "initialised cluster" in line for line in said):
            assert not initdb_base(said).exists()
