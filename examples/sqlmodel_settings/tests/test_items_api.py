import uuid

import pytest
from app.models import Item
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.utils import create_random_item, create_random_user


def test_create_item_for_a_user(client: TestClient, db: Session) -> None:
    owner = create_random_user(db)
    data = {"title": "Foo", "description": "Fighters"}
    response = client.post(f"/users/{owner.id}/items/", json=data)
    assert response.status_code == 200, response.text
    content = response.json()
    assert (content["title"], content["description"]) == ("Foo", "Fighters")
    assert content["owner_id"] == str(owner.id)
    stored = db.get(Item, uuid.UUID(content["id"]))
    assert stored is not None
    assert stored.title == "Foo"


def test_an_item_for_an_unknown_user_is_404(client: TestClient) -> None:
    response = client.post(f"/users/{uuid.uuid4()}/items/", json={"title": "orphan"})
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}


@pytest.mark.parametrize(
    "payload", [{}, {"title": ""}, {"title": "x" * 256}], ids=["no-title", "empty", "too-long"]
)
def test_an_invalid_item_is_422(client: TestClient, db: Session, payload: dict[str, str]) -> None:
    owner = create_random_user(db)
    assert client.post(f"/users/{owner.id}/items/", json=payload).status_code == 422


def test_read_item(client: TestClient, db: Session) -> None:
    item = create_random_item(db, description="shelf")
    response = client.get(f"/items/{item.id}")
    assert response.status_code == 200
    assert response.json() == {
        "id": str(item.id),
        "title": item.title,
        "description": "shelf",
        "owner_id": str(item.owner_id),
    }


def test_an_unknown_item_is_404(client: TestClient) -> None:
    response = client.get(f"/items/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Item not found"}


def test_items_are_listed_by_owner_in_title_order(client: TestClient, db: Session) -> None:
    owner = create_random_user(db)
    for title in ("banana", "apple", "cherry"):
        create_random_item(db, owner).sqlmodel_update({"title": title})
    create_random_item(db)  # someone else's
    db.commit()
    response = client.get("/items/", params={"owner_id": str(owner.id)})
    assert response.status_code == 200
    content = response.json()
    assert content["count"] == 3
    assert [item["title"] for item in content["data"]] == ["apple", "banana", "cherry"]


def test_the_list_pages_with_skip_and_limit(client: TestClient, db: Session) -> None:
    owner = create_random_user(db)
    for _ in range(5):
        create_random_item(db, owner)
    params = {"owner_id": str(owner.id), "skip": 1, "limit": 2}
    content = client.get("/items/", params=params).json()
    assert (content["count"], len(content["data"])) == (5, 2)


def test_update_item_changes_only_what_is_sent(client: TestClient, db: Session) -> None:
    item = create_random_item(db, description="before")
    response = client.patch(f"/items/{item.id}", json={"title": "renamed"})
    assert response.status_code == 200
    assert (response.json()["title"], response.json()["description"]) == ("renamed", "before")
    db.refresh(item)
    assert item.title == "renamed"


def test_delete_item(client: TestClient, db: Session) -> None:
    item_id = create_random_item(db).id
    response = client.delete(f"/items/{item_id}")
    assert response.status_code == 200
    assert response.json() == {"message": "Item deleted successfully"}
    db.expire_all()
    assert db.get(Item, item_id) is None
    assert client.delete(f"/items/{item_id}").status_code == 404
