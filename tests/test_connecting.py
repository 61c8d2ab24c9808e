"""Opening a connection on a real PostgreSQL server: the URL's libpq parameters are used
as given, and every way a connection fails is one line naming its fix, no password in it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from ci_kit.admin import Admin
from ci_kit.connecting import connect, driver_error_line
from ci_kit.dburl import mask, secret_forms, with_database
from ci_kit.errors import (
    AuthenticationFailed,
    ConnectionRefused,
    InvalidDatabaseUrl,
    PostgresNotFound,
    ServerUnreachable,
)
from ci_kit.postgres import EmbeddedPostgres, find_binaries
from tests.helpers.clusters import socket_url
from tests.helpers.roles import throwaway_role
from tests.helpers.runs import running, wait_until
from tests.helpers.server import (
    TEST_PASSWORD,
    as_superuser,
    connect_to,
    create_unmarked,
    password_in_query,
)


def test_wrong_password_is_one_line_without_the_password(server_url: URL) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        Admin(server_url.set(password="wrong" + TEST_PASSWORD))
    message = str(caught.value)
    assert "password authentication failed for role 'ci_kit'" in message
    assert TEST_PASSWORD not in message
    assert "\n" not in message


def test_an_unreachable_server_is_one_line(server_url: URL) -> None:
    with pytest.raises(ServerUnreachable) as caught:
        Admin(server_url.set(host="127.0.0.1", port=1))
    assert "cannot reach PostgreSQL at" in str(caught.value)
    assert TEST_PASSWORD not in str(caught.value)


def test_libpq_parameters_in_the_url_are_used_and_its_connect_timeout_wins(
    server_url: URL,
) -> None:
    query = {"connect_timeout": "5", "sslmode": "disable", "application_name": "ci-kit-field"}
    admin = Admin(server_url.set(query=query))
    try:
        assert admin._scalar("SHOW application_name") == "ci-kit-field"
        assert admin._conn.info.get_parameters()["connect_timeout"] == "5"
    finally:
        admin.close()


def test_a_password_in_the_query_connects(server_url: URL) -> None:
    Admin(password_in_query(server_url, TEST_PASSWORD)).close()


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ({"foo": "bar"}, 'invalid connection option "foo"'),
        ({"autocommit": "true"}, 'invalid connection option "autocommit"'),
        ({"connect_timeout": "soon"}, "bad value for connect_timeout: 'soon'"),
    ],
)
def test_a_parameter_libpq_refuses_is_one_line_naming_it(
    server_url: URL, query: dict[str, str], complaint: str
) -> None:
    with pytest.raises(InvalidDatabaseUrl) as caught:
        Admin(server_url.set(query=query))
    message = str(caught.value)
    assert complaint in message
    assert "\n" not in message
    assert not [form for form in secret_forms(server_url) if form in message]


def test_an_unreachable_server_hides_a_password_in_the_query(server_url: URL) -> None:
    url = password_in_query(server_url.set(port=1), "hunter2", sslmode="prefer")
    with pytest.raises(ServerUnreachable) as caught:
        Admin(url)
    assert "?password=***&sslmode=prefer" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "error", "says"),
    [
        (
            {"password": None},
            AuthenticationFailed,
            "asks role 'ci_kit' for a password and the URL has none",
        ),
        (
            {"query": {"sslmode": "bogus"}},
            InvalidDatabaseUrl,
            'invalid sslmode value: "bogus"; fix it',
        ),
        ({"port": 99999}, InvalidDatabaseUrl, 'invalid port number: "99999"; fix it in the URL'),
        (
            {"query": {"sslmode": "require"}},
            ConnectionRefused,
            "refused the connection: server does",
        ),
    ],
    ids=["no-password", "bad-sslmode", "port-out-of-range", "ssl-required"],
)
def test_a_server_that_answers_no_is_not_called_unreachable(
    server_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, object],
    error: type[Exception],
    says: str,
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", os.devnull)
    with pytest.raises(error) as caught:
        Admin(server_url._replace(**change))
    assert says in str(caught.value)
    assert "is the server running" not in str(caught.value)
    assert not [form for form in secret_forms(TEST_PASSWORD) if form in str(caught.value)]


@pytest.fixture
def trusting_server() -> Iterator[URL]:
    """An embedded server through its socket: trust there, so it names a role it does not know."""
    try:
        binaries = find_binaries(allow_wheel=False)
    except PostgresNotFound:
        pytest.skip("no system PostgreSQL installed")
    with EmbeddedPostgres(binaries) as server:
        assert server.url is not None
        yield socket_url(server.url)


def test_a_role_the_server_does_not_know_is_named_with_the_fix(trusting_server: URL) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        Admin(trusting_server.set(username="nobody_here"))
    message = str(caught.value)
    assert message.startswith("the server at postgresql+psycopg://nobody_here@/postgres?host=")
    assert message.endswith(
        "refused role 'nobody_here': role \"nobody_here\" does not exist; "
        "check the role name and pg_hba.conf"
    )


@pytest.mark.parametrize(
    "limit",
    ["ALTER ROLE {role} CONNECTION LIMIT 0", "ALTER DATABASE {database} CONNECTION LIMIT 0"],
    ids=["role", "database"],
)
def test_a_connection_limit_is_named_with_its_fix(
    server_url: URL, base_name: str, limit: str
) -> None:
    with throwaway_role(server_url, TEST_PASSWORD) as url:
        create_unmarked(url, base_name)
        as_superuser(limit.format(role=url.username, database=base_name))
        with pytest.raises(ConnectionRefused) as caught:
            connect(with_database(url, base_name))
    message = str(caught.value)
    assert f"has no connection left for role {url.username!r}: too many connections" in message
    assert message.endswith("or run fewer xdist workers")
    assert not [form for form in secret_forms(TEST_PASSWORD) if form in message]


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as error:
        return error
    raise AssertionError("nothing was raised")


def test_a_driver_error_on_any_connection_is_one_line_without_the_password(
    server_url: URL,
) -> None:
    """What a fixture shows instead of a traceback, for the driver's errors and SQLAlchemy's."""
    refused = server_url.set(port=1)
    engine = create_engine(refused, poolclass=NullPool)
    through_sqlalchemy = raised(engine.connect)
    with connect_to(server_url, "postgres") as conn:
        undefined = raised(lambda: conn.execute("SELECT * FROM no_such_table"))
    lines = [
        driver_error_line(through_sqlalchemy, refused),
        driver_error_line(undefined, server_url),
    ]
    assert lines[0] is not None
    assert lines[0].startswith("cannot reach PostgreSQL at postgresql+psycopg://ci_kit:***@")
    assert lines[1] == (
        f"the database {mask(server_url)} answered UndefinedTable: "
        'relation "no_such_table" does not exist'
    )
    assert driver_error_line(ValueError(TEST_PASSWORD), server_url) is None
    for line in lines:
        assert "\n" not in str(line)
        assert not [form for form in secret_forms(TEST_PASSWORD) if form in str(line)]


@pytest.mark.parametrize(
    ("reserved", "free", "words"),
    [(0, 3, "too many clients"), (2, 1, "remaining connection slots are reserved")],
    ids=["max-connections", "reserved-connections"],
)
def test_a_server_without_free_slots_is_named_with_its_fix(
    reserved: int, free: int, words: str
) -> None:
    """``max_connections`` and the reserved slots: a non-superuser is told the limit."""
    try:
        binaries = find_binaries(allow_wheel=False)
    except PostgresNotFound:
        pytest.skip("no system PostgreSQL installed")
    settings = {"max_connections": "3", "superuser_reserved_connections": str(reserved)}
    with EmbeddedPostgres(binaries, settings=settings) as server:
        assert server.url is not None
        with connect(server.url) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE app LOGIN PASSWORD {}").format(sql.Literal(TEST_PASSWORD))
            )
            creator = conn.info.backend_pid
        wait_until(lambda: not running(creator))  # its slot is free once its backend is gone
        app = server.url.set(username="app", password=TEST_PASSWORD)
        held = [connect(app) for _ in range(free)]
        try:
            with pytest.raises(ConnectionRefused) as caught:
                connect(app)
        finally:
            for conn in held:
                conn.close()
    message = str(caught.value)
    assert "has no connection left for role 'app'" in message
    assert words in message
