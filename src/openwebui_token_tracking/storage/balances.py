"""Reads of the hot path, in one round trip whatever the size of the ledger.

A user's own balance is one statement (``counters.own_balance``: settings, groups, caps
and counters). A sponsored balance is one statement too: the allowance, the settings, its
total counter and the user's per-user counter of the current window, or, when the user
has none in this window, the sum of the user's rows of the window (never the
allowance's whole history). The window needs the settings the statement itself reads, so
it is taken from the settings this database had at the last read; when they have changed
since (rare), the per-user state costs one more trip.
"""

from __future__ import annotations

import uuid
import weakref
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..accounting.budget import Window, window_for
from ..errors import NotFoundError
from . import counters
from .counters import Balance, Limit
from .prepared import run
from .schema import BudgetCounter, SponsoredAllowance, TokenUsageLog
from .scopes import SPONSOR_TOTAL, SPONSOR_USER
from .settings_store import BudgetSettings, budget_settings_from
from .sponsors import AllowanceLimits, parse_allowance_id
from .user_state import parse_settings, settings_json

_allowances = cast(sa.Table, SponsoredAllowance.__table__)
_counter = cast(sa.Table, BudgetCounter.__table__)
_usage = cast(sa.Table, TokenUsageLog.__table__)


def _allowance_subject(dialect: str) -> sa.ColumnElement[str]:
    """``str(allowance.id)`` in SQL, the subject of its counters (SQLite stores a UUID as
    32 hex digits; PostgreSQL prints its own with dashes)."""
    if dialect == "postgresql":
        return sa.cast(_allowances.c.id, sa.String)
    h = sa.func.lower(sa.cast(_allowances.c.id, sa.String))
    parts = [sa.func.substr(h, start, length)
             for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
    dashed: sa.ColumnElement[str] = parts[0]
    for part in parts[1:]:
        dashed = dashed.concat("-").concat(part)
    return dashed


def _build(dialect: str, by_id: bool) -> sa.Select[Any]:
    subject = _allowance_subject(dialect)
    total, mine = _counter.alias("tt_sp_total"), _counter.alias("tt_sp_user")
    source = _allowances.outerjoin(total, sa.and_(
        total.c.scope == sa.literal_column(f"'{SPONSOR_TOTAL}'"), total.c.subject == subject,
        total.c.window_start == 0,
    )).outerjoin(mine, sa.and_(
        mine.c.scope == sa.literal_column(f"'{SPONSOR_USER}'"),
        mine.c.subject == subject.concat(":").concat(sa.bindparam("user_id", type_=sa.String)),
        mine.c.window_start == sa.bindparam("w_key", type_=sa.BigInteger)))
    at = _usage.c.created_at
    rows_of_window = (  # only evaluated without a counter (COALESCE stops at the first)
        sa.select(sa.func.coalesce(sa.func.sum(_usage.c.charged_micro), 0))
        .where(_usage.c.sponsored_allowance_id.is_not(None),  # the partial index
               _usage.c.sponsored_allowance_id == _allowances.c.id,
               _usage.c.user_id == sa.bindparam("user_id", type_=sa.String),
               at >= sa.bindparam("w_start", type_=at.type),
               at < sa.bindparam("w_end", type_=at.type))
        .scalar_subquery())
    stmt = sa.select(
        _allowances.c.id, _allowances.c.name, _allowances.c.total_credit_limit,
        _allowances.c.daily_credit_limit, total.c.spent_micro, total.c.reserved_micro,
        sa.func.coalesce(mine.c.spent_micro, rows_of_window), mine.c.reserved_micro,
        sa.select(settings_json(dialect)).scalar_subquery().label("settings"),
    ).select_from(source)
    if by_id:
        return stmt.where(_allowances.c.id == sa.bindparam("id", type_=sa.Uuid))
    return stmt.where(_allowances.c.name == sa.bindparam("name", type_=sa.String))


_statements: dict[tuple[str, bool], sa.Select[Any]] = {}


def _statement(session: Session, by_id: bool) -> sa.Select[Any]:
    key = (session.get_bind().dialect.name, by_id)
    stmt = _statements.get(key)
    if stmt is None:
        stmt = _statements[key] = _build(*key)
    return stmt


_last_settings: weakref.WeakKeyDictionary[Engine, BudgetSettings] = weakref.WeakKeyDictionary()
"""The settings each database had at its last sponsored read: the window to read in."""


def _expected_window(session: Session, now: datetime) -> Window:
    settings = _last_settings.get(session.get_bind().engine)
    if settings is None:
        settings = budget_settings_from(session, {}, warn=False)  # the defaults
    return window_for(now, settings.period, settings.timezone)


def balances(session: Session, user_id: str, now: datetime, *, allowance_name: str | None = None,
             allowance_id: str | uuid.UUID | None = None
             ) -> tuple[AllowanceLimits | None, list[tuple[Limit, Balance]]]:
    """The limits that apply to the user now (their own window's, or a sponsored
    allowance's total and per-user ones), each with its state."""
    if allowance_name is None and allowance_id is None:
        return None, counters.own_balance(session, user_id, now)[0]
    window = _expected_window(session, now)
    params: dict[str, object] = {"user_id": user_id, "w_key": window.key,
                                 "w_start": window.start, "w_end": window.end}
    if allowance_id is not None:
        row = run(session, _statement(session, True),
                  {**params, "id": parse_allowance_id(allowance_id)}).first()
        if row is not None and allowance_name is not None and row.name != allowance_name:
            row = None
    else:
        row = run(session, _statement(session, False), {**params, "name": allowance_name}).first()
    if row is None:
        what = f"id {allowance_id}" if allowance_id is not None else f"name {allowance_name!r}"
        raise NotFoundError(f"sponsored allowance with {what} does not exist")
    found_id, name, total_limit, daily_limit, spent, reserved, mine, mine_reserved, stored = row
    allowance = AllowanceLimits(found_id, name, int(total_limit),
                                None if daily_limit is None else int(daily_limit))
    settings = budget_settings_from(session, parse_settings(stored))
    _last_settings[session.get_bind().engine] = settings
    out = []
    for limit in counters.sponsor_limits(allowance, user_id, now, settings):
        if limit.key.scope == SPONSOR_TOTAL:
            out.append((limit, counters.balance_from(session, limit, spent, reserved)))
        elif (limit.window.start, limit.window.end) == (window.start, window.end):  # read above
            out.append((limit, Balance(limit.limit_micro, int(mine),
                                       int(mine_reserved or 0), limit.window)))
        else:  # the settings changed since the last read: another trip
            out.append((limit, counters.balance_of(session, limit)))
    return allowance, out
