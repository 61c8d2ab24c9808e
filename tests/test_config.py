"""Configuration: precedence pyproject < ini option < environment < command line, validated once."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from ci_kit.config import SETTINGS, is_enabled, load_config, read_pyproject_table
from ci_kit.errors import ConfigurationError, InvalidDatabaseUrl
from tests.helpers.runs import run_kit

ROOT = Path("/project")
NO_CLI: dict[str, object] = {}


def cli(**values: object) -> dict[str, object]:
    return {f"ci_kit_{key}": value for key, value in values.items()}


def test_without_any_configuration_the_kit_stays_off() -> None:
    config = load_config(ROOT, None, {}, NO_CLI)
    assert not config.enabled
    assert config.wants_embedded


@pytest.mark.parametrize(
    ("table", "environ", "flags", "enabled"),
    [
        (None, {}, NO_CLI, False),
        ({}, {}, NO_CLI, True),
        (None, {"CI_KIT_DATABASE_URL": "postgresql://h/app_test"}, NO_CLI, True),
        (None, {}, cli(isolation="fresh"), True),
        (None, {}, cli(reuse=True), True),
        (None, {"CI_KIT_REUSE": "0"}, NO_CLI, False),
        (None, {"CI_KIT_ALLOW_ANY_NAME": "false"}, cli(reuse=False), False),
        (None, {"CI_KIT_SCHEMA": ""}, NO_CLI, False),
        (None, {"DATABASE_URL": "postgresql://h/app"}, NO_CLI, False),
    ],
)
def test_the_kit_is_on_only_when_asked_and_a_false_boolean_is_not_asking(
    table: dict[str, object] | None,
    environ: dict[str, str],
    flags: dict[str, object],
    enabled: bool,
) -> None:
    assert is_enabled(table, environ, flags) is enabled
    assert load_config(ROOT, table, environ, flags).enabled is enabled


def test_deciding_whether_the_kit_is_on_imports_no_database_library() -> None:
    code = (
        "import sys; from ci_kit.config import is_enabled; import ci_kit.plugin; "
        "is_enabled(None, {}, {}); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'psycopg', 'alembic')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_an_empty_table_enables_the_kit_with_defaults() -> None:
    config = load_config(ROOT, {}, {}, NO_CLI)
    assert config.enabled
    assert (config.base_name, config.isolation, config.server) == ("test", "rollback", "auto")


def test_command_line_beats_environment_beats_pyproject() -> None:
    table = {"isolation": "truncate", "base-name": "from_pyproject_test"}
    environ = {"CI_KIT_ISOLATION": "fresh", "CI_KIT_BASE_NAME": "from_env_test"}
    config = load_config(ROOT, table, environ, cli(base_name="from_cli_test"))
    assert config.base_name == "from_cli_test"
    assert config.isolation == "fresh"


def test_the_url_names_the_base_database_unless_a_base_name_is_given() -> None:
    environ = {"CI_KIT_DATABASE_URL": "postgresql://app:s3cret@db/finance_report_test"}
    config = load_config(ROOT, None, environ, NO_CLI)
    assert config.enabled
    assert config.base_name == "finance_report_test"
    assert config.url is not None
    assert config.url.password == "s3cret"
    assert not config.wants_embedded
    assert load_config(ROOT, {"base-name": "other_test"}, environ, NO_CLI).base_name == "other_test"


def test_embedded_mode_ignores_a_configured_url() -> None:
    config = load_config(
        ROOT, {"server": "embedded"}, {"CI_KIT_DATABASE_URL": "postgresql://h/x_test"}, NO_CLI
    )
    assert config.wants_embedded


def test_external_mode_needs_a_url_and_says_every_place_one_can_be_given() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(ROOT, {"server": "external"}, {}, NO_CLI)
    for place in ("--ci-kit-url", "CI_KIT_DATABASE_URL", "ci_kit_url", "[tool.ci-kit] url"):
        assert place in str(caught.value)


def test_flags_read_booleans_from_every_source() -> None:
    assert load_config(ROOT, {"reuse": True}, {}, NO_CLI).reuse
    assert load_config(ROOT, {}, {"CI_KIT_REUSE": "yes"}, NO_CLI).reuse
    assert load_config(ROOT, {}, {}, cli(reuse=True)).reuse
    assert not load_config(ROOT, {"reuse": True}, {"CI_KIT_REUSE": "0"}, NO_CLI).reuse


@pytest.mark.parametrize(
    ("table", "environ", "complaint"),
    [
        ({"isolation": "sometimes"}, {}, "must be one of rollback, truncate, fresh"),
        ({}, {"CI_KIT_SERVER": "cloud"}, "CI_KIT_SERVER must be one of"),
        ({}, {"CI_KIT_REUSE": "maybe"}, "must be true or false"),
        ({"base-nmae": "x_test"}, {}, "unknown key(s) in [tool.ci-kit]: base-nmae"),
        ({"schema": 3}, {}, "schema must be a string"),
        ({"database-settings": "UTC"}, {}, "database-settings must be a table"),
        ({"url-env": "A=B"}, {}, "url-env must be an environment variable's name"),
        ({"url-env": ""}, {}, "[tool.ci-kit] url-env is empty: give a value"),
        ({"maintenance-db": ""}, {}, "maintenance-db must be a non-empty string"),
        ({"maintenance-db": 5432}, {}, "maintenance-db must be a non-empty string"),
    ],
)
def test_invalid_values_are_refused_in_one_line(
    table: dict[str, object], environ: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(ROOT, table, environ, NO_CLI)
    assert complaint in str(caught.value)


def test_command_line_values_are_checked_too() -> None:
    with pytest.raises(ConfigurationError, match="--ci-kit-isolation must be one of"):
        load_config(ROOT, None, {}, cli(isolation="bogus"))
    with pytest.raises(ConfigurationError, match="--ci-kit-url-env must be an environment"):
        load_config(ROOT, None, {}, cli(url_env="1DATABASE_URL"))
    assert load_config(ROOT, None, {}, cli(url_env="DATABASE_URL")).url_env == "DATABASE_URL"


def test_a_bad_url_is_refused_without_leaking_its_password() -> None:
    with pytest.raises(InvalidDatabaseUrl) as caught:
        load_config(ROOT, None, {"CI_KIT_DATABASE_URL": "mysql://u:hunter2@h/x_test"}, NO_CLI)
    assert "hunter2" not in str(caught.value)


def test_relative_paths_resolve_against_the_project_root() -> None:
    config = load_config(ROOT, {"pg-bin-dir": "vendor/pg/bin"}, {}, NO_CLI)
    assert config.pg_bin_dir == ROOT / "vendor/pg/bin"


def test_database_settings_are_strings() -> None:
    config = load_config(ROOT, {"database-settings": {"timezone": "UTC", "jit": False}}, {}, NO_CLI)
    assert dict(config.database_settings) == {"timezone": "UTC", "jit": "false"}


def test_every_setting_has_a_flag_an_ini_option_and_help() -> None:
    for setting in SETTINGS:
        assert setting.flag.startswith("--ci-kit-")
        assert setting.ini == setting.flag.removeprefix("--").replace("-", "_")
        assert setting.help.endswith(".") or setting.help.endswith(")")
        assert setting.ini_kwargs()["type"] == ("bool" if setting.is_flag else "string")


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({}, "table_test"),
        ({"ini": "ini_test"}, "ini_test"),
        ({"ini": "ini_test", "env": "env_test"}, "env_test"),
        ({"ini": "ini_test", "env": "env_test", "cli": "cli_test"}, "cli_test"),
        ({"ini": "", "env": ""}, "table_test"),  # given empty: not given, as pytest reads it
    ],
)
def test_table_then_ini_option_then_environment_then_command_line(
    sources: dict[str, str], expected: str
) -> None:
    ini = {"ci_kit_base_name": sources["ini"]} if "ini" in sources else {}
    environ = {"CI_KIT_BASE_NAME": sources["env"]} if "env" in sources else {}
    flags = cli(base_name=sources["cli"]) if "cli" in sources else NO_CLI
    config = load_config(ROOT, {"base-name": "table_test"}, environ, flags, ini=ini)
    assert config.base_name == expected


@pytest.mark.parametrize("absent", [None, "", []], ids=["pytest-9", "empty", "pytest-8.0"])
def test_an_ini_option_nobody_set_leaves_the_table_in_charge(absent: object) -> None:
    ini = {"ci_kit_isolation": absent, "ci_kit_reuse": absent}
    config = load_config(ROOT, {"isolation": "fresh", "reuse": True}, {}, NO_CLI, ini=ini)
    assert (config.isolation, config.reuse) == ("fresh", True)
    assert not is_enabled(None, {}, NO_CLI, ini=ini)


def test_an_ini_option_alone_switches_the_kit_on_unless_it_is_a_false_boolean() -> None:
    assert is_enabled(None, {}, NO_CLI, ini={"ci_kit_schema": "models:Base"})
    assert is_enabled(None, {}, NO_CLI, ini={"ci_kit_reuse": True})
    assert not is_enabled(None, {}, NO_CLI, ini={"ci_kit_reuse": False})
    config = load_config(ROOT, None, {}, NO_CLI, ini={"ci_kit_url": "postgresql://h/ini_test"})
    assert (config.enabled, config.base_name) == (True, "ini_test")


def test_no_flag_given_false_beats_true_everywhere_else_and_asks_for_nothing() -> None:
    """``--no-ci-kit-reuse``: one run without what the project's files switch on."""
    everywhere = {
        "table": {"reuse": True, "allow-any-name": True},
        "environ": {"CI_KIT_REUSE": "1", "CI_KIT_ALLOW_ANY_NAME": "yes"},
        "ini": {"ci_kit_reuse": True, "ci_kit_allow_any_name": True},
    }
    config = load_config(
        ROOT,
        everywhere["table"],
        everywhere["environ"],
        cli(reuse=False, allow_any_name=False),
        ini=everywhere["ini"],
    )
    assert (config.reuse, config.allow_any_name) == (False, False)
    assert not is_enabled(None, {}, cli(reuse=False, allow_any_name=False))


@pytest.mark.parametrize(
    ("argv", "reuse"),
    [([], None), (["--ci-kit-reuse"], True), (["--no-ci-kit-reuse"], False)],
)
def test_a_boolean_flag_has_a_no_form_and_is_none_when_not_given(
    argv: list[str], reuse: bool | None
) -> None:
    """None, not False, when absent: an absent flag must not override a file's true."""
    parser = argparse.ArgumentParser()
    for setting in SETTINGS:
        parser.add_argument(setting.flag, **setting.option_kwargs())
    options = parser.parse_args(argv)
    assert options.ci_kit_reuse is reuse
    assert options.ci_kit_allow_any_name is None


@pytest.mark.parametrize(
    ("ini", "complaint"),
    [
        ({"ci_kit_isolation": "bogus"}, "ini option ci_kit_isolation must be one of rollback"),
        ({"ci_kit_reuse": "maybe"}, "ini option ci_kit_reuse must be true or false, not 'maybe'"),
        ({"ci_kit_url_env": "A=B"}, "ini option ci_kit_url_env must be an environment"),
        ({"ci_kit_schema": True}, "ini option ci_kit_schema must be a string, not True"),
    ],
)
def test_ini_option_values_are_checked_and_named(ini: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(ROOT, None, {}, NO_CLI, ini=ini)
    assert complaint in str(caught.value)


def test_pyproject_table_is_read_only_when_present(tmp_path: Path) -> None:
    assert read_pyproject_table(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert read_pyproject_table(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text("[tool.ci-kit]\nbase-name = 'app_test'\n")
    assert read_pyproject_table(tmp_path) == {"base-name": "app_test"}


def test_a_ci_kit_key_that_is_not_a_table_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool]\nci-kit = 'on'\n")
    with pytest.raises(ConfigurationError) as caught:
        read_pyproject_table(tmp_path)
    assert str(caught.value) == f"[tool.ci-kit] in {tmp_path / 'pyproject.toml'} must be a table"


def test_malformed_pyproject_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ci-kit\n")
    with pytest.raises(ConfigurationError, match="is not valid TOML"):
        read_pyproject_table(tmp_path)


@pytest.mark.parametrize(
    ("table", "flags", "complaint"),
    [
        ({"base-name": ""}, NO_CLI, "[tool.ci-kit] base-name is empty"),
        ({"base-name": "  "}, NO_CLI, "[tool.ci-kit] base-name is empty"),
        ({}, cli(base_name=""), "--ci-kit-base-name is empty"),
        ({"schema": ""}, NO_CLI, "[tool.ci-kit] schema is empty"),
        ({}, cli(url=""), "--ci-kit-url is empty"),
    ],
)
def test_a_setting_written_empty_is_refused_rather_than_defaulted(
    table: dict[str, object], flags: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(ROOT, table, {}, flags)
    assert str(caught.value).startswith(complaint)
    assert "leave it out for the default" in str(caught.value)


@pytest.mark.parametrize(("written", "meant"), [(1, True), (0, False), (True, True)])
def test_a_toml_integer_for_a_boolean_means_what_1_and_0_mean_elsewhere(
    written: object, meant: bool
) -> None:
    """``reuse = 1`` as ``CI_KIT_REUSE=1`` and ``ci_kit_reuse = 1`` in pytest.ini mean."""
    assert load_config(ROOT, {"reuse": written}, {}, NO_CLI).reuse is meant
    assert load_config(ROOT, {"allow-any-name": written}, {}, NO_CLI).allow_any_name is meant


def test_an_integer_other_than_0_or_1_for_a_boolean_is_one_line() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(ROOT, {"reuse": 2}, {}, NO_CLI)
    assert str(caught.value) == "[tool.ci-kit] reuse must be true or false, not '2'"


def test_a_pyproject_that_is_not_utf_8_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(
        "[tool.ci-kit]\nbase-name = 'caf\xe9_test'\n".encode("latin-1")
    )
    with pytest.raises(ConfigurationError) as caught:
        read_pyproject_table(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'pyproject.toml'} is not valid TOML: byte ")
    assert "re-save it as UTF-8" in str(caught.value)


@pytest.mark.parametrize("command", [("clean",), ("clean", "--dry-run")])
def test_clean_in_a_project_whose_pyproject_is_not_utf_8_is_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    (tmp_path / "pyproject.toml").write_bytes(
        "[tool.ci-kit]\nbase-name = 'caf\xe9_test'\n".encode("latin-1")
    )
    done = run_kit(tmp_path, *command)
    assert done.returncode == 4, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"ERROR: ci-kit: {tmp_path / 'pyproject.toml'} is not valid TOML: byte ")
