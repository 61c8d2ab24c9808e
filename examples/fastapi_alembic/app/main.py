"""The notes service: create, list and read notes with their tags."""

import logging
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.db import get_session
from app.models import Note, Tag

logger = logging.getLogger(__name__)

app = FastAPI(title="notes")

SessionDep = Annotated[Session, Depends(get_session)]


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = ""
    tags: list[str] = []


class NoteOut(BaseModel):
    id: int
    title: str
    body: str
    created_at: datetime
    tags: list[str]


def _out(note: Note) -> NoteOut:
    return NoteOut(
        id=note.id,
        title=note.title,
        body=note.body,
        created_at=note.created_at,
        tags=[tag.name for tag in note.tags],
    )


@app.post("/notes", status_code=status.HTTP_201_CREATED)
def create_note(payload: NoteIn, session: SessionDep) -> NoteOut:
    note = Note(title=payload.title, body=payload.body)
    note.tags = [Tag(name=name) for name in sorted(set(payload.tags))]
    session.add(note)
    session.commit()
    session.refresh(note)
    logger.info("note %s created", note.id)
    return _out(note)


@app.get("/notes")
def list_notes(session: SessionDep, tag: str | None = None) -> list[NoteOut]:
    query = select(Note).options(selectinload(Note.tags)).order_by(Note.id)
    if tag is not None:
        query = query.where(Note.tags.any(Tag.name == tag))
    return [_out(note) for note in session.scalars(query)]


@app.get("/notes/{note_id}")
def get_note(note_id: int, session: SessionDep) -> NoteOut:
    note = session.get(Note, note_id)
    if note is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="note not found")
    return _out(note)
