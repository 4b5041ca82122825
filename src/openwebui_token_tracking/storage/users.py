"""Reading Open WebUI's ``user`` table (never writing it)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import InvalidInputError, UnknownUserError
from .openwebui_tables import user_table


def find_users(session: Session, *, user_id: str | None = None, name: str | None = None,
               email: str | None = None) -> list[dict[str, Any]]:
    """Users matching every given criterion (exact match); at least one is required."""
    conditions = []
    if user_id is not None:
        conditions.append(user_table.c.id == user_id)
    if name is not None:
        conditions.append(user_table.c.name == name)
    if email is not None:
        conditions.append(user_table.c.email == email)
    if not conditions:
        raise InvalidInputError("give a user id, name or email to search for")
    rows = session.execute(
        sa.select(user_table.c.id, user_table.c.name, user_table.c.email)
        .where(*conditions).order_by(user_table.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def get_user(session: Session, user_id: str) -> dict[str, Any] | None:
    row = session.execute(
        sa.select(user_table.c.id, user_table.c.name, user_table.c.email)
        .where(user_table.c.id == user_id)
    ).mappings().first()
    return dict(row) if row else None


def require_user(session: Session, user_id: str) -> dict[str, Any]:
    user = get_user(session, user_id)
    if user is None:
        raise UnknownUserError(f"user {user_id!r} does not exist in Open WebUI's user table")
    return user
