import logging

import pytest


def create(client, title="groceries", **fields):
    response = client.post("/notes", json={"title": title, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_the_note_with_its_tags_sorted_and_unique(client):
    note = create(client, body="milk, eggs", tags=["shop", "home", "shop"])
    assert note["title"] == "groceries"
    assert note["body"] == "milk, eggs"
    assert note["tags"] == ["home", "shop"]
    assert note["created_at"]


def test_a_note_is_read_back_by_id(client):
    created = create(client, tags=["todo"])
    response = client.get(f"/notes/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_an_unknown_note_is_404(client):
    response = client.get("/notes/999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "note not found"}


def test_notes_are_listed_in_creation_order_and_filtered_by_tag(client):
    first = create(client, "first", tags=["work"])
    second = create(client, "second", tags=["home"])
    third = create(client, "third", tags=["work", "urgent"])
    assert [n["id"] for n in client.get("/notes").json()] == [
        first["id"],
        second["id"],
        third["id"],
    ]
    assert [n["title"] for n in client.get("/notes", params={"tag": "work"}).json()] == [
        "first",
        "third",
    ]


def test_an_empty_title_is_refused(client):
    response = client.post("/notes", json={"title": ""})
    assert response.status_code == 422


@pytest.mark.parametrize("n", range(3))
def test_each_test_sees_only_its_own_notes_though_the_client_is_shared(client, n):
    assert client.get("/notes").json() == []
    create(client, f"note {n}")
    assert len(client.get("/notes").json()) == 1


def test_creating_a_note_is_logged(client, caplog):
    with caplog.at_level(logging.INFO, logger="app"):
        note = create(client)
    assert f"note {note['id']} created" in caplog.messages
