"""Open WebUI's own tables that we read, never create or alter.

They live in a separate ``MetaData`` so our migrations and ``alembic check`` never
touch them. Tests create a stand-in ``user`` table from here.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped

openwebui_metadata = sa.MetaData()

user_table = sa.Table(
    "user",
    openwebui_metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255)),
    sa.Column("email", sa.String(255)),
    sa.Column("role", sa.String(255)),
    sa.Column("timezone", sa.String(255)),
)


class _OpenWebUIBase(DeclarativeBase):
    metadata = openwebui_metadata


class User(_OpenWebUIBase):
    """Read-only ORM view of Open WebUI's ``user`` table (0.1.10's ``db.User``)."""

    __table__ = user_table

    id: Mapped[str]
    name: Mapped[str | None]
    email: Mapped[str | None]
    role: Mapped[str | None]
