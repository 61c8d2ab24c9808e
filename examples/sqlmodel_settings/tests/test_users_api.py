import uuid

import pytest
from app.core.config import settings
from app.models import User
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests.utils import create_random_user, random_email


def test_create_user_returns_it_and_stores_it(client: TestClient, db: Session) -> None:
    email = random_email()
    response = client.post("/users/", json={"email": email, "full_name": "Ada"})
    assert response.status_code == 200, response.text
    created = response.json()
    assert (created["email"], created["full_name"], created["is_superuser"]) == (
        email,
        "Ada",
        False,
    )
    stored = db.exec(select(User).where(User.email == email)).one()
    assert str(stored.id) == created["id"]


def test_an_existing_email_is_refused(client: TestClient, db: Session) -> None:
    user = create_random_user(db)
    response = client.post("/users/", json={"email": user.email})
    assert response.status_code == 400
    assert response.json() == {"detail": "The user with this email already exists in the system."}


@pytest.mark.parametrize(
    "payload",
    [{}, {"full_name": "no email"}, {"email": "x" * 256}],
    ids=["empty", "no-email", "too-long"],
)
def test_an_invalid_user_is_422(client: TestClient, payload: dict[str, str]) -> None:
    assert client.post("/users/", json=payload).status_code == 422


def test_a_user_is_read_back_by_id(client: TestClient, db: Session) -> None:
    user = create_random_user(db)
    response = client.get(f"/users/{user.id}")
    assert response.status_code == 200
    assert response.json() == {
        "id": str(user.id),
        "email": user.email,
        "full_name": user.full_name,
        "is_superuser": False,
    }


def test_an_unknown_user_is_404(client: TestClient) -> None:
    response = client.get(f"/users/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}


def test_the_first_superuser_exists_once(client: TestClient, db: Session) -> None:
    superusers = db.exec(select(User).where(User.email == settings.FIRST_SUPERUSER)).all()
    assert [user.is_superuser for user in superusers] == [True]
    response = client.get(f"/users/{superusers[0].id}")
    assert response.json()["is_superuser"] is True
