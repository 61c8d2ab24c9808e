from collections.abc import Iterator

import pytest
from app.db import get_session
from app.main import app
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture(autouse=True)
def _requests_use_db_session(request: pytest.FixtureRequest) -> Iterator[None]:
    """Requests made through ``client`` run on this test's ``db_session``.

    The client lives for the module; the session, and so the override, for one test.
    """
    if "client" not in request.fixturenames:
        yield
        return
    session = request.getfixturevalue("db_session")
    app.dependency_overrides[get_session] = lambda: session
    yield
    del app.dependency_overrides[get_session]
