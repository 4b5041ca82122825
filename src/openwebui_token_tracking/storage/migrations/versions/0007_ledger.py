"""The ledger: exact charges, price history, budget counters, reservations.

Rebuilds every 0.1.10 table into its new shape and keeps every row:

- usage log: surrogate id, UTC instant, all token kinds, the credits charged (computed
  now, once, from the price on record: 0.1.10 stored no charge), status, chat/message;
  0.1.10's naive ``log_date`` values are read as UTC
- model pricing: primary key (provider, id), cache rates; each price enters the history
  as in force since 1970, so old usage keeps its cost
- credit group members and sponsored models: duplicates dropped, no foreign key to
  Open WebUI's ``user`` table or to the price catalogue
- sponsored allowance: unique names (duplicates get a suffix), optional expiry

Revision ID: 7b2f0c1d9e4a
Revises: a118dd7f6b7f
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from fractions import Fraction

import sqlalchemy as sa
from alembic import op

revision: str = "7b2f0c1d9e4a"
down_revision: str | None = "a118dd7f6b7f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY = "__legacy"
UTCDateTime = sa.DateTime(timezone=True)
BATCH = 5000


def _rates() -> list[sa.Column]:
    return [
        sa.Column("input_cost_credits", sa.BigInteger(), nullable=False),
        sa.Column("per_input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_cost_credits", sa.BigInteger(), nullable=False),
        sa.Column("per_output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_cost_credits", sa.BigInteger(), nullable=True),
        sa.Column("per_cached_input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cache_write_cost_credits", sa.BigInteger(), nullable=True),
        sa.Column("per_cache_write_tokens", sa.BigInteger(), nullable=True),
    ]


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     primary_key=True, autoincrement=True)


def _rename_legacy() -> None:
    bind = op.get_bind()
    names = [
        "token_tracking_usage_log", "token_tracking_sponsored_allowance_base_models",
        "token_tracking_credit_group_user", "token_tracking_sponsored_allowance",
        "token_tracking_credit_group", "token_tracking_model_pricing",
    ]
    for name in names:
        for fk in sa.inspect(bind).get_foreign_keys(name):
            fk_name = fk.get("name")
            if fk_name and bind.dialect.name == "postgresql":
                op.drop_constraint(fk_name, name, type_="foreignkey")
    # SQLite cannot reflect this expression index, so drop it by name.
    op.execute("DROP INDEX IF EXISTS idx_token_tracking_credit_group_name_lower")
    for name in names:
        op.rename_table(name, name + LEGACY)


def _create_tables() -> None:
    op.create_table(
        "token_tracking_model_pricing",
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("source", sa.String(32), server_default="manual", nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=True),
        *_rates(),
        sa.PrimaryKeyConstraint("provider", "id", name="pk_token_tracking_model_pricing"),
    )
    op.create_table(
        "token_tracking_price_history",
        _id(),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("effective_from", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(32), server_default="manual", nullable=False),
        *_rates(),
        sa.PrimaryKeyConstraint("id", name="pk_token_tracking_price_history"),
        sa.UniqueConstraint(
            "provider", "model_id", "effective_from",
            name="uq_tt_price_history_model_from"),
    )
    op.create_table(
        "token_tracking_credit_group",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("max_credit", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_token_tracking_credit_group"),
    )
    op.create_index("idx_token_tracking_credit_group_name_lower", "token_tracking_credit_group",
                    [sa.text("lower(name)")], unique=True)
    op.create_table(
        "token_tracking_credit_group_user",
        sa.Column("credit_group_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_group_id"], ["token_tracking_credit_group.id"], ondelete="CASCADE",
            name="fk_tt_group_user_group"),
        sa.PrimaryKeyConstraint("credit_group_id", "user_id",
                                name="pk_token_tracking_credit_group_user"),
    )
    op.create_index("ix_token_tracking_credit_group_user_user_id",
                    "token_tracking_credit_group_user", ["user_id"])
    op.create_table(
        "token_tracking_sponsored_allowance",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("creation_date", UTCDateTime, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sponsor_id", sa.String(255), nullable=True),
        sa.Column("total_credit_limit", sa.BigInteger(), nullable=False),
        sa.Column("daily_credit_limit", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_token_tracking_sponsored_allowance"),
        sa.UniqueConstraint("name", name="uq_token_tracking_sponsored_allowance_name"),
    )
    op.create_table(
        "token_tracking_sponsored_allowance_base_models",
        sa.Column("sponsored_allowance_id", sa.Uuid(), nullable=False),
        sa.Column("base_model_id", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsored_allowance_id"], ["token_tracking_sponsored_allowance.id"],
            ondelete="CASCADE",
            name="fk_tt_sponsored_models_allowance"),
        sa.PrimaryKeyConstraint("sponsored_allowance_id", "base_model_id",
                                name="pk_token_tracking_sponsored_allowance_base_models"),
    )
    op.create_table(
        "token_tracking_usage_log",
        _id(),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("sponsored_allowance_id", sa.Uuid(), nullable=True),
        *[sa.Column(f"{kind}_tokens", sa.BigInteger(), server_default="0", nullable=False)
          for kind in ("input", "cached_input", "cache_write", "output", "reasoning")],
        sa.Column("charged_micro", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("status", sa.String(16), server_default="completed", nullable=False),
        sa.Column("chat_id", sa.String(255), nullable=True),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("task", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_token_tracking_usage_log"),
        sa.UniqueConstraint("chat_id", "message_id",
                            name="uq_token_tracking_usage_log_chat_id_message_id"),
    )
    op.create_index("ix_token_tracking_usage_log_user_time", "token_tracking_usage_log",
                    ["user_id", "created_at"])
    sponsored_only = sa.text("sponsored_allowance_id IS NOT NULL")
    op.create_index("ix_token_tracking_usage_log_allowance_user_time",
                    "token_tracking_usage_log",
                    ["sponsored_allowance_id", "user_id", "created_at"],
                    sqlite_where=sponsored_only, postgresql_where=sponsored_only)
    op.create_index("ix_token_tracking_usage_log_created_at", "token_tracking_usage_log",
                    ["created_at"])
    op.create_table(
        "token_tracking_budget_counter",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("spent_micro", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reserved_micro", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject", "window_start",
                                name="pk_token_tracking_budget_counter"),
    )
    op.create_table(
        "token_tracking_reservation",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("sponsored_allowance_id", sa.Uuid(), nullable=True),
        sa.Column("estimate_micro", sa.BigInteger(), nullable=False),
        sa.Column("estimate_input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("estimate_output_tokens", sa.BigInteger(), server_default="0",
                  nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("chat_id", sa.String(255), nullable=True),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("task", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_token_tracking_reservation"),
    )
    op.create_index("ix_token_tracking_reservation_expires_at", "token_tracking_reservation",
                    ["expires_at"])


def _as_utc(value: object) -> datetime:
    """0.1.10 wrote naive local ``datetime.now()``; read naive values as UTC."""
    if value is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _store(value: datetime, dialect: str) -> datetime:
    return value.replace(tzinfo=None) if dialect == "sqlite" else value


def _copy_prices(bind: sa.Connection, dialect: str) -> dict[tuple[str, str], tuple[int, ...]]:
    rows = bind.execute(sa.text(
        "SELECT provider, id, name, input_cost_credits, per_input_tokens, "
        "output_cost_credits, per_output_tokens FROM token_tracking_model_pricing" + LEGACY
    )).all()
    epoch = _store(datetime(1970, 1, 1, tzinfo=UTC), dialect)
    prices: dict[tuple[str, str], tuple[int, ...]] = {}
    for provider, model_id, name, ic, pi, oc, po in rows:
        rates = (int(ic or 0), int(pi or 1) or 1, int(oc or 0), int(po or 1) or 1)
        key = (provider or "", model_id)
        if key in prices:
            continue
        prices[key] = rates
        values = dict(zip(("input_cost_credits", "per_input_tokens", "output_cost_credits",
                           "per_output_tokens"), rates, strict=True))
        bind.execute(sa.table("token_tracking_model_pricing", *[sa.column(c) for c in (
            "provider", "id", "name", "source", *values)]).insert().values(
            provider=key[0], id=model_id, name=name, source="migrated", **values))
        bind.execute(sa.table("token_tracking_price_history", *[sa.column(c) for c in (
            "provider", "model_id", "effective_from", "source", *values)]).insert().values(
            provider=key[0], model_id=model_id, effective_from=epoch, source="migrated",
            **values))
    return prices


def _copy_usage(bind: sa.Connection, dialect: str,
                prices: dict[tuple[str, str], tuple[int, ...]]) -> None:
    by_id = {model_id: rates for (_, model_id), rates in prices.items()}
    target = sa.table("token_tracking_usage_log", *[sa.column(c) for c in (
        "created_at", "user_id", "provider", "model_id", "sponsored_allowance_id",
        "input_tokens", "output_tokens", "charged_micro", "status")])
    result = bind.execute(sa.text(
        "SELECT log_date, user_id, provider, model_id, sponsored_allowance_id, prompt_tokens, "
        "response_tokens FROM token_tracking_usage_log" + LEGACY
    ).execution_options(stream_results=True, yield_per=BATCH))
    while batch := result.fetchmany(BATCH):
        values = []
        for log_date, user_id, provider, model_id, allowance, prompt, response in batch:
            prompt, response = int(prompt or 0), int(response or 0)
            rates = prices.get((provider or "", model_id)) or by_id.get(model_id)
            micro, status = 0, "estimated"
            if rates:
                ic, pi, oc, po = rates
                exact = (Fraction(prompt * ic, pi) + Fraction(response * oc, po)) * 1_000_000
                micro = int(exact + Fraction(1, 2))  # half up, as storage rounds
                status = "completed"
            values.append({
                "created_at": _store(_as_utc(log_date), dialect), "user_id": user_id or "",
                "provider": provider or "", "model_id": model_id or "",
                "sponsored_allowance_id": allowance, "input_tokens": prompt,
                "output_tokens": response, "charged_micro": micro, "status": status,
            })
        bind.execute(target.insert(), values)
    result.close()


def _copy_rest(bind: sa.Connection) -> None:
    bind.execute(sa.text(
        "INSERT INTO token_tracking_credit_group (id, name, max_credit, description) "
        "SELECT id, name, COALESCE(max_credit, 0), description "
        "FROM token_tracking_credit_group" + LEGACY
    ))
    bind.execute(sa.text(
        "INSERT INTO token_tracking_credit_group_user (credit_group_id, user_id) "
        "SELECT DISTINCT l.credit_group_id, l.user_id FROM token_tracking_credit_group_user"
        + LEGACY + " l JOIN token_tracking_credit_group g ON g.id = l.credit_group_id "
        "WHERE l.user_id IS NOT NULL"
    ))
    rows = bind.execute(sa.text(
        "SELECT id, creation_date, name, sponsor_id, total_credit_limit, daily_credit_limit "
        "FROM token_tracking_sponsored_allowance" + LEGACY + " ORDER BY creation_date, id"
    )).all()
    seen: set[str] = set()
    target = sa.table("token_tracking_sponsored_allowance", *[sa.column(c) for c in (
        "id", "creation_date", "name", "sponsor_id", "total_credit_limit",
        "daily_credit_limit")])
    for aid, created, name, sponsor, total, daily in rows:
        name = name or str(aid)
        if name in seen:
            name = f"{name} ({str(aid)[:8]})"
        seen.add(name)
        bind.execute(target.insert().values(
            id=aid, creation_date=_store(_as_utc(created), bind.dialect.name), name=name,
            sponsor_id=sponsor, total_credit_limit=total or 0, daily_credit_limit=daily))
    bind.execute(sa.text(
        "INSERT INTO token_tracking_sponsored_allowance_base_models "
        "(sponsored_allowance_id, base_model_id) SELECT DISTINCT l.sponsored_allowance_id, "
        "l.base_model_id FROM token_tracking_sponsored_allowance_base_models" + LEGACY + " l "
        "JOIN token_tracking_sponsored_allowance a ON a.id = l.sponsored_allowance_id "
        "WHERE l.base_model_id IS NOT NULL"
    ))


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    _rename_legacy()
    _create_tables()
    prices = _copy_prices(bind, dialect)
    _copy_rest(bind)
    _copy_usage(bind, dialect, prices)
    for name in ("token_tracking_usage_log", "token_tracking_sponsored_allowance_base_models",
                 "token_tracking_credit_group_user", "token_tracking_sponsored_allowance",
                 "token_tracking_credit_group", "token_tracking_model_pricing"):
        op.drop_table(name + LEGACY)


def downgrade() -> None:
    raise NotImplementedError("downgrading to the 0.1.10 schema is not supported")
