"""Users and their items: create, list, read, update and delete, on the module's engine."""

import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from sqlmodel import Session, col, func, select

from app.core.config import settings
from app.core.db import engine
from app.models import (
    Item,
    ItemCreate,
    ItemPublic,
    ItemsPublic,
    ItemUpdate,
    User,
    UserCreate,
    UserPublic,
)

app = FastAPI(title=settings.PROJECT_NAME)


def get_db() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


@app.post("/users/", response_model=UserPublic)
def create_user(session: SessionDep, user_in: UserCreate) -> Any:
    taken = session.exec(select(User).where(User.email == user_in.email)).first()
    if taken is not None:
        raise HTTPException(400, detail="The user with this email already exists in the system.")
    user = User.model_validate(user_in)
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


@app.get("/users/{user_id}", response_model=UserPublic)
def read_user(session: SessionDep, user_id: uuid.UUID) -> Any:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(404, detail="User not found")
    return user


@app.post("/users/{user_id}/items/", response_model=ItemPublic)
def create_item(session: SessionDep, user_id: uuid.UUID, item_in: ItemCreate) -> Any:
    if session.get(User, user_id) is None:
        raise HTTPException(404, detail="User not found")
    item = Item.model_validate(item_in, update={"owner_id": user_id})
    session.add(item)
    session.commit()
    session.refresh(item)
    return item


@app.get("/items/", response_model=ItemsPublic)
def read_items(
    session: SessionDep, owner_id: uuid.UUID | None = None, skip: int = 0, limit: int = 100
) -> Any:
    count = select(func.count()).select_from(Item)
    items = select(Item).order_by(col(Item.title)).offset(skip).limit(limit)
    if owner_id is not None:
        count = count.where(Item.owner_id == owner_id)
        items = items.where(Item.owner_id == owner_id)
    data = [ItemPublic.model_validate(item) for item in session.exec(items)]
    return ItemsPublic(data=data, count=session.exec(count).one())


@app.get("/items/{item_id}", response_model=ItemPublic)
def read_item(session: SessionDep, item_id: uuid.UUID) -> Any:
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(404, detail="Item not found")
    return item


@app.patch("/items/{item_id}", response_model=ItemPublic)
def update_item(session: SessionDep, item_id: uuid.UUID, item_in: ItemUpdate) -> Any:
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(404, detail="Item not found")
    item.sqlmodel_update(item_in.model_dump(exclude_unset=True))
    session.add(item)
    session.commit()
    session.refresh(item)
    return item


@app.delete("/items/{item_id}")
def delete_item(session: SessionDep, item_id: uuid.UUID) -> dict[str, str]:
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(404, detail="Item not found")
    session.delete(item)
    session.commit()
    return {"message": "Item deleted successfully"}
