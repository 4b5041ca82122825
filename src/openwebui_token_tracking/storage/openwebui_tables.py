"""Open WebUI's own tables that we read, never create or alter.

They live in a separate ``MetaData`` so our migrations and ``alembic check`` never
touch them. Tests create a stand-in ``user`` table from here.
"""

from __future__ import annotations

import sqlalchemy as sa

openwebui_metadata = sa.MetaData()

user_table = sa.Table(
    "user",
    openwebui_metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255)),
    sa.Column("email", sa.String(255)),
    sa.Column("role", sa.String(255)),
)
