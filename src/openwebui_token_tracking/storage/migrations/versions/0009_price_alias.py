"""Price rows resolved through genai-prices' model matching keep the matched model id.

A dated snapshot id (``gpt-4o-2024-08-06``) priced on first use as an alias of a
canonical model (``gpt-4o``) stores that model's id here; NULL for every other row.

Revision ID: 6e1fab09690d
Revises: 3c9d5e7f1a2b
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6e1fab09690d"
down_revision: str | None = "3c9d5e7f1a2b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("token_tracking_model_pricing") as batch:
        batch.add_column(sa.Column("matched_model_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("token_tracking_model_pricing") as batch:
        batch.drop_column("matched_model_id")
