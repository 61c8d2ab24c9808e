"""The app's own engine and sessions, and sessions a test builds itself."""

import pytest
from app.db import SessionLocal, engine
from app.models import Note, Tag
from app.settings import get_settings
from sqlalchemy import func, make_url, select, text
from sqlalchemy.orm import Session


def test_the_apps_module_level_engine_is_on_the_kits_database(db_url):
    assert engine.url.database.startswith("notes_test")
    assert engine.url.database == db_url.database
    assert make_url(get_settings().DATABASE_URL).database == db_url.database
    with SessionLocal() as session:
        assert session.scalar(text("SELECT current_database()")) == db_url.database


@pytest.fixture
def identities_restart_afterwards(db_engine):
    """Checks, after the test, that the kit's TRUNCATE ... RESTART IDENTITY happened.

    Requested before ``db_connection``, so it is torn down after it.
    """
    yield
    with db_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Note)) == 0
        sequence = connection.execute(text("SELECT last_value, is_called FROM notes_id_seq"))
        assert tuple(sequence.one()) == (1, False)  # the next id is 1


@pytest.mark.db_isolation("truncate")
def test_commits_through_the_apps_own_sessions_are_real_and_then_truncated(
    identities_restart_afterwards, db_connection
):
    with SessionLocal() as session:
        session.add_all([Note(title="one"), Note(title="two")])
        session.commit()
        ids = session.scalars(select(Note.id).order_by(Note.id)).all()
    assert ids[1] == ids[0] + 1
    with SessionLocal() as other:
        assert other.scalars(select(Note.title).order_by(Note.id)).all() == ["one", "two"]


def test_a_session_of_our_own_on_db_connection(db_connection):
    session = Session(bind=db_connection, join_transaction_mode="create_savepoint", autoflush=False)
    note = Note(title="draft", tags=[Tag(name="b"), Tag(name="a")])
    session.add(note)
    # autoflush=False: the pending note is not written before a query.
    assert session.scalar(select(func.count()).select_from(Note)) == 0
    session.commit()  # releases a SAVEPOINT; the test's transaction is rolled back at its end
    assert session.scalar(select(func.count()).select_from(Note)) == 1
    assert [tag.name for tag in session.get(Note, note.id).tags] == ["a", "b"]
    session.close()
