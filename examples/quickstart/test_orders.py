from decimal import Decimal

import pytest
from shop import Customer, Order, place_order, revenue
from sqlalchemy import func, select


@pytest.mark.parametrize("n", range(25))
def test_each_test_starts_empty_and_may_commit(db_session, n):
    assert db_session.scalar(select(func.count()).select_from(Order)) == 0
    place_order(db_session, f"customer{n}@example.com", Decimal("10.00") * (n + 1))
    assert revenue(db_session) == Decimal("10.00") * (n + 1)


def test_repeat_customers_are_found(db_session):
    place_order(db_session, "a@example.com", Decimal("1.50"))
    place_order(db_session, "a@example.com", Decimal("2.25"))
    assert db_session.scalar(select(func.count()).select_from(Customer)) == 1
    assert revenue(db_session) == Decimal("3.75")
