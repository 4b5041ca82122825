"""0.1.10 schema, step: credit groups

Recreates the table 0.1.10 created under this revision id, so databases of 0.1.10 (stamped
with this id) and empty databases follow one path. Foreign keys 0.1.10 declared to
Open WebUI's `user` table are left out: they would block Open WebUI deleting a user.

Revision ID: c46ceb8649c3
Revises: "6099739cae0b"
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c46ceb8649c3"
down_revision: str | None = "6099739cae0b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_tracking_credit_group",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("max_credit", sa.Integer()),
        sa.Column("description", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="token_tracking_credit_group_pkey"),
        if_not_exists=True,
    )
    op.create_table(
        "token_tracking_credit_group_user",
        sa.Column("credit_group_id", sa.Uuid()),
        sa.Column("user_id", sa.String(255)),
        if_not_exists=True,
    )


def downgrade() -> None:
    raise NotImplementedError("downgrading below the 0.1.10 schema is not supported")
