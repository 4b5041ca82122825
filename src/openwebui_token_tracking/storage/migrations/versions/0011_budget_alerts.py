"""Budget alerts: each counter remembers its limit; alert events and their outbox.

Revision ID: 0df71eeb15d9
Revises: 2ae36f77f658
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0df71eeb15d9"
down_revision: str | None = "2ae36f77f658"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = sa.DateTime(timezone=True)
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("token_tracking_budget_counter",
                  sa.Column("limit_micro", sa.BigInteger(), nullable=True))
    op.create_table(
        "token_tracking_alert_event",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("event_key", sa.String(36), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("limit_micro", sa.BigInteger(), nullable=False),
        sa.Column("spent_micro", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("sponsored_allowance_id", sa.Uuid(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_token_tracking_alert_event"),
        sa.UniqueConstraint("scope", "subject", "window_start", "threshold",
                            name="uq_tt_alert_event_crossing"),
    )
    op.create_index("ix_token_tracking_alert_event_created_at",
                    "token_tracking_alert_event", ["created_at"])
    op.create_index("ix_token_tracking_alert_event_user_id",
                    "token_tracking_alert_event", ["user_id"])
    op.create_index("ix_token_tracking_alert_event_sponsored_allowance_id",
                    "token_tracking_alert_event", ["sponsored_allowance_id"])
    op.create_table(
        "token_tracking_alert_delivery",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("event_id", Id, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claimed_until", UTCDateTime, nullable=True),
        sa.Column("claim_token", sa.String(36), nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_token_tracking_alert_delivery"),
        sa.ForeignKeyConstraint(["event_id"], ["token_tracking_alert_event.id"],
                                ondelete="CASCADE", name="fk_tt_alert_delivery_event"),
        sa.UniqueConstraint("event_id", "channel",
                            name="uq_token_tracking_alert_delivery_event_id_channel"),
    )
    op.create_index("ix_token_tracking_alert_delivery_due", "token_tracking_alert_delivery",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("token_tracking_alert_delivery")
    op.drop_table("token_tracking_alert_event")
    with op.batch_alter_table("token_tracking_budget_counter") as batch:
        batch.drop_column("limit_micro")
