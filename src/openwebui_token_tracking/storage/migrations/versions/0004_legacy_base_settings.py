"""0.1.10 schema, step: base settings

Recreates the table 0.1.10 created under this revision id, so databases of 0.1.10 (stamped
with this id) and empty databases follow one path. Foreign keys 0.1.10 declared to
Open WebUI's `user` table are left out: they would block Open WebUI deleting a user.

Revision ID: 036cd1c4af2d
Revises: "c46ceb8649c3"
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "036cd1c4af2d"
down_revision: str | None = "c46ceb8649c3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_tracking_base_settings",
        sa.Column("setting_key", sa.String(255), nullable=False),
        sa.Column("setting_value", sa.String(255)),
        sa.Column("description", sa.String(255)),
        sa.PrimaryKeyConstraint("setting_key", name="token_tracking_base_settings_pkey"),
        if_not_exists=True,
    )


def downgrade() -> None:
    raise NotImplementedError("downgrading below the 0.1.10 schema is not supported")
