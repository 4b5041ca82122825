"""0.1.10's user lookup in Open WebUI's ``user`` table (read only)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .accountant import transaction
from .storage import groups
from .storage.openwebui_tables import User


def find_user(database_url: str | None = None, user_id: str | None = None,
              name: str | None = None, email: str | None = None) -> User | None:
    """The first user matching every given criterion, or None (None also if none given)."""
    conditions = [c for c in (
        User.id == user_id if user_id is not None else None,
        User.name == name if name is not None else None,
        User.email == email if email is not None else None,
    ) if c is not None]
    if not conditions:
        return None
    with transaction(database_url) as s:
        user = s.scalars(sa.select(User).where(*conditions).order_by(User.id)).first()
        if user is not None:
            s.expunge(user)
        return user


def serialize_user(user: User, database_url: str | None = None) -> dict[str, Any]:
    """0.1.10's dict of a user with their credit groups."""
    with transaction(database_url) as s:
        member_of = groups.groups_of(s, user.id)
        return {
            "id": user.id, "name": user.name, "email": user.email,
            "credit_groups": [
                {"id": str(g.id), "name": g.name, "max_credit": g.max_credit,
                 "description": g.description} for g in member_of
            ],
        }
