"""The template's conftest, as is: the app's own engine, real commits, rows deleted at the end."""

from collections.abc import Generator

import pytest
from app.core.db import engine, init_db
from app.main import app
from app.models import Item, User
from fastapi.testclient import TestClient
from sqlmodel import Session, delete


@pytest.fixture(scope="session", autouse=True)
def db() -> Generator[Session, None, None]:
    with Session(engine) as session:
        init_db(session)
        yield session
        session.exec(delete(Item))
        session.exec(delete(User))
        session.commit()


@pytest.fixture(scope="module")
def client() -> Generator[TestClient, None, None]:
    with TestClient(app) as c:
        yield c
