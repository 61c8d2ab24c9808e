"""A database-level setting as ``ALTER DATABASE ... SET`` takes it back: pure, no I/O.

A clone does not copy its template's ``pg_db_role_setting`` rows, so the kit writes
them again on every clone, with the ``database-settings`` of ``[tool.ci-kit]``. The
server stores a value as text (``search_path=app, "My Schema"``), the form a person
writes in ``postgresql.conf``; given back as one quoted literal, a list setting such
as ``search_path`` would become a single schema named ``app, "My Schema"``. So list
settings are split into their elements, as the server itself splits them (and as
``pg_dump`` writes them back), and every other value goes back as one literal.
"""

from __future__ import annotations

from psycopg import sql

# The settings PostgreSQL flags GUC_LIST_QUOTE: lists of identifiers, each quoted on
# its own (pg_dump's variable_is_guc_list_quote knows the same few).
_LIST_OF_NAMES = frozenset(
    {
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    }
)


def split_entry(entry: str) -> tuple[str, str]:
    """``name=value``, as ``pg_db_role_setting.setconfig`` holds each setting."""
    name, _, value = entry.partition("=")
    return name, value


def value_sql(name: str, value: str) -> sql.Composable:
    """The right-hand side of ``SET name = ...`` that gives ``name`` the text ``value``."""
    if name.lower() not in _LIST_OF_NAMES:
        return sql.Literal(value)
    return sql.SQL(", ").join(sql.Literal(element) for element in split_names(value))


def split_names(value: str) -> list[str]:
    """A list of names as the server reads it: commas between, ``"quoted"`` kept as is.

    An unquoted name is folded to lower case and trimmed, a quoted one keeps its case
    and spaces with ``""`` standing for a quote. An empty text is one empty name: SET
    takes ``''`` for the empty list.
    """
    names: list[str] = []
    rest = value.strip()
    if not rest:
        return [""]
    while True:
        if rest.startswith('"'):
            name, rest = _quoted(rest)
        else:
            name, _, tail = rest.partition(",")
            name, rest = name.strip().lower(), ("," + tail if _ else "")
        names.append(name)
        rest = rest.strip()
        if not rest.startswith(","):
            return names
        rest = rest[1:].strip()


def _quoted(text: str) -> tuple[str, str]:
    """The quoted name at the start of ``text`` (after its opening quote), and what follows."""
    name: list[str] = []
    index = 1
    while index < len(text):
        if text[index] == '"':
            if text[index + 1 : index + 2] != '"':
                return "".join(name), text[index + 1 :]
            index += 1
        name.append(text[index])
        index += 1
    return "".join(name), ""  # an unclosed quote: the rest is the name, as the server reads it
