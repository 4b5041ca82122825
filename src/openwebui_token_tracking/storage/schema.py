"""Our tables inside Open WebUI's database, all prefixed ``token_tracking_``.

Open WebUI's own tables (``user``, ``group``, ``group_member``) are never created or
altered here; see ``openwebui_tables``. No foreign key points at Open WebUI's tables, so
nothing here can stop Open WebUI from deleting a user.

Money columns are integer micro-credits (``*_micro``), except the credit limits and
price columns inherited from 0.1.10, which stay whole credits.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, synonym

from .types import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""Autoincrementing surrogate key (SQLite only autoincrements INTEGER PRIMARY KEY)."""


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class _Rates:
    """The price columns shared by the current price and the price history."""

    input_cost_credits: Mapped[int] = mapped_column(sa.BigInteger)
    """Credits charged per ``per_input_tokens`` fresh input tokens."""
    per_input_tokens: Mapped[int] = mapped_column(sa.BigInteger)
    output_cost_credits: Mapped[int] = mapped_column(sa.BigInteger)
    """Credits per ``per_output_tokens`` output tokens (reasoning tokens included)."""
    per_output_tokens: Mapped[int] = mapped_column(sa.BigInteger)
    cached_input_cost_credits: Mapped[int | None] = mapped_column(sa.BigInteger)
    """Credits per ``per_cached_input_tokens`` cache-read tokens; NULL: the input rate."""
    per_cached_input_tokens: Mapped[int | None] = mapped_column(sa.BigInteger)
    cache_write_cost_credits: Mapped[int | None] = mapped_column(sa.BigInteger)
    """Credits per ``per_cache_write_tokens`` cache-write tokens; NULL: the input rate."""
    per_cache_write_tokens: Mapped[int | None] = mapped_column(sa.BigInteger)


class ModelPricing(_Rates, Base):
    """A priced model and its current price (0.1.10's table, extended)."""

    __tablename__ = "token_tracking_model_pricing"

    provider: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    source: Mapped[str] = mapped_column(sa.String(32), server_default="manual")
    """Where the current price came from: ``manual`` (an admin) or ``genai-prices``."""
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    matched_model_id: Mapped[str | None] = mapped_column(sa.String(255))
    """For a row priced through genai-prices' model matching (a dated snapshot id like
    ``gpt-4o-2024-08-06``): the model it matched (``gpt-4o``). NULL otherwise."""


class PriceHistory(_Rates, Base):
    """Every price a model has had; the one in force at a request's instant is charged."""

    __tablename__ = "token_tracking_price_history"
    __table_args__ = (
        sa.UniqueConstraint("provider", "model_id", "effective_from",
                            name="uq_tt_price_history_model_from"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(sa.String(255))
    model_id: Mapped[str] = mapped_column(sa.String(255))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(sa.String(32), server_default="manual")


class BaseSetting(Base):
    """Global settings as text key/value pairs (0.1.10's table)."""

    __tablename__ = "token_tracking_base_settings"

    setting_key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    setting_value: Mapped[str | None] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.String(255))


class CreditGroup(Base):
    """A group whose ``max_credit`` adds to each member's allowance per window."""

    __tablename__ = "token_tracking_credit_group"
    __table_args__ = (
        sa.Index(
            "idx_token_tracking_credit_group_name_lower", sa.func.lower(sa.text("name")),
            unique=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(255))
    max_credit: Mapped[int] = mapped_column(sa.BigInteger)
    description: Mapped[str | None] = mapped_column(sa.String(255))
    openwebui_group_id: Mapped[str | None] = mapped_column(sa.String(255))
    """Open WebUI group (its ``group.id``) whose members are members too, read at
    admission; a deleted Open WebUI group grants nothing."""
    requests_per_minute: Mapped[int | None] = mapped_column(sa.BigInteger)
    """Members' rate limit, overriding the default (NULL: no override)."""
    tokens_per_minute: Mapped[int | None] = mapped_column(sa.BigInteger)
    """Members' token rate limit, overriding the default (NULL: no override)."""
    total_credit_limit: Mapped[int | None] = mapped_column(sa.BigInteger)
    """Credits per window of all members together (a team budget); NULL: none."""

    users: Mapped[list[CreditGroupUser]] = relationship(
        back_populates="credit_group", cascade="all, delete-orphan", passive_deletes=True
    )


class CreditGroupUser(Base):
    """Membership; ``user_id`` is Open WebUI's user id (no foreign key, by design)."""

    __tablename__ = "token_tracking_credit_group_user"

    credit_group_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid,
        sa.ForeignKey("token_tracking_credit_group.id", ondelete="CASCADE",
                      name="fk_tt_group_user_group"),
        primary_key=True,
    )
    user_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)

    credit_group: Mapped[CreditGroup] = relationship(back_populates="users")


class SpendCap(Base):
    """At most ``credit_limit`` credits per window on a model or provider, per user.

    ``credit_group_id`` NULL is the base cap, which applies to everyone; a group's cap
    replaces it for the group's members (see ``accounting.limits``).
    """

    __tablename__ = "token_tracking_spend_cap"
    __table_args__ = (
        sa.UniqueConstraint("credit_group_id", "scope", "target"),
        sa.Index("uq_token_tracking_spend_cap_base", "scope", "target", unique=True,
                 sqlite_where=sa.text("credit_group_id IS NULL"),
                 postgresql_where=sa.text("credit_group_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    credit_group_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.Uuid, sa.ForeignKey("token_tracking_credit_group.id", ondelete="CASCADE",
                               name="fk_tt_spend_cap_group"))
    scope: Mapped[str] = mapped_column(sa.String(16))
    """``model_cap`` (``target`` is a model id, under any provider) or ``provider_cap``."""
    target: Mapped[str] = mapped_column(sa.String(255))
    credit_limit: Mapped[int] = mapped_column(sa.BigInteger)
    """Whole credits per budget window."""


class SponsoredAllowance(Base):
    """Credits a sponsor pays for chosen models: a total limit, optional per-user limit."""

    __tablename__ = "token_tracking_sponsored_allowance"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    creation_date: Mapped[datetime] = mapped_column(UTCDateTime)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    sponsor_id: Mapped[str | None] = mapped_column(sa.String(255))
    total_credit_limit: Mapped[int] = mapped_column(sa.BigInteger)
    """Credits over all users since creation."""
    daily_credit_limit: Mapped[int | None] = mapped_column(sa.BigInteger)
    """Credits per user per budget window (named daily as in 0.1.10); NULL: none."""
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    base_models: Mapped[list[SponsoredAllowanceBaseModels]] = relationship(
        back_populates="sponsored_allowance",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SponsoredAllowanceBaseModels.base_model_id",
    )


class SponsoredAllowanceBaseModels(Base):
    """A model id an allowance covers."""

    __tablename__ = "token_tracking_sponsored_allowance_base_models"

    sponsored_allowance_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid,
        sa.ForeignKey("token_tracking_sponsored_allowance.id", ondelete="CASCADE",
                      name="fk_tt_sponsored_models_allowance"),
        primary_key=True,
    )
    base_model_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)

    sponsored_allowance: Mapped[SponsoredAllowance] = relationship(back_populates="base_models")


class TokenUsageLog(Base):
    """The ledger: one row per charged request, immutable once written.

    ``charged_micro`` is computed once, at write time, with the price in force at
    ``created_at``; a later price change never rewrites it. ``sponsored_allowance_id``
    has no foreign key so deleting an allowance keeps its history.
    """

    __tablename__ = "token_tracking_usage_log"
    __table_args__ = (
        sa.UniqueConstraint("chat_id", "message_id"),
        sa.Index("ix_token_tracking_usage_log_user_time", "user_id", "created_at"),
        sa.Index(
            "ix_token_tracking_usage_log_allowance_user_time",
            "sponsored_allowance_id", "user_id", "created_at",
            sqlite_where=sa.text("sponsored_allowance_id IS NOT NULL"),
            postgresql_where=sa.text("sponsored_allowance_id IS NOT NULL"),
        ),
        sa.Index("ix_token_tracking_usage_log_created_at", "created_at"),
        sa.Index("ix_token_tracking_usage_log_key_time", "api_key_id", "created_at",
                 sqlite_where=sa.text("api_key_id IS NOT NULL"),
                 postgresql_where=sa.text("api_key_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """UTC instant the request started (its window and its price are taken from it)."""
    user_id: Mapped[str] = mapped_column(sa.String(255))
    provider: Mapped[str] = mapped_column(sa.String(255))
    model_id: Mapped[str] = mapped_column(sa.String(255))
    sponsored_allowance_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    input_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    cached_input_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    cache_write_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    output_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    reasoning_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    charged_micro: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    """Credits charged, in micro-credits (1e-6 credit), rounded once, half up."""
    status: Mapped[str] = mapped_column(sa.String(16), server_default="completed")
    """completed / stopped / error / estimated (token counts are a local estimate)."""
    chat_id: Mapped[str | None] = mapped_column(sa.String(255))
    message_id: Mapped[str | None] = mapped_column(sa.String(255))
    task: Mapped[str | None] = mapped_column(sa.String(64))
    """Open WebUI background task (title, tags, ...) or NULL for a chat answer."""
    api_key_id: Mapped[str | None] = mapped_column(sa.String(32))
    """Non-secret id of the API key the request came with (``keys.key_id``), else NULL."""
    entry_point: Mapped[str | None] = mapped_column(sa.String(16))
    """Where the request was metered: pipe, filter, gateway; NULL before 0.2 / unknown."""

    log_date = synonym("created_at")
    """0.1.10's name for ``created_at``."""


class BudgetCounter(Base):
    """Spent and reserved micro-credits of one limit scope in one window.

    A materialised sum of the ledger kept in the same transaction as each ledger write,
    so admission reads one row instead of scanning the log. ``scope`` is ``user``,
    ``sponsor_user``, ``sponsor_total``, ``model_cap``, ``provider_cap`` or
    ``group_total`` (see ``storage.counters``); ``window_start`` is Unix seconds (0 for a
    sponsored total). A missing row is initialised from the ledger on first use.
    """

    __tablename__ = "token_tracking_budget_counter"

    scope: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    window_start: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    spent_micro: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    reserved_micro: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    limit_micro: Mapped[int | None] = mapped_column(sa.BigInteger)
    """The limit in force at the last admission (or unreserved charge); settling compares
    spend against it to detect alert thresholds without reading the limit again."""


class RateCounter(Base):
    """A user's requests and tokens in their current one-minute rate window.

    One row per user, rolled over to the new minute by the admission that first finds
    it stale, so the table never grows with time. ``tokens`` holds the estimates of
    requests in flight and the actual tokens of settled ones.
    """

    __tablename__ = "token_tracking_rate_counter"

    user_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    minute_start: Mapped[int] = mapped_column(sa.BigInteger)
    """Start of the counted minute, Unix seconds."""
    requests: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class Reservation(Base):
    """Credits held for a request in flight; settled to the real charge or released.

    A reservation whose ``expires_at`` passed (its process died) is settled at its
    estimate by the next admission, so spent provider money is never lost.
    """

    __tablename__ = "token_tracking_reservation"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(255))
    provider: Mapped[str] = mapped_column(sa.String(255))
    model_id: Mapped[str] = mapped_column(sa.String(255))
    sponsored_allowance_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    estimate_micro: Mapped[int] = mapped_column(sa.BigInteger)
    estimate_input_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    estimate_output_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    window_start: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    chat_id: Mapped[str | None] = mapped_column(sa.String(255))
    message_id: Mapped[str | None] = mapped_column(sa.String(255))
    task: Mapped[str | None] = mapped_column(sa.String(64))
    api_key_id: Mapped[str | None] = mapped_column(sa.String(32))
    api_key_window: Mapped[int | None] = mapped_column(sa.BigInteger)
    """Window start of the API key's budget counter this reservation holds, NULL: none."""
    entry_point: Mapped[str | None] = mapped_column(sa.String(16))
    held_counters: Mapped[str | None] = mapped_column(sa.Text)
    """Counters held besides the user's (or allowance's): space-separated ``model_cap``,
    ``provider_cap`` and ``group_total:<group id hex>``; NULL: none."""
    rate_minute: Mapped[int | None] = mapped_column(sa.BigInteger)
    """The minute whose rate counter holds ``rate_tokens``; NULL: no rate limit held."""
    rate_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class RefusalCount(Base):
    """Requests refused before they reached a provider, per UTC day, reason and model.

    Written by admission in its own short transaction (the refused one rolls back), so
    ``/metrics`` can report refusals by reason.
    """

    __tablename__ = "token_tracking_refusal_count"

    day: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    """UTC midnight of the day, as Unix seconds."""
    reason: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    model_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    entry_point: Mapped[str] = mapped_column(sa.String(16), primary_key=True,
                                             server_default="unknown")
    """pipe, filter or gateway (``unknown`` for counts made before it was recorded)."""
    count: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class AlertEvent(Base):
    """A budget threshold crossed: once per scope, subject, window and threshold.

    ``payload`` is the JSON body every delivery sends, built once when the crossing is
    written (same transaction as the charge), so retries send identical bytes.
    ``event_key`` is the receivers' idempotency key. ``user_id`` and
    ``sponsored_allowance_id`` say who may see it besides admins.
    """

    __tablename__ = "token_tracking_alert_event"
    __table_args__ = (
        sa.UniqueConstraint("scope", "subject", "window_start", "threshold",
                            name="uq_tt_alert_event_crossing"),
        sa.Index("ix_token_tracking_alert_event_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(sa.String(36))
    scope: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str] = mapped_column(sa.String(300))
    window_start: Mapped[int] = mapped_column(sa.BigInteger)
    threshold: Mapped[int] = mapped_column(sa.Integer)
    """Percent of the limit."""
    limit_micro: Mapped[int] = mapped_column(sa.BigInteger)
    spent_micro: Mapped[int] = mapped_column(sa.BigInteger)
    """The limit's spend right after the charge that crossed the threshold."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    sponsored_allowance_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, index=True)
    payload: Mapped[str] = mapped_column(sa.Text)


class AlertDelivery(Base):
    """The outbox: one row per event and channel (``webhook``, ``email``), written with
    the event, claimed by one deliverer at a time (``claimed_until``), retried with
    backoff until ``delivered`` or ``failed`` (attempts exhausted)."""

    __tablename__ = "token_tracking_alert_delivery"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "channel"),
        sa.Index("ix_token_tracking_alert_delivery_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        Id, sa.ForeignKey("token_tracking_alert_event.id", ondelete="CASCADE",
                          name="fk_tt_alert_delivery_event"))
    channel: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), server_default="pending")
    """pending / delivered / failed."""
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(sa.String(36))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(255))


class KeyBudget(Base):
    """A cap on what one API key may spend per budget window, below its owner's allowance.

    ``key_id`` is the key's non-secret id (a hash prefix); the key itself is never stored.
    """

    __tablename__ = "token_tracking_key_budget"

    key_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    """The key's owner (Open WebUI user id)."""
    limit_micro: Mapped[int] = mapped_column(sa.BigInteger)
    """Micro-credits the key may spend per window (own and sponsored spend alike)."""
    set_by: Mapped[str] = mapped_column(sa.String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
