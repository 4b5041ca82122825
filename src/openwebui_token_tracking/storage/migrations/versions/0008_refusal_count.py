"""Count refused requests per UTC day, reason and model (for /metrics).

Revision ID: 3c9d5e7f1a2b
Revises: 7b2f0c1d9e4a
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c9d5e7f1a2b"
down_revision: str | None = "7b2f0c1d9e4a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_tracking_refusal_count",
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("count", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", "reason", "provider", "model_id",
                                name="pk_token_tracking_refusal_count"),
    )


def downgrade() -> None:
    op.drop_table("token_tracking_refusal_count")
