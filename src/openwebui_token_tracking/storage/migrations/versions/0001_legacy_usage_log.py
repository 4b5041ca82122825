"""0.1.10 schema, step: usage log

Recreates the table 0.1.10 created under this revision id, so databases of 0.1.10 (stamped
with this id) and empty databases follow one path. Foreign keys 0.1.10 declared to
Open WebUI's `user` table are left out: they would block Open WebUI deleting a user.

Revision ID: 99fb3ad5e0e7
Revises: None
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "99fb3ad5e0e7"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("token_tracking",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_tracking_usage_log",
        sa.Column("log_date", sa.DateTime(timezone=True)),
        sa.Column("user_id", sa.String(255)),
        sa.Column("provider", sa.String(255)),
        sa.Column("model_id", sa.String(255)),
        sa.Column("prompt_tokens", sa.Integer()),
        sa.Column("response_tokens", sa.Integer()),
        if_not_exists=True,
    )


def downgrade() -> None:
    raise NotImplementedError("downgrading below the 0.1.10 schema is not supported")
