"""0.1.10 schema, step: model pricing

Recreates the table 0.1.10 created under this revision id, so databases of 0.1.10 (stamped
with this id) and empty databases follow one path. Foreign keys 0.1.10 declared to
Open WebUI's `user` table are left out: they would block Open WebUI deleting a user.

Revision ID: 6099739cae0b
Revises: "99fb3ad5e0e7"
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6099739cae0b"
down_revision: str | None = "99fb3ad5e0e7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_tracking_model_pricing",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(255)),
        sa.Column("name", sa.String(255)),
        sa.Column("input_cost_credits", sa.Integer()),
        sa.Column("per_input_tokens", sa.Integer()),
        sa.Column("output_cost_credits", sa.Integer()),
        sa.Column("per_output_tokens", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name="token_tracking_model_pricing_pkey"),
        if_not_exists=True,
    )


def downgrade() -> None:
    raise NotImplementedError("downgrading below the 0.1.10 schema is not supported")
