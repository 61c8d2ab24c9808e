"""Rows the tests need, each unique: data is committed and outlives a test, as in the template."""

import random
import string

from app.models import Item, User
from sqlmodel import Session


def random_lower_string() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=32))  # noqa: S311 - test data


def random_email() -> str:
    return f"{random_lower_string()}@{random_lower_string()}.com"


def create_random_user(db: Session) -> User:
    user = User(email=random_email(), full_name=random_lower_string())
    db.add(user)
    db.commit()
    db.refresh(user)
    return user


def create_random_item(db: Session, owner: User | None = None, **fields: str) -> Item:
    owner = owner or create_random_user(db)
    item = Item(title=random_lower_string(), owner_id=owner.id, **fields)
    db.add(item)
    db.commit()
    db.refresh(item)
    return item
