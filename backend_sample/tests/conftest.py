"""Shared fixtures for the backend_sample suite.

Database fixtures (``db_url``, ``db_engine``, ``db_connection``, ``db_session``)
come from the ci-kit pytest plugin; everything here is built on top of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.app import create_app
from backend_sample.config import Settings
from backend_sample.db import get_session
from backend_sample.tests.factories import Tenant, make_workspace

ADMIN_HEADER_VALUE = "test-admin-token"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--e2e-base-url",
        default=None,
        help="Base URL of a running backend_sample server for @pytest.mark.e2e tests "
        "(or set BACKEND_SAMPLE_E2E_URL); without it they are skipped.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: smoke test against a live server (--e2e-base-url); skipped otherwise"
    )


@pytest.fixture(scope="session")
def e2e_base_url(pytestconfig: pytest.Config) -> str:
    url = pytestconfig.getoption("--e2e-base-url") or os.environ.get("BACKEND_SAMPLE_E2E_URL")
    if not url:
        pytest.skip("no --e2e-base-url / BACKEND_SAMPLE_E2E_URL given")
    return str(url).rstrip("/")


@pytest.fixture(scope="session")
def app() -> FastAPI:
    """One app per test process; each test routes its requests to its own session."""
    return create_app(
        Settings(DATABASE_URL=None, ADMIN_TOKEN=ADMIN_HEADER_VALUE, APP_COMMIT="abc123")
    )


@pytest.fixture
def client(app: FastAPI, db_session: Session) -> Iterator[TestClient]:
    """TestClient whose requests use the test's (rolled-back) session."""

    def override() -> Iterator[Session]:
        yield db_session

    app.dependency_overrides[get_session] = override
    yield TestClient(app)
    app.dependency_overrides.clear()


@pytest.fixture
def tenant(db_session: Session) -> Tenant:
    """A workspace with the standard chart of accounts."""
    return make_workspace(db_session)


@pytest.fixture
def other_tenant(db_session: Session) -> Tenant:
    """A second, unrelated workspace for isolation tests."""
    return make_workspace(db_session, name="Other Co")


@pytest.fixture
def api(client: TestClient, tenant: Tenant) -> TestClient:
    """Client authenticated as ``tenant``."""
    client.headers["X-API-Key"] = tenant.key
    return client
