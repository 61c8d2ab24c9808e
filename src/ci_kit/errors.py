"""The failures a user can fix, one exception type each.

Every message says what happened and what to do about it, on one line, with any
password already masked: the pytest plugin prints ``str(error)`` as it is.
"""

from __future__ import annotations


class CiKitError(Exception):
    """Base of every error the kit reports to a person as one line."""


class InvalidDatabaseUrl(CiKitError):
    """The URL is not a PostgreSQL URL, or lacks a part the kit needs."""


class DatabaseMissing(InvalidDatabaseUrl):
    """The database a connection names does not exist: never created, or dropped since."""


class UnsafeDatabaseName(CiKitError):
    """A database name the kit refuses to create or drop."""


class ServerUnreachable(CiKitError):
    """Nothing answered at the configured host and port or socket."""


class ConnectionRefused(CiKitError):
    """The server answered but would not take the connection (SSL, a limit, a setting)."""


class AuthenticationFailed(CiKitError):
    """The server rejected the role or its password."""


class PermissionDenied(CiKitError):
    """The role lacks a privilege the kit needs (usually CREATEDB)."""


class ForeignDatabase(CiKitError):
    """A database the kit would use already exists and was not created by the kit."""


class DatabaseInUse(CiKitError):
    """Another session holds a database the kit must clone from or drop."""


class RunLockLost(CiKitError):
    """The server ended the run's lock session: its databases are no longer protected."""


class DiskFull(CiKitError):
    """The server ran out of disk space creating or copying a database."""


class ReadOnlyServer(CiKitError):
    """The server takes no writes: a standby, or a read-only default for the role."""


class UnencodableName(CiKitError):
    """A database name the server (or the client encoding) cannot represent."""


class ServerRefused(CiKitError):
    """The server failed one of the kit's statements for a reason no other type names."""


class SchemaSourceError(CiKitError):
    """The configured schema source does not import or does not describe a schema."""


class MigrationFailed(CiKitError):
    """Building the template (migrations or ``create_all``) raised an error."""


class SchemaNotInTemplate(CiKitError):
    """The build finished but the template lacks the schema: it was built elsewhere."""


class SeedSourceError(CiKitError):
    """The configured seed does not import or is not a function, or a seed file is missing."""


class SeedFailed(MigrationFailed):
    """The seed function raised while loading the template's reference data."""


class PostgresNotFound(CiKitError):
    """No PostgreSQL server binaries were found for the embedded server."""


class EmbeddedServerFailed(CiKitError):
    """The embedded PostgreSQL server could not be initialised or started."""


class ConfigurationError(CiKitError):
    """A ``[tool.ci-kit]`` value, environment variable or option is invalid."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while the kit prepared a run; the message says what was undone.

    Still a KeyboardInterrupt, so whatever unwinds on one unwinds on it.
    """


def first_line(error: BaseException) -> str:
    """The first line of an exception's message: drivers tend to add hints below it."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
