"""Open WebUI's own tables that we read, never create or alter.

They live in a separate ``MetaData`` so our migrations and ``alembic check`` never
touch them. Tests create stand-ins from here. The columns are those of Open WebUI 0.12
(``open_webui/models/groups.py``) that we read; ``group`` and ``group_member`` may be
missing in older Open WebUI databases (see ``storage.openwebui_groups``).
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

group_table = sa.Table(
    "group",
    openwebui_metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("parent_group_id", sa.Text,
              sa.ForeignKey("group.id", name="fk_group_parent", ondelete="SET NULL")),
    sa.Column("created_at", sa.BigInteger),
    sa.Column("updated_at", sa.BigInteger),
)
"""Open WebUI's groups; since 0.12 a group may have a parent, whose grants its members
inherit."""

group_member_table = sa.Table(
    "group_member",
    openwebui_metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("group_id", sa.Text, sa.ForeignKey("group.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger),
    sa.Column("updated_at", sa.BigInteger),
    sa.UniqueConstraint("group_id", "user_id", name="uq_group_member_group_user"),
    sa.Index("ix_group_member_user_id_group_id", "user_id", "group_id"),
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
