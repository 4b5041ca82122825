"""Budget limits run from Open WebUI: group links, rate limits, spend caps, team budgets.

- credit group: the linked Open WebUI group, per-minute rate overrides and a total
  budget per window for all members together
- spend caps: credits per window on a model or provider (base, or per credit group)
- rate counters: one row per user with their requests and tokens in the current minute
- reservations: which extra counters they hold (caps, team budgets, rate tokens)

Revision ID: 2ae36f77f658
Revises: 6e1fab09690d
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2ae36f77f658"
down_revision: str | None = "6e1fab09690d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROUP = "token_tracking_credit_group"
RESERVATION = "token_tracking_reservation"


def upgrade() -> None:
    # Nullable columns (or with a default) need no table rebuild, on SQLite either.
    op.add_column(GROUP, sa.Column("openwebui_group_id", sa.String(255), nullable=True))
    op.add_column(GROUP, sa.Column("requests_per_minute", sa.BigInteger(), nullable=True))
    op.add_column(GROUP, sa.Column("tokens_per_minute", sa.BigInteger(), nullable=True))
    op.add_column(GROUP, sa.Column("total_credit_limit", sa.BigInteger(), nullable=True))
    op.add_column(RESERVATION, sa.Column("held_counters", sa.Text(), nullable=True))
    op.add_column(RESERVATION, sa.Column("rate_minute", sa.BigInteger(), nullable=True))
    op.add_column(RESERVATION, sa.Column("rate_tokens", sa.BigInteger(), server_default="0",
                                         nullable=False))
    op.create_table(
        "token_tracking_spend_cap",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("credit_group_id", sa.Uuid(), nullable=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("credit_limit", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["credit_group_id"], [f"{GROUP}.id"], ondelete="CASCADE",
                                name="fk_tt_spend_cap_group"),
        sa.PrimaryKeyConstraint("id", name="pk_token_tracking_spend_cap"),
        sa.UniqueConstraint("credit_group_id", "scope", "target",
                            name="uq_token_tracking_spend_cap_credit_group_id_scope_target"),
    )
    base_only = sa.text("credit_group_id IS NULL")
    op.create_index("uq_token_tracking_spend_cap_base", "token_tracking_spend_cap",
                    ["scope", "target"], unique=True, sqlite_where=base_only,
                    postgresql_where=base_only)
    op.create_table(
        "token_tracking_rate_counter",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("minute_start", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_token_tracking_rate_counter"),
    )


def downgrade() -> None:
    op.drop_table("token_tracking_rate_counter")
    op.drop_index("uq_token_tracking_spend_cap_base", table_name="token_tracking_spend_cap")
    op.drop_table("token_tracking_spend_cap")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would lose the credit group's
    # expression index, which SQLite cannot reflect.
    for table, columns in ((RESERVATION, ("rate_tokens", "rate_minute", "held_counters")),
                           (GROUP, ("total_credit_limit", "tokens_per_minute",
                                    "requests_per_minute", "openwebui_group_id"))):
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
