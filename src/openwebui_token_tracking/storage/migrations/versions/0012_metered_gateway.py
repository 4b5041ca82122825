"""The metered gateway: API keys and entry points on the ledger, per-key budgets.

- usage log and reservations record the API key's non-secret id and the entry point
  (pipe, filter, gateway); reservations also the window of the key counter they hold
- refusal counts gain ``entry_point`` in their key (existing counts: ``unknown``)
- ``token_tracking_key_budget``: a per-window cap on one API key

Revision ID: 3ae9310c3fe9
Revises: 0df71eeb15d9
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3ae9310c3fe9"
down_revision: str | None = "0df71eeb15d9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSALS = "token_tracking_refusal_count"
REFUSAL_PK = "pk_token_tracking_refusal_count"


def upgrade() -> None:
    with op.batch_alter_table("token_tracking_usage_log") as batch:
        batch.add_column(sa.Column("api_key_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("entry_point", sa.String(16), nullable=True))
    op.create_index("ix_token_tracking_usage_log_key_time", "token_tracking_usage_log",
                    ["api_key_id", "created_at"],
                    sqlite_where=sa.text("api_key_id IS NOT NULL"),
                    postgresql_where=sa.text("api_key_id IS NOT NULL"))
    with op.batch_alter_table("token_tracking_reservation") as batch:
        batch.add_column(sa.Column("api_key_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("api_key_window", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("entry_point", sa.String(16), nullable=True))
    with op.batch_alter_table(REFUSALS, recreate="always") as batch:
        batch.add_column(sa.Column("entry_point", sa.String(16), server_default="unknown",
                                   nullable=False))
        batch.drop_constraint(REFUSAL_PK, type_="primary")
        batch.create_primary_key(REFUSAL_PK,
                                 ["day", "reason", "provider", "model_id", "entry_point"])
    op.create_table(
        "token_tracking_key_budget",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("limit_micro", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_token_tracking_key_budget"),
    )
    op.create_index("ix_token_tracking_key_budget_user_id", "token_tracking_key_budget",
                    ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_token_tracking_key_budget_user_id", "token_tracking_key_budget")
    op.drop_table("token_tracking_key_budget")
    # Counts of all entry points are summed back into the old key.
    op.execute(sa.text(
        "CREATE TABLE token_tracking_refusal_count_0012 AS "
        "SELECT day, reason, provider, model_id, SUM(count) AS count "
        f"FROM {REFUSALS} GROUP BY day, reason, provider, model_id"))
    op.drop_table(REFUSALS)
    op.create_table(
        REFUSALS,
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("count", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", "reason", "provider", "model_id", name=REFUSAL_PK),
    )
    op.execute(sa.text(
        f"INSERT INTO {REFUSALS} (day, reason, provider, model_id, count) "
        "SELECT day, reason, provider, model_id, count FROM token_tracking_refusal_count_0012"))
    op.drop_table("token_tracking_refusal_count_0012")
    with op.batch_alter_table("token_tracking_reservation") as batch:
        batch.drop_column("entry_point")
        batch.drop_column("api_key_window")
        batch.drop_column("api_key_id")
    op.drop_index("ix_token_tracking_usage_log_key_time", "token_tracking_usage_log")
    with op.batch_alter_table("token_tracking_usage_log") as batch:
        batch.drop_column("entry_point")
        batch.drop_column("api_key_id")
