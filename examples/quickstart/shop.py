"""A tiny shop: just enough schema for the quickstart suite."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    customer: Mapped[Customer] = relationship(back_populates="orders")


def place_order(session: Session, email: str, total: Decimal) -> Order:
    """Find or create the customer, record the order, and commit."""
    customer = session.scalar(select(Customer).where(Customer.email == email))
    if customer is None:
        customer = Customer(email=email)
        session.add(customer)
    order = Order(customer=customer, total=total)
    session.add(order)
    session.commit()
    return order


def revenue(session: Session) -> Decimal:
    return session.scalar(select(func.coalesce(func.sum(Order.total), 0))) or Decimal(0)
