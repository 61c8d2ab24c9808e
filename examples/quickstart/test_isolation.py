from decimal import Decimal

import pytest
from shop import place_order, revenue
from sqlalchemy import text


@pytest.mark.parametrize("n", range(10))
def test_worker_has_its_own_database(db_url, db_connection, n):
    name = db_connection.scalar(text("SELECT current_database()"))
    assert name == db_url.database
    assert name.startswith("quickstart_test")


@pytest.mark.db_isolation("truncate")
def test_truncate_mode_commits_for_real(db_engine, db_session):
    place_order(db_session, "real@example.com", Decimal("5.00"))
    with db_engine.connect() as other_connection:
        assert other_connection.scalar(text("SELECT count(*) FROM orders")) == 1


@pytest.mark.db_isolation("fresh")
def test_fresh_mode_gets_a_clone_of_its_own(db_url, db_session):
    assert revenue(db_session) == Decimal(0)
    name = db_session.scalar(text("SELECT current_database()"))
    assert name != db_url.database
