"""Budget counters: what each limit has spent and reserved in its current window.

A counter row is a materialised sum of the ledger, kept in the same transaction as each
ledger write, so a check reads one row instead of scanning the usage log. A missing row
(first use in a window, a migrated 0.1.10 log, changed window settings) is created from
the ledger's sum over the window, which the indexes keep to the requesting user's rows.

Every function takes a ``Session`` in a transaction the caller owns.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..accounting.budget import TOTAL, Window, window_for
from ..accounting.money import MICRO, micro_to_credits
from ..errors import (
    DailyTokenLimitExceededError,
    TokenLimitExceededError,
    TotalTokenLimitExceededError,
)
from . import alerts
from .groups import GROUP_ALLOWANCE, group_allowance
from .schema import BudgetCounter, SponsoredAllowance, TokenUsageLog
from .settings_store import BudgetSettings, budget_settings

USER, SPONSOR_USER, SPONSOR_TOTAL = "user", "sponsor_user", "sponsor_total"
API_KEY = "api_key"
"""A capped API key's spend per window (see ``storage.key_budgets``)."""
REFUSAL_REASONS = {USER: "user_limit", SPONSOR_USER: "sponsored_user_limit",
                   SPONSOR_TOTAL: "sponsored_total_limit", API_KEY: "api_key_limit"}

counter = cast(sa.Table, BudgetCounter.__table__)
usage_log = cast(sa.Table, TokenUsageLog.__table__)


def rowcount(session: Session, stmt: sa.Executable,
             params: dict[str, object] | None = None) -> int:
    """Rows an UPDATE/DELETE matched."""
    return cast("sa.CursorResult[Any]", session.execute(stmt, params)).rowcount


@dataclass(frozen=True)
class CounterKey:
    scope: str
    subject: str
    window_start: int


@dataclass(frozen=True)
class Limit:
    """One limit that applies to a request, with the ledger rows it sums."""

    key: CounterKey
    limit_micro: int | None
    window: Window
    error: type[TokenLimitExceededError]


@dataclass(frozen=True)
class Balance:
    """A limit's state; amounts in micro-credits."""

    limit_micro: int | None
    spent_micro: int
    reserved_micro: int
    window: Window

    @property
    def remaining_micro(self) -> int | None:
        if self.limit_micro is None:
            return None
        return self.limit_micro - self.spent_micro - self.reserved_micro


def _ledger_filter(key: CounterKey, window: Window) -> list[sa.ColumnElement[bool]]:
    c = usage_log.c
    if key.scope == USER:
        return [c.user_id == key.subject, c.sponsored_allowance_id.is_(None),
                c.created_at >= window.start, c.created_at < window.end]
    if key.scope == API_KEY:
        return [c.api_key_id.is_not(None), c.api_key_id == key.subject,
                c.created_at >= window.start, c.created_at < window.end]
    if key.scope == SPONSOR_USER:
        allowance_id, user_id = key.subject.split(":", 1)
        return [c.sponsored_allowance_id.is_not(None),
                c.sponsored_allowance_id == uuid.UUID(allowance_id), c.user_id == user_id,
                c.created_at >= window.start, c.created_at < window.end]
    # The IS NOT NULL term lets the planner use the partial index on sponsored rows.
    return [c.sponsored_allowance_id.is_not(None),
            c.sponsored_allowance_id == uuid.UUID(key.subject)]


def user_limit(session: Session, user_id: str, now: datetime,
               settings: BudgetSettings) -> Limit:
    window = window_for(now, settings.period, settings.timezone)
    limit = settings.base_allowance_micro + group_allowance(session, user_id) * MICRO
    return Limit(CounterKey(USER, user_id, window.key), limit, window,
                 DailyTokenLimitExceededError)


def sponsor_limits(allowance: SponsoredAllowance, user_id: str, now: datetime,
                   settings: BudgetSettings) -> list[Limit]:
    """The allowance's total limit and, if set, its per-user limit per window."""
    limits = [Limit(CounterKey(SPONSOR_TOTAL, str(allowance.id), 0),
                    allowance.total_credit_limit * MICRO, TOTAL,
                    TotalTokenLimitExceededError)]
    if allowance.daily_credit_limit is not None:
        window = window_for(now, settings.period, settings.timezone)
        limits.append(Limit(CounterKey(SPONSOR_USER, f"{allowance.id}:{user_id}", window.key),
                            allowance.daily_credit_limit * MICRO, window,
                            DailyTokenLimitExceededError))
    return limits


# Statements of the hot path are built once; executions only bind values.
_KEY = sa.and_(counter.c.scope == sa.bindparam("k_scope"),
               counter.c.subject == sa.bindparam("k_subject"),
               counter.c.window_start == sa.bindparam("k_window"))
_READ_COUNTER = sa.select(counter.c.spent_micro, counter.c.reserved_micro).where(_KEY)
_CAP = sa.bindparam("cap", type_=sa.BigInteger)
_RESERVE = sa.update(counter).where(_KEY).values(
    reserved_micro=counter.c.reserved_micro + sa.bindparam("amount", type_=sa.BigInteger),
    limit_micro=_CAP)
_RESERVE_WITHIN_LIMIT = _RESERVE.where(
    counter.c.spent_micro + counter.c.reserved_micro
    + sa.bindparam("amount", type_=sa.BigInteger) <= _CAP)
_APPLY_SPEND = sa.update(counter).where(_KEY).values(
    spent_micro=counter.c.spent_micro + sa.bindparam("charged", type_=sa.BigInteger),
    reserved_micro=counter.c.reserved_micro - sa.bindparam("released", type_=sa.BigInteger),
    limit_micro=sa.func.coalesce(_CAP, counter.c.limit_micro),
).returning(counter.c.spent_micro, counter.c.limit_micro, alerts.THRESHOLDS_SETTING)
"""Also returns what alert detection needs (``alerts.note_spend``), in the same trip."""


def _key_params(key: CounterKey) -> dict[str, object]:
    return {"k_scope": key.scope, "k_subject": key.subject, "k_window": key.window_start}


def ensure_counter(session: Session, key: CounterKey, window: Window,
                   limit_micro: int | None = None) -> None:
    """Create the counter from the ledger's sum if it does not exist (race-safe)."""
    spent = (
        sa.select(sa.literal(key.scope), sa.literal(key.subject),
                  sa.literal(key.window_start, sa.BigInteger),
                  sa.func.coalesce(sa.func.sum(usage_log.c.charged_micro), 0),
                  sa.literal(0, sa.BigInteger), sa.literal(limit_micro, sa.BigInteger))
        .where(*_ledger_filter(key, window))
    )
    cols = ["scope", "subject", "window_start", "spent_micro", "reserved_micro", "limit_micro"]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(counter).from_select(cols, spent).on_conflict_do_nothing()
    session.execute(stmt)


def read_counter(session: Session, key: CounterKey) -> tuple[int, int] | None:
    row = session.execute(_READ_COUNTER, _key_params(key)).first()
    return None if row is None else (int(row[0]), int(row[1]))


def ledger_sum(session: Session, key: CounterKey, window: Window) -> int:
    return int(session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(usage_log.c.charged_micro), 0))
        .where(*_ledger_filter(key, window))
    ) or 0)


def _balance(session: Session, limit: Limit, spent: int | None, reserved: int | None
             ) -> Balance:
    """A limit's state from its counter's values, or, when it has no counter yet in this
    window (``spent`` None), from the window's ledger rows."""
    if spent is None:
        return Balance(limit.limit_micro, ledger_sum(session, limit.key, limit.window), 0,
                       limit.window)
    return Balance(limit.limit_micro, int(spent), int(reserved or 0), limit.window)


def balance_of(session: Session, limit: Limit) -> Balance:
    """Read a limit's state: one counter row, or the window's ledger rows if none yet."""
    spent, reserved = read_counter(session, limit.key) or (None, None)
    return _balance(session, limit, spent, reserved)


def _try_reserve(session: Session, limit: Limit, estimate: int, enforce: bool) -> bool:
    params = {**_key_params(limit.key), "amount": estimate, "cap": limit.limit_micro}
    if enforce and limit.limit_micro is not None and estimate > 0:
        return rowcount(session, _RESERVE_WITHIN_LIMIT, params) == 1
    return rowcount(session, _RESERVE, params) == 1


def reserve_one(session: Session, limit: Limit, estimate: int, enforce: bool) -> None:
    if _try_reserve(session, limit, estimate, enforce):
        return
    if read_counter(session, limit.key) is None:
        ensure_counter(session, limit.key, limit.window, limit.limit_micro)
    # Retry even when the counter exists now: a concurrent first request of the window
    # may have created it between the UPDATE above and the read.
    if _try_reserve(session, limit, estimate, enforce):
        return
    state = balance_of(session, limit)
    remaining = state.remaining_micro or 0
    raise limit.error(
        f"credit limit reached: {micro_to_credits(max(remaining, 0)).normalize():f} credits "
        f"left of {micro_to_credits(limit.limit_micro or 0).normalize():f}, "
        f"this request needs about {micro_to_credits(estimate).normalize():f}",
        remaining=micro_to_credits(remaining), limit=micro_to_credits(limit.limit_micro or 0),
        reset_at=limit.window.end if limit.key.scope != SPONSOR_TOTAL else None,
        reason=REFUSAL_REASONS[limit.key.scope],
    )


def apply_spend(session: Session, limit_key: CounterKey,
                window: Window | Callable[[], Window], charged: int, released: int, *,
                at: datetime | None = None, cap: int | None = None) -> None:
    """Add ``charged`` to spent and take ``released`` off reserved, creating if missing.

    A charge at instant ``at`` that crosses an alert threshold of the counter's limit
    (``cap`` if given, else the one stored at admission) records the alert
    (``alerts.note_spend``) in this transaction.
    """
    row = session.execute(_APPLY_SPEND, {**_key_params(limit_key), "charged": charged,
                                         "released": released, "cap": cap}).first()
    if row is not None:
        spent, limit_micro, thresholds = row
    else:
        # The ledger row is already inserted in this transaction, so the sum includes it.
        resolved = window if isinstance(window, Window) else window()
        ensure_counter(session, limit_key, resolved, cap)
        if at is None or cap is None or not charged:
            return
        spent, limit_micro = ledger_sum(session, limit_key, resolved), cap
        thresholds = session.scalar(sa.select(alerts.THRESHOLDS_SETTING))
    if at is not None and charged > 0 and limit_micro is not None:
        alerts.note_spend(session, limit_key, window, before=int(spent) - charged,
                          after=int(spent), limit_micro=int(limit_micro),
                          thresholds_text=thresholds, at=at)


# -- admission ----------------------------------------------------------------------------


def limits_for(session: Session, user_id: str, allowance: SponsoredAllowance | None,
               now: datetime, settings: BudgetSettings) -> list[Limit]:
    if allowance is None:
        return [user_limit(session, user_id, now, settings)]
    return sponsor_limits(allowance, user_id, now, settings)


def user_balance(session: Session, user_id: str, now: datetime,
                 allowance: SponsoredAllowance | None = None,
                 settings: BudgetSettings | None = None) -> list[tuple[Limit, Balance]]:
    """Each limit that applies to the user (and allowance) with its current state."""
    settings = settings or budget_settings(session)
    if allowance is None:
        return [_own_balance(session, user_id, now, settings)]
    limits = limits_for(session, user_id, allowance, now, settings)
    return list(zip(limits, balances_of(session, limits), strict=True))


def _key_where(n: int) -> sa.ColumnElement[bool]:
    return sa.and_(counter.c.scope == sa.bindparam(f"k{n}_scope"),
                   counter.c.subject == sa.bindparam(f"k{n}_subject"),
                   counter.c.window_start == sa.bindparam(f"k{n}_window"))


_PAIR_STATE = sa.select(*[
    sa.select(col).where(_key_where(n)).scalar_subquery()
    for n in (1, 2) for col in (counter.c.spent_micro, counter.c.reserved_micro)
])
"""Two counters (a sponsored total and its per-user limit) in one round trip."""


def balances_of(session: Session, limits: list[Limit]) -> list[Balance]:
    """The state of one or two limits, their counters read in one round trip."""
    if len(limits) != 2:
        return [balance_of(session, lim) for lim in limits]
    params = {f"k{n}_{part}": value for n, lim in enumerate(limits, 1) for part, value in
              (("scope", lim.key.scope), ("subject", lim.key.subject),
               ("window", lim.key.window_start))}
    values = session.execute(_PAIR_STATE, params).one()
    return [_balance(session, lim, spent, reserved)
            for lim, spent, reserved in zip(limits, values[0::2], values[1::2], strict=True)]


_OWN_STATE = sa.select(
    GROUP_ALLOWANCE.scalar_subquery(),
    sa.select(counter.c.spent_micro).where(_KEY).scalar_subquery(),
    sa.select(counter.c.reserved_micro).where(_KEY).scalar_subquery(),
)
"""The user's group allowances and window counter in one round trip."""


def _own_balance(session: Session, user_id: str, now: datetime,
                 settings: BudgetSettings) -> tuple[Limit, Balance]:
    window = window_for(now, settings.period, settings.timezone)
    key = CounterKey(USER, user_id, window.key)
    groups_sum, spent, reserved = session.execute(
        _OWN_STATE, {"user_id": user_id, **_key_params(key)}).one()
    limit = Limit(key, settings.base_allowance_micro + int(groups_sum or 0) * MICRO, window,
                  DailyTokenLimitExceededError)
    return limit, _balance(session, limit, spent, reserved)
