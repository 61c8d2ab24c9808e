"""Domain errors raised by the service layer.

Services never import FastAPI; the API layer maps these classes onto HTTP status
codes in one place (:func:`backend_sample.app.create_app`), so the same rules apply
whether a service is called from a route, a script or a test.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: a request that breaks a business rule (HTTP 422)."""

    status_code = 422

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    """The object does not exist *in this workspace* (HTTP 404, never 403)."""

    status_code = 404


class Conflict(DomainError):
    """The request clashes with existing state, e.g. a duplicate code (HTTP 409)."""

    status_code = 409


class Unauthorized(DomainError):
    """Missing, unknown or revoked credentials (HTTP 401)."""

    status_code = 401


class Forbidden(DomainError):
    """Valid request, but the caller may not do it (HTTP 403)."""

    status_code = 403


class ServiceUnavailable(DomainError):
    """A dependency (the database) is not available (HTTP 503)."""

    status_code = 503


class FxRateMissing(DomainError):
    """No exchange rate on or before the needed date (HTTP 422)."""

    def __init__(self, base: str, quote: str, on: Any) -> None:
        super().__init__(
            f"no exchange rate {base}->{quote} on or before {on}",
            details={"base": base, "quote": quote, "date": str(on)},
        )
        self.base = base
        self.quote = quote
        self.on = on


class ImportRejected(DomainError):
    """A statement file had bad rows; nothing was imported (HTTP 422)."""
