"""The models on the database Alembic built, through the app's own engine and settings."""

import pytest
from app.core.config import settings
from app.core.db import engine
from app.models import Item, User
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from tests.utils import create_random_item, create_random_user


def test_the_settings_and_the_engine_name_this_processs_test_database(db: Session) -> None:
    database = db.exec(select(func.current_database())).one()
    assert database == settings.POSTGRES_DB == engine.url.database
    assert database.startswith("app_test_") or "_test_gw" in database or "test" in database
    assert database != "app"  # the developer's database, from .env


def test_the_tables_are_alembics_at_head(db: Session) -> None:
    tables = set(inspect(engine).get_table_names())
    assert tables == {"alembic_version", "user", "item"}
    assert db.exec(select(text("version_num")).select_from(text("alembic_version"))).all() == [
        "1a31ce608336"
    ]


def test_autostring_columns_keep_their_length() -> None:
    columns = {column["name"]: column["type"] for column in inspect(engine).get_columns("item")}
    assert {name: getattr(columns[name], "length", None) for name in ("title", "description")} == {
        "title": 255,
        "description": 255,
    }


def test_an_email_is_unique(db: Session) -> None:
    user = create_random_user(db)
    db.add(User(email=user.email))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_an_item_needs_an_existing_owner(db: Session) -> None:
    import uuid

    db.add(Item(title="orphan", owner_id=uuid.uuid4()))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_deleting_a_user_deletes_their_items(db: Session) -> None:
    owner = create_random_user(db)
    ids = [create_random_item(db, owner).id for _ in range(2)]
    db.delete(owner)
    db.commit()
    db.expire_all()
    assert [db.get(Item, item_id) for item_id in ids] == [None, None]


def test_a_users_items_are_their_relationship(db: Session) -> None:
    owner = create_random_user(db)
    item = create_random_item(db, owner, description="mine")
    db.refresh(owner)
    assert [(i.id, i.description) for i in owner.items] == [(item.id, "mine")]
    assert item.owner == owner
