"""A clone behaves as ``alembic upgrade head`` would: it carries its template's settings.

``CREATE DATABASE ... TEMPLATE`` copies no ``pg_db_role_setting`` row, so a
migration's ``ALTER DATABASE <current> SET search_path`` would stay on the template
and every clone would lack it. The kit writes the template's settings (per role too)
and then ``database-settings`` on every clone: worker databases, ``fresh`` clones,
the controller's trial clone. List settings go back element by element.
"""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql
from sqlalchemy.engine import URL

from ci_kit.admin import Admin
from ci_kit.cloning import clone, ensure_template
from ci_kit.dburl import render
from ci_kit.marks import Mark
from ci_kit.setting_values import split_entry, split_names, value_sql
from tests.helpers.projects import write_alembic_project
from tests.helpers.server import connect_to, database_names

# --- the values, without a server ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("app, public", ["app", "public"]),
        ('app, "My Schema", public', ["app", "My Schema", "public"]),
        ('"a ""quoted"" one",b', ['a "quoted" one', "b"]),
        ("  App  ,PUBLIC", ["app", "public"]),
        ('"$user", public', ["$user", "public"]),
        ('""', [""]),
        ("", [""]),
        ('"a,b"', ["a,b"]),
    ],
)
def test_a_list_setting_splits_as_the_server_reads_it(text: str, names: list[str]) -> None:
    assert split_names(text) == names


@given(st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\0"), min_size=1)))
def test_quoted_names_come_back_as_they_were(names: list[str]) -> None:
    quoted = ", ".join('"' + name.replace('"', '""') + '"' for name in names)
    assert split_names(quoted) == (names or [""])


def test_a_setting_entry_splits_at_its_first_equals_sign() -> None:
    assert split_entry("search_path=a, b") == ("search_path", "a, b")
    assert split_entry("application_name=x=y") == ("application_name", "x=y")


def test_only_list_settings_are_split() -> None:
    assert value_sql("search_path", "a, b") == sql.SQL(", ").join(
        [sql.Literal("a"), sql.Literal("b")]
    )
    assert value_sql("DateStyle", "ISO, MDY") == sql.Literal("ISO, MDY")


# --- on the server -------------------------------------------------------------------


def build_with_settings(url: URL) -> None:
    """A migration's kind of work: a table in its own schema, found by search_path."""
    database = sql.Identifier(str(url.database))
    with connect_to(url, str(url.database)) as conn:
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE TABLE app.widget (id int)")
        for statement in (
            "ALTER DATABASE {} SET search_path = app, public",
            "ALTER ROLE CURRENT_USER IN DATABASE {} SET work_mem = '7MB'",
            "ALTER DATABASE {} SET statement_timeout = '42s'",
        ):
            conn.execute(sql.SQL(statement).format(database))


def clone_with(admin: Admin, base_name: str, run_id: str, configured: dict[str, str]) -> str:
    """A worker's clone of a template built by :func:`build_with_settings`."""
    template = f"{base_name}_tpl"
    ensure_template(admin, template, base=base_name, run_id=run_id, build=build_with_settings)
    worker = f"{base_name}_gw0"
    clone(admin, template, worker, Mark("worker", run_id, base_name), configured)
    return worker


def test_a_clone_has_the_templates_settings_under_the_configured_ones(
    admin: Admin, base_name: str, run_id: str
) -> None:
    configured = {"statement_timeout": "9s", "temp_tablespaces": "pg_default"}
    worker = clone_with(admin, base_name, run_id, configured)
    with connect_to(admin.server_url, worker) as conn:
        assert conn.execute("SELECT count(*) FROM widget").fetchone() == (0,)
        assert conn.execute("SHOW search_path").fetchone() == ("app, public",)
        assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)  # the role's, in there
        assert conn.execute("SHOW statement_timeout").fetchone() == ("9s",)  # config wins
        assert conn.execute("SHOW temp_tablespaces").fetchone() == ("pg_default",)


def test_a_configured_search_path_is_a_list_not_one_schema_named_with_a_comma(
    admin: Admin, base_name: str, run_id: str
) -> None:
    worker = clone_with(admin, base_name, run_id, {"search_path": 'public, "App Schema", app'})
    with connect_to(admin.server_url, worker) as conn:
        assert conn.execute("SHOW search_path").fetchone() == ('public, "App Schema", app',)
        assert conn.execute("SELECT count(*) FROM widget").fetchone() == (0,)


MIGRATION = """
from alembic import op

revision = "0001"
down_revision = None

def upgrade():
    op.execute("CREATE SCHEMA app")
    op.execute("CREATE TABLE app.widget (id serial PRIMARY KEY, name text)")
    op.execute(
        "DO $$ BEGIN EXECUTE format("
        "'ALTER DATABASE %I SET search_path = app, public', current_database()); END $$"
    )
"""

SUITE = """
import pytest
from sqlalchemy import text

@pytest.mark.parametrize("n", range(4))
def test_the_migrations_search_path_finds_the_table(db_session, n):
    assert db_session.scalar(text("SHOW search_path")) == "app, public"
    db_session.execute(text("INSERT INTO widget (name) VALUES ('w')"))
    assert db_session.scalar(text("SELECT count(*) FROM widget")) == 1

@pytest.mark.db_isolation("fresh")
def test_a_fresh_clone_has_it_too(db_session):
    assert db_session.scalar(text("SELECT count(*) FROM widget")) == 0
"""


@pytest.mark.parametrize("workers", [("-n", "2"), ()], ids=["xdist", "serial"])
def test_a_migrations_alter_database_set_reaches_every_clone(
    pytester: pytest.Pytester, server_url: URL, base_name: str, workers: tuple[str, ...]
) -> None:
    write_alembic_project(pytester, base_name, textwrap.dedent(MIGRATION))
    pytester.makepyfile(test_widgets=SUITE)
    url = render(server_url.set(database=base_name))
    result = pytester.runpytest_subprocess(*workers, "--ci-kit-url", url)
    result.assert_outcomes(passed=5)
    assert database_names(server_url, f"{base_name}_gw") == set()
