"""Database names and URLs for a test run: pure functions, no I/O.

Everything here derives one value from another (a worker's database name from the
base name, a URL from another URL) so it can be tested exhaustively. URLs travel as
``sqlalchemy.URL`` objects and are rendered to strings only at the edge, because
``str(url)`` masks the password as ``***`` and a masked URL connects as nobody.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ci_kit.errors import InvalidDatabaseUrl, UnsafeDatabaseName

MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL silently truncates longer identifiers; we shorten them ourselves."""

DRIVERNAME = "postgresql+psycopg"
"""The kit connects with psycopg 3 whatever driver the given URL names."""

_HASH_LENGTH = 8
_SERIAL_WORKER_IDS = frozenset({"", "master"})
_MASK = "***"
_CONNINFO_ESCAPE = re.compile(r"([\\'])")
_WORD = re.compile(r"\w")

SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
"""Query parameters whose values are secrets, as libpq names them."""


def parse_database_url(raw: str | URL) -> URL:
    """Validate a PostgreSQL URL and normalise its driver to psycopg 3.

    Raises :class:`InvalidDatabaseUrl` with one line naming the problem; the message
    never contains the password. Whitespace around a URL given as text (a CI secret
    pasted with its newline) is dropped: no URL ends in raw whitespace, and kept it
    would end up in the names of the databases the kit creates.
    """
    try:
        url = make_url(raw.strip() if isinstance(raw, str) else raw)
    except ArgumentError:
        raise InvalidDatabaseUrl(
            "the database URL could not be parsed; expected "
            "postgresql://user:password@host:port/dbname_test"
        ) from None
    except ValueError:  # SQLAlchemy's int() of the port; the URL is not shown, it is unparsed
        raise InvalidDatabaseUrl(_unparsed_port(str(raw))) from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise InvalidDatabaseUrl(
            f"{mask(url)} is not a PostgreSQL URL; the kit needs postgresql://..."
        )
    if url.host is not None and "@" in url.host:
        # ``user:p@ss@host``: the password's own '@' ended it early. Its rest is in the
        # host now, so no part of this URL is shown.
        raise InvalidDatabaseUrl(
            "the host in the database URL contains '@': " + _PERCENT_ENCODE_HINT
        )
    if _names_several_hosts(url):
        raise InvalidDatabaseUrl(
            f"{mask(url)} names several hosts; the kit creates and drops databases on one "
            "server: name its primary alone (one host, one port)"
        )
    if not url.database:
        raise InvalidDatabaseUrl(
            f"{mask(url)} names no database; name the base test database in it, "
            "e.g. postgresql://user@host/app_test"
        )
    return url.set(drivername=DRIVERNAME)


_PERCENT_ENCODE_HINT = (
    "an '@', ':' or '/' in the password or user name must be percent-encoded "
    "(@ as %40, : as %3A, / as %2F)"
)


def _unparsed_port(raw: str) -> str:
    """Why SQLAlchemy found no port number: several hosts, or a password's unencoded '@'."""
    authority = raw.partition("://")[2].partition("/")[0]
    if "," in authority.rpartition("@")[2]:
        return (
            "the database URL names several hosts (libpq's host1:port1,host2:port2); the kit "
            "creates and drops databases on one server: name its primary alone"
        )
    return (
        "the port in the database URL is not a number; expected "
        f"postgresql://user:password@host:5432/dbname_test; {_PERCENT_ENCODE_HINT}"
    )


def _names_several_hosts(url: URL) -> bool:
    """libpq's multi-host forms: a repeated ``?host=`` or ``?port=``, or a comma list."""
    return any(
        len(_values(url.query[key])) > 1 or any("," in value for value in _values(url.query[key]))
        for key in ("host", "hostaddr", "port")
        if key in url.query
    ) or "," in (url.host or "")


def configured_drivername(raw: str | URL) -> str:
    """The scheme and driver a URL was written with, before :func:`parse_database_url`.

    ``url-env`` hands applications their database in the form they configured it:
    a raw libpq client cannot read ``postgresql+psycopg://``.
    """
    return (make_url(raw.strip()) if isinstance(raw, str) else raw).drivername


def environment_url(url: URL, drivername: str) -> str:
    """``url`` rendered for an application's ``url-env``, in its configured scheme and driver.

    Every part is percent-encoded strictly (a space as ``%20``, ``+`` as ``%2B``):
    SQLAlchemy's own rendering keeps spaces raw and writes ``+`` for a space in the
    query, which libpq refuses or reads as a plus. Both parsers read this form back
    exactly, so psycopg, libpq, asyncpg and SQLAlchemy clients all connect with it.
    """
    userinfo = ""
    if url.username is not None:
        password = "" if url.password is None else ":" + quote(url.password, safe="")
        userinfo = f"{quote(url.username, safe='')}{password}@"
    host = f"[{url.host}]" if url.host and ":" in url.host else (url.host or "")
    port = "" if url.port is None else f":{url.port}"
    pairs = [(key, value) for key in sorted(url.query) for value in _values(url.query[key])]
    query = urlencode(pairs, safe="", quote_via=quote)
    database = quote(url.database or "", safe="")
    return f"{drivername}://{userinfo}{host}{port}/{database}" + (f"?{query}" if query else "")


def url_parts(url: URL) -> dict[str, Any]:
    """``url`` as plain values that cross a process boundary (JSON) intact.

    Parts, not a rendered string: a password with ``%`` or ``@`` in it arrives
    exactly as it left.
    """
    return {
        "drivername": url.drivername,
        "username": url.username,
        "password": url.password,
        "host": url.host,
        "port": url.port,
        "database": url.database,
        "query": dict(url.query),
    }


def url_from_parts(parts: Mapping[str, Any]) -> URL:
    """The URL :func:`url_parts` took apart."""
    return URL.create(
        drivername=parts["drivername"],
        username=parts["username"],
        password=parts["password"],
        host=parts["host"],
        port=parts["port"],
        database=parts["database"],
        query=parts["query"],
    )


def render(url: URL) -> str:
    """The URL with its password, for the code that connects: never for display."""
    return url.render_as_string(hide_password=False)


def mask(url: URL) -> str:
    """The URL as a person may see it: each of its :func:`url_secrets` shown as ``***``."""
    shown = url.set(query={}).render_as_string(hide_password=True)
    if not url.query:
        return shown
    # SQLAlchemy's own rendering of the query (sorted keys, quote_plus), except that a
    # secret's value is replaced, and by a readable ``***`` rather than ``%2A%2A%2A``.
    pairs = (
        f"{quote_plus(key)}={_MASK if _is_secret_parameter(key) else quote_plus(value)}"
        for key in sorted(url.query)
        for value in _values(url.query[key])
    )
    return f"{shown}?{'&'.join(pairs)}"


def redact(text: str, url: URL) -> str:
    """Replace each of the URL's secrets in free text, in any of its forms, by ``***``.

    Error messages from drivers and subprocesses are passed through this before
    they are shown, in case they quote a connection string. A secret is replaced
    where it stands as a value of its own, not inside a longer word: a password
    ``test`` must not turn database ``app_test_gw1`` into ``app_***_gw1``. A
    password is delimited wherever it is written (``:pw@``, ``password=pw ``,
    ``'pw'``), so this hides every real occurrence.
    """
    pattern = _secrets_pattern(secret_forms(url))
    return text if pattern is None else pattern.sub(_MASK, text)


def _secrets_pattern(forms: set[str]) -> re.Pattern[str] | None:
    """One alternation, longest form first, each not glued to a word character."""
    if not forms:
        return None
    alternatives = (
        (r"(?<!\w)" if _WORD.match(form[0]) else "")
        + re.escape(form)
        + (r"(?!\w)" if _WORD.match(form[-1]) else "")
        for form in sorted(forms, key=lambda form: (-len(form), form))
    )
    return re.compile("|".join(alternatives))


def url_secrets(url: URL) -> tuple[str, ...]:
    """What a URL holds that must never be shown: the password, and secret query values.

    libpq takes a password from the query too (``?password=``), and ``sslpassword``
    for an encrypted client key. The one definition :func:`mask`, :func:`redact` and
    :func:`secret_forms` share. Empty values hide nothing and are left out.
    """
    secrets = [url.password or ""]
    for key, value in url.query.items():
        if _is_secret_parameter(key):
            secrets.extend(_values(value))
    return tuple(secret for secret in secrets if secret)


def secret_forms(secret: str | URL) -> set[str]:
    """The ways a secret, or each secret of a URL, can appear in text.

    Raw; percent-encoded strictly, as in a query (``quote_plus``), as SQLAlchemy
    renders a password (spaces and ``+`` kept) and as ``urllib.parse.quote`` does by
    default; and escaped as in a libpq ``key='value'`` connection string.
    """
    secrets = url_secrets(secret) if isinstance(secret, URL) else (secret,)
    return {form for one in secrets if one for form in _forms_of(one)}


def _forms_of(secret: str) -> set[str]:
    return {
        secret,
        quote(secret, safe=""),
        quote(secret, safe=" +"),
        quote(secret),
        quote_plus(secret),
        _CONNINFO_ESCAPE.sub(r"\\\1", secret),
    }


def _is_secret_parameter(key: str) -> bool:
    """libpq's names are case-sensitive; a misspelt ``Password`` is masked all the same."""
    return key.lower() in SECRET_PARAMETERS


def _values(value: str | Sequence[str]) -> tuple[str, ...]:
    """A query value of SQLAlchemy's URL: a string, or a tuple for a repeated key."""
    return (value,) if isinstance(value, str) else tuple(value)


def with_database(url: URL, database: str) -> URL:
    """The same server, role and password, another database."""
    return url.set(database=database)


def short_hash(text: str, length: int = _HASH_LENGTH) -> str:
    """A stable hexadecimal digest, for names that must be short but distinct."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit_identifier(stem: str, suffix: str = "") -> str:
    """``stem + suffix`` within PostgreSQL's 63-byte limit.

    A name that fits is returned unchanged. A longer one keeps the suffix (so a
    worker's name still ends in ``_gw3``) and replaces the end of the stem by a hash
    of the whole stem, so two long stems never collapse into one name.
    """
    name = stem + suffix
    if _byte_length(name) <= MAX_IDENTIFIER_BYTES:
        return name
    marker = "_" + short_hash(stem)
    room = MAX_IDENTIFIER_BYTES - _byte_length(suffix) - len(marker)
    if room < 1:
        raise UnsafeDatabaseName(f"the suffix {suffix!r} leaves no room for a database name")
    return _truncate_bytes(stem, room) + marker + suffix


def worker_database_name(base: str, worker_id: str | None) -> str:
    """``<base>_gwN`` for xdist worker ``gwN``; the base name itself for a serial run."""
    if worker_id is None or worker_id in _SERIAL_WORKER_IDS:
        return fit_identifier(base)
    return fit_identifier(base, f"_{worker_id}")


def template_database_name(base: str, schema_hash: str) -> str:
    """The template's name carries the schema hash, so a changed schema gets a new one."""
    return fit_identifier(base, f"_tpl_{schema_hash[:12]}")


def fresh_database_name(database: str, sequence: int) -> str:
    """A per-test clone for a test marked ``fresh``: the worker's name plus a counter."""
    return fit_identifier(database, f"_f{sequence}")


def run_base_name(base: str, run_id: str) -> str:
    """A base name private to one run, used when another live run holds ``base``."""
    return fit_identifier(base, f"_{run_id[:6]}")


def check_test_name(base: str, *, allow_any_name: bool) -> None:
    """Refuse a base name that does not look like a test database.

    The kit drops and recreates the databases it derives from this name; a name
    without ``test`` in it is more likely a real database than a scratch one.
    """
    if not base or "\x00" in base:
        raise UnsafeDatabaseName("the base database name is empty or contains a NUL byte")
    try:
        size = _byte_length(base)
    except UnicodeEncodeError:  # an environment variable's undecodable bytes
        raise UnsafeDatabaseName("the base database name is not valid UTF-8 text") from None
    if size > MAX_IDENTIFIER_BYTES:
        raise UnsafeDatabaseName(
            f"base database name {base!r} is {size} bytes; PostgreSQL names "
            f"hold {MAX_IDENTIFIER_BYTES}: shorten it"
        )
    if allow_any_name:
        return
    if "test" in base.lower():
        _check_test_survives(base)
        return
    raise UnsafeDatabaseName(
        f"refusing base database name {base!r}: it does not contain 'test'; "
        "use a name like 'app_test', or pass --ci-kit-allow-any-name if you are sure"
    )


def _check_test_survives(base: str) -> None:
    """Every name derived from a long base is shortened to fit: ``test`` must stay in each.

    A name that lost it would be dropped and recreated by a kit that promised to
    touch only test databases. The longest suffixes a run gives are tried.
    """
    worker = worker_database_name(base, "gw99")
    derived = (
        worker,
        template_database_name(base, "0" * 12),
        fresh_database_name(worker, 9999),
        worker_database_name(run_base_name(base, "0" * 12), "gw99"),
    )
    for name in derived:
        if "test" not in name.lower():
            raise UnsafeDatabaseName(
                f"base database name {base!r} is too long: the kit shortens the names it "
                f"derives to {MAX_IDENTIFIER_BYTES} bytes and {name!r} would lose 'test'; "
                "shorten it, or put 'test' near its start"
            )


def advisory_lock_key(purpose: str) -> int:
    """A signed 64-bit key for ``pg_advisory_lock``, stable across processes and hosts."""
    digest = hashlib.sha256(purpose.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _byte_length(text: str) -> int:
    return len(text.encode())


def _truncate_bytes(text: str, limit: int) -> str:
    """At most ``limit`` bytes of ``text``, never splitting a UTF-8 character."""
    return text.encode()[:limit].decode(errors="ignore")
