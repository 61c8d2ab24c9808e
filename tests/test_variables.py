"""``[tool.ci-kit.env]``: checked once, rendered exactly, never showing a password."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import URL, make_url

from ci_kit.config import load_config
from ci_kit.errors import ConfigurationError
from ci_kit.variables import (
    WELL_KNOWN,
    masked_value,
    parse_templates,
    pointed,
    rendered,
    unmanaged,
)

URL_PARTS = URL.create(
    "postgresql+psycopg",
    username="app",
    password="p@ss:w/rd% #?+",
    host="127.0.0.1",
    port=54321,
    database="shop_test_gw1",
)


class TestTheTable:
    def test_url_env_is_short_for_a_url_template(self) -> None:
        table = {"POSTGRES_DB": "{database}", "DSN": "host={host} port={port}"}
        assert parse_templates(table, "DATABASE_URL") == {**table, "DATABASE_URL": "{url}"}

    def test_the_same_variable_twice_with_one_meaning_is_accepted(self) -> None:
        assert parse_templates({"DATABASE_URL": "{url}"}, "DATABASE_URL") == {
            "DATABASE_URL": "{url}"
        }

    def test_it_reaches_the_config_from_pyproject(self, tmp_path: Path) -> None:
        config = load_config(tmp_path, {"env": {"POSTGRES_DB": "{database}"}}, {}, {})
        assert config.env == {"POSTGRES_DB": "{database}"}

    @pytest.mark.parametrize(
        ("table", "url_env", "said"),
        [
            ("POSTGRES_DB={database}", None, "must be a table of VARIABLE"),
            ({"1DB": "{database}"}, None, "'1DB' is not an environment variable's name"),
            ({"A-B": "{database}"}, None, "'A-B' is not an environment variable's name"),
            ({"PORT": 5432}, None, "PORT must be a string, not 5432"),
            ({"DB": "{db}"}, None, "{db} is not one of {url}, {host}, {port}"),
            ({"DB": "{0}"}, None, "{0} is not one of"),
            ({"DB": "{}"}, None, "{} is not one of"),
            ({"PORT": "{port:05d}"}, None, "{port:05d} is not one of"),
            ({"URL": "{url!r}"}, None, "{url!r} is not one of"),
            ({"DB": "{database"}, None, "is not a template"),
            ({"DB": "database}"}, None, "is not a template"),
            ({"DATABASE_URL": "{database}"}, "DATABASE_URL", "also in [tool.ci-kit.env]"),
        ],
        ids=lambda value: str(value)[:20],
    )
    def test_a_bad_table_is_one_line(self, table: object, url_env: str | None, said: str) -> None:
        with pytest.raises(ConfigurationError) as caught:
            parse_templates(table, url_env)
        assert said in str(caught.value)
        assert "\n" not in str(caught.value)

    def test_a_literal_brace_is_written_twice(self) -> None:
        values = rendered(parse_templates({"JSON": '{{"db": "{database}"}}'}, None), URL_PARTS, "x")
        assert values == {"JSON": '{"db": "shop_test_gw1"}'}


class TestRendering:
    def test_every_placeholder(self) -> None:
        templates = {
            name.upper(): "{" + name + "}"
            for name in ("host", "port", "user", "password", "database")
        }
        assert rendered(templates, URL_PARTS, "postgresql") == {
            "HOST": "127.0.0.1",
            "PORT": "54321",
            "USER": "app",
            "PASSWORD": "p@ss:w/rd% #?+",
            "DATABASE": "shop_test_gw1",
        }

    def test_a_url_without_a_port_says_postgresqls_default(self) -> None:
        url = URL.create("postgresql", username="app", host="db.internal", database="app_test")
        assert rendered({"PORT": "{port}"}, url, "postgresql") == {"PORT": "5432"}

    @given(
        user=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1),
        password=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"])),
        database=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1),
        port=st.integers(1, 65535),
    )
    def test_the_url_reads_back_as_the_parts(
        self, user: str, password: str, database: str, port: int
    ) -> None:
        url = URL.create(
            "postgresql", username=user, password=password, host="::1", port=port, database=database
        )
        (value,) = rendered({"DATABASE_URL": "{url}"}, url, "postgresql").values()
        back = make_url(value)
        assert (back.username, back.password, back.host, back.port, back.database) == (
            user,
            password,
            "::1",
            port,
            database,
        )

    def test_pointed_sets_and_puts_back(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KEPT", "before")
        monkeypatch.delenv("ADDED", raising=False)
        with pointed({"KEPT": "during", "ADDED": "during"}):
            assert (os.environ["KEPT"], os.environ["ADDED"]) == ("during", "during")
        assert os.environ["KEPT"] == "before"
        assert "ADDED" not in os.environ


class TestMasking:
    # Characters no other part of the URL holds, so finding the password means it leaked.
    @given(password=st.text(alphabet="!$&*()~^ÄΩ€ \\'\"", min_size=4))
    def test_no_template_shows_the_password(self, password: str) -> None:
        url = URL_PARTS.set(password=password)
        templates = {
            "URL": "{url}",
            "PASSWORD": "{password}",
            "DSN": "host={host} password={password}",
        }
        for name, value in rendered(templates, url, "postgresql").items():
            assert password not in masked_value(templates[name], value)

    def test_parts_without_a_secret_are_shown(self) -> None:
        assert masked_value("{database}", "app") == "'app'"
        assert masked_value("{url}", "postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
        assert masked_value("{url}", "not a url") == "a value that is not a URL"


class TestUnmanaged:
    def test_a_well_known_variable_set_and_not_managed_is_named(self, tmp_path: Path) -> None:
        environ = {"DATABASE_URL": "postgresql://dev@localhost/app", "POSTGRES_DB": "app"}
        assert unmanaged({"POSTGRES_DB": "{database}"}, environ, tmp_path) == [
            ("DATABASE_URL", "environment")
        ]

    def test_empty_and_unknown_variables_are_not(self, tmp_path: Path) -> None:
        assert unmanaged({}, {"DATABASE_URL": "", "MY_DB": "x"}, tmp_path) == []

    def test_dotenv_files_up_to_the_repository_root(self, tmp_path: Path) -> None:
        (tmp_path / ".env").write_text("DATABASE_URL=postgresql://outside/app\n")
        repo = tmp_path / "repo"
        (repo / ".git").mkdir(parents=True)
        (repo / ".env").write_text("# the developer's\nexport POSTGRES_DB=app\nPOSTGRES_HOST=\n")
        project = repo / "backend"
        project.mkdir()
        (project / ".env").write_text("SQLALCHEMY_DATABASE_URI = postgresql://dev/app\n")
        assert unmanaged({}, {}, project) == [
            ("SQLALCHEMY_DATABASE_URI", str(project / ".env")),
            ("POSTGRES_DB", str(repo / ".env")),
        ]

    def test_the_list_names_what_adopters_meet(self) -> None:
        assert {"DATABASE_URL", "POSTGRES_DB", "POSTGRES_SERVER", "PGDATABASE"} <= set(WELL_KNOWN)
