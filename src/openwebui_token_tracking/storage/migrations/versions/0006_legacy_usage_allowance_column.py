"""0.1.10 schema, step: usage log allowance column

Recreates the table 0.1.10 created under this revision id, so databases of 0.1.10 (stamped
with this id) and empty databases follow one path. Foreign keys 0.1.10 declared to
Open WebUI's `user` table are left out: they would block Open WebUI deleting a user.

Revision ID: a118dd7f6b7f
Revises: "10d29ec2fd0a"
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a118dd7f6b7f"
down_revision: str | None = "10d29ec2fd0a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("token_tracking_usage_log")}
    if "sponsored_allowance_id" not in columns:
        op.add_column("token_tracking_usage_log",
                      sa.Column("sponsored_allowance_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("downgrading below the 0.1.10 schema is not supported")
