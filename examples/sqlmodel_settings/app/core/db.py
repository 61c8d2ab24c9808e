"""The engine, built at import from the settings, and the first rows every deployment needs."""

from sqlmodel import Session, create_engine, select

from app.core.config import settings
from app.models import User

engine = create_engine(str(settings.SQLALCHEMY_DATABASE_URI))


def init_db(session: Session) -> User:
    """The first superuser, created once: tables themselves come from Alembic."""
    user = session.exec(select(User).where(User.email == settings.FIRST_SUPERUSER)).first()
    if user is None:
        user = User(email=settings.FIRST_SUPERUSER, full_name="Admin", is_superuser=True)
        session.add(user)
        session.commit()
        session.refresh(user)
    return user
