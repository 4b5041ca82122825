"""0.1.10 schema, step: sponsored allowances

Recreates the table 0.1.10 created under this revision id, so databases of 0.1.10 (stamped
with this id) and empty databases follow one path. Foreign keys 0.1.10 declared to
Open WebUI's `user` table are left out: they would block Open WebUI deleting a user.

Revision ID: 10d29ec2fd0a
Revises: "036cd1c4af2d"
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "10d29ec2fd0a"
down_revision: str | None = "036cd1c4af2d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_tracking_sponsored_allowance",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("creation_date", sa.DateTime(timezone=True),
                  server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("sponsor_id", sa.String(255)),
        sa.Column("total_credit_limit", sa.Integer(), nullable=False),
        sa.Column("daily_credit_limit", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="token_tracking_sponsored_allowance_pkey"),
        if_not_exists=True,
    )
    op.create_table(
        "token_tracking_sponsored_allowance_base_models",
        sa.Column("sponsored_allowance_id", sa.Uuid()),
        sa.Column("base_model_id", sa.String(255)),
        if_not_exists=True,
    )


def downgrade() -> None:
    raise NotImplementedError("downgrading below the 0.1.10 schema is not supported")
