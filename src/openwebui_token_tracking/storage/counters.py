"""Budget counters: what each limit has spent and reserved in its current window.

A counter row is a materialised sum of the ledger, kept in the same transaction as each
ledger write, so a check reads one row instead of scanning the usage log. A missing
window counter (first use in a window, changed window settings) is read from, or created
from, the ledger's sum over the window, which the indexes keep to the requesting user's
rows. A sponsored allowance's total counter covers its whole history, so it is created
with the allowance (and by ``init``/``database migrate`` for older ones, see
``storage.backfill``); a check or admission that finds it missing refuses with what to
run instead of summing that history (``MissingCounterError``), while a charge rebuilds
it, because a charge must never be lost.

Every function takes a ``Session`` in a transaction the caller owns.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..accounting.budget import TOTAL, Window, window_for
from ..accounting.money import MICRO, micro_to_credits
from ..errors import (
    ConfigurationError,
    DailyTokenLimitExceededError,
    GroupBudgetExceededError,
    SpendCapExceededError,
    TokenLimitExceededError,
    TotalTokenLimitExceededError,
)
from . import alerts
from .openwebui_groups import GroupTables, credit_group_members, group_tables
from .prepared import run
from .schema import BudgetCounter, TokenUsageLog
from .scopes import (
    API_KEY,
    GROUP_TOTAL,
    MODEL_CAP,
    PROVIDER_CAP,
    REFUSAL_REASONS,
    SPONSOR_TOTAL,
    SPONSOR_USER,
    USER,
)
from .settings_store import BudgetSettings, budget_settings_from
from .user_state import Counter, UserTerms, admission_terms, balance_terms, group_subject

counter = cast(sa.Table, BudgetCounter.__table__)
usage_log = cast(sa.Table, TokenUsageLog.__table__)


def rowcount(session: Session, stmt: sa.Executable,
             params: dict[str, object] | None = None) -> int:
    """Rows an UPDATE/DELETE matched."""
    return cast("sa.CursorResult[Any]", session.execute(stmt, params)).rowcount


class AllowanceLike(Protocol):
    """A sponsored allowance's identity and limits (ORM row or ``AllowanceLimits``)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def total_credit_limit(self) -> int: ...
    @property
    def daily_credit_limit(self) -> int | None: ...


@dataclass(frozen=True)
class CounterKey:
    scope: str
    subject: str
    window_start: int


@dataclass(frozen=True)
class Limit:
    """One limit that applies to a request, with the ledger rows it sums.

    Any limit with a cap (``limit_micro``) can be watched the same way, whatever its
    scope: its counter holds what is spent and reserved in ``window``.
    """

    key: CounterKey
    limit_micro: int | None
    window: Window
    error: type[TokenLimitExceededError]
    label: str = "credit limit"
    """What the limit is, for people (``spend cap on model 'o1'``)."""
    target: str | None = None
    """The capped model or provider, or the team budget's credit group name."""


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


def _group_members(kind: GroupTables, group_id: uuid.UUID) -> sa.Select[Any]:
    """User ids of a credit group: direct members and members through its link."""
    pairs = credit_group_members(kind)
    return sa.select(pairs.c.user_id).where(pairs.c.credit_group_id == group_id)


def _ledger_filter(key: CounterKey, window: Window,
                   kind: GroupTables = GroupTables.NONE) -> list[sa.ColumnElement[bool]]:
    c = usage_log.c
    own_window = [c.sponsored_allowance_id.is_(None), c.created_at >= window.start,
                  c.created_at < window.end]
    if key.scope == USER:
        return [c.user_id == key.subject, *own_window]
    if key.scope in (MODEL_CAP, PROVIDER_CAP):
        user_id, target = key.subject.split(":", 1)
        column = c.model_id if key.scope == MODEL_CAP else c.provider
        return [c.user_id == user_id, column == target, *own_window]
    if key.scope == GROUP_TOTAL:
        members = _group_members(kind, uuid.UUID(hex=key.subject))
        return [c.user_id.in_(members), *own_window]
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


def sponsor_limits(allowance: AllowanceLike, user_id: str, now: datetime,
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


class MissingCounterError(ConfigurationError):
    """A sponsored allowance's total counter is missing (see the module docstring)."""


def missing_total(key: CounterKey) -> MissingCounterError:
    return MissingCounterError(
        f"the spending total of sponsored allowance {key.subject} is not tracked (its "
        "budget counter is missing), so it cannot be checked; an admin must run "
        "`owui-token-tracking database migrate` to rebuild it")


def _filter(session: Session, key: CounterKey, window: Window) -> list[sa.ColumnElement[bool]]:
    kind = group_tables(session) if key.scope == GROUP_TOTAL else GroupTables.NONE
    return _ledger_filter(key, window, kind)


def ensure_counter(session: Session, key: CounterKey, window: Window,
                   limit_micro: int | None = None) -> bool:
    """Create the counter from the ledger's sum if it does not exist (race-safe).

    Returns False when it existed, or when a concurrent transaction created it first.
    """
    spent = (
        sa.select(sa.literal(key.scope), sa.literal(key.subject),
                  sa.literal(key.window_start, sa.BigInteger),
                  sa.func.coalesce(sa.func.sum(usage_log.c.charged_micro), 0),
                  sa.literal(0, sa.BigInteger), sa.literal(limit_micro, sa.BigInteger))
        .where(*_filter(session, key, window))
    )
    cols = ["scope", "subject", "window_start", "spent_micro", "reserved_micro", "limit_micro"]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (insert(counter).from_select(cols, spent).on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True))  # an INSERT's rowcount is not kept
    return rowcount(session, stmt) == 1


def read_counter(session: Session, key: CounterKey) -> tuple[int, int] | None:
    row = run(session, _READ_COUNTER, _key_params(key)).first()
    return None if row is None else (int(row[0]), int(row[1]))


def ledger_sum(session: Session, key: CounterKey, window: Window) -> int:
    return int(session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(usage_log.c.charged_micro), 0))
        .where(*_filter(session, key, window))
    ) or 0)


def balance_from(session: Session, limit: Limit, spent: int | None, reserved: int | None
             ) -> Balance:
    """A limit's state from its counter's values, or, when it has no counter yet in this
    window (``spent`` None), from the window's ledger rows."""
    if spent is None:
        if limit.key.scope == SPONSOR_TOTAL:
            raise missing_total(limit.key)
        return Balance(limit.limit_micro, ledger_sum(session, limit.key, limit.window), 0,
                       limit.window)
    return Balance(limit.limit_micro, int(spent), int(reserved or 0), limit.window)


def balance_of(session: Session, limit: Limit) -> Balance:
    """Read a limit's state: one counter row, or the window's ledger rows if none yet."""
    spent, reserved = read_counter(session, limit.key) or (None, None)
    return balance_from(session, limit, spent, reserved)


def _try_reserve(session: Session, limit: Limit, estimate: int, enforce: bool) -> bool:
    params = {**_key_params(limit.key), "amount": estimate, "cap": limit.limit_micro}
    if enforce and limit.limit_micro is not None and estimate > 0:
        return run(session, _RESERVE_WITHIN_LIMIT, params).rowcount == 1
    return run(session, _RESERVE, params).rowcount == 1


def reserve_one(session: Session, limit: Limit, estimate: int, enforce: bool) -> None:
    if _try_reserve(session, limit, estimate, enforce):
        return
    # No counter yet, or one another transaction created after the UPDATE began: create
    # it if missing and try once more, so a refusal is never for a counter not seen.
    if read_counter(session, limit.key) is None:
        if limit.key.scope == SPONSOR_TOTAL:
            raise missing_total(limit.key)
        ensure_counter(session, limit.key, limit.window, limit.limit_micro)
    if _try_reserve(session, limit, estimate, enforce):
        return
    state = balance_of(session, limit)
    remaining = state.remaining_micro or 0
    raise limit.error(
        f"{limit.label} reached: {micro_to_credits(max(remaining, 0)).normalize():f} credits "
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
    row = run(session, _APPLY_SPEND, {**_key_params(limit_key), "charged": charged,
                                      "released": released, "cap": cap}).first()
    if row is not None:
        spent, limit_micro, thresholds = row
    else:
        # The ledger row is already inserted in this transaction, so the sum includes it.
        resolved = window if isinstance(window, Window) else window()
        if ensure_counter(session, limit_key, resolved, cap):
            if at is None or cap is None or not charged:
                return
            spent, limit_micro = ledger_sum(session, limit_key, resolved), cap
            thresholds = session.scalar(sa.select(alerts.THRESHOLDS_SETTING))
        else:
            # A concurrent transaction created the row first from a sum that could not
            # see our uncommitted ledger row: add to its row now that it is visible.
            spent, limit_micro, thresholds = run(session, _APPLY_SPEND, {
                **_key_params(limit_key), "charged": charged, "released": released,
                "cap": cap}).one()
    if at is not None and charged > 0 and limit_micro is not None:
        alerts.note_spend(session, limit_key, window, before=int(spent) - charged,
                          after=int(spent), limit_micro=int(limit_micro),
                          thresholds_text=thresholds, at=at)


# -- admission ----------------------------------------------------------------------------


def _credits(whole: int) -> int:
    return whole * MICRO


def own_limits(terms: UserTerms, user_id: str, window: Window,
               settings: BudgetSettings) -> list[Limit]:
    """The user's own-allowance limits: the allowance, each team budget of their groups,
    and each spend cap in ``terms`` (all of them, or those of one request's model)."""
    limits = [Limit(CounterKey(USER, user_id, window.key),
                    settings.base_allowance_micro + _credits(terms.group_allowance), window,
                    DailyTokenLimitExceededError)]
    # Team budgets are the only counters several users share: always lock them in the
    # same order (by id), so two members' admissions can never deadlock on PostgreSQL.
    for g in sorted(terms.groups, key=lambda g: g.id):
        if g.total_credit_limit is not None:
            limits.append(Limit(CounterKey(GROUP_TOTAL, group_subject(g.id), window.key),
                                _credits(g.total_credit_limit), window,
                                GroupBudgetExceededError,
                                f"team budget of credit group {g.name!r}", g.name))
    for (scope, target), cap in terms.effective_caps().items():
        kind = "model" if scope == MODEL_CAP else "provider"
        limits.append(Limit(CounterKey(scope, f"{user_id}:{target}", window.key),
                            _credits(cap.credit_limit), window, SpendCapExceededError,
                            f"spend cap on {kind} {target!r}", target))
    return limits


def request_terms(session: Session, user_id: str, now: datetime,
                  settings: BudgetSettings | None, provider: str, model_id: str,
                  api_key_id: str | None = None
                  ) -> tuple[list[Limit], UserTerms, BudgetSettings]:
    """The user's own limits for one request, the terms they came from (for the rate
    limits and the key's cap) and the settings (read in the same round trip when not
    given)."""
    terms = admission_terms(session, user_id, provider, model_id, api_key_id)
    settings = settings or budget_settings_from(session, terms.settings)
    return own_request_limits(terms, user_id, now, settings), terms, settings


def own_request_limits(terms: UserTerms, user_id: str, now: datetime,
                       settings: BudgetSettings) -> list[Limit]:
    """``own_limits`` in the window of ``now``."""
    return own_limits(terms, user_id, window_for(now, settings.period, settings.timezone),
                      settings)


def own_balance(session: Session, user_id: str, now: datetime,
                settings: BudgetSettings | None = None
                ) -> tuple[list[tuple[Limit, Balance]], UserTerms, BudgetSettings]:
    """The user's own limits with their state, the terms (rate limits and counter) and
    the settings: everything in one round trip (when ``settings`` is not given)."""
    terms = balance_terms(session, user_id)
    settings = settings or budget_settings_from(session, terms.settings)
    window = window_for(now, settings.period, settings.timezone)
    limits = own_limits(terms, user_id, window, settings)
    counters: dict[tuple[str, str], Counter | None] = {(USER, user_id): terms.counter}
    for g in terms.groups:
        counters[(GROUP_TOTAL, group_subject(g.id))] = g.total_counter
    for cap in terms.caps:
        counters[(cap.scope, f"{user_id}:{cap.target}")] = cap.counter
    out = []
    for lim in limits:
        found = counters[(lim.key.scope, lim.key.subject)]
        values = found.values_in(window.key) if found else (None, None)
        out.append((lim, balance_from(session, lim, *values)))
    return out, terms, settings
