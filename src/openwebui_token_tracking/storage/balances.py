"""Reads of the hot path, in one round trip whatever the size of the ledger.

A user's own balance is one statement (``counters.own_balance``: settings, groups, caps
and counters). A sponsored balance is one statement too: the allowance, the settings, its
total counter and the user's latest per-user counter together (looking them up one by
one took four). Only a per-user counter missing in the current window costs a second
trip: the user's rows of that window (never the allowance's whole history).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import NotFoundError
from . import counters
from .counters import Balance, Limit
from .schema import BudgetCounter, SponsoredAllowance
from .scopes import SPONSOR_TOTAL, SPONSOR_USER
from .settings_store import budget_settings_from
from .sponsors import AllowanceLimits, parse_allowance_id
from .user_state import counter_of, latest_counter, parse_settings, settings_json

_allowances = cast(sa.Table, SponsoredAllowance.__table__)
_counter = cast(sa.Table, BudgetCounter.__table__)


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
    total = _counter.alias("tt_sp_total")
    joined = _allowances.outerjoin(total, sa.and_(
        total.c.scope == sa.literal_column(f"'{SPONSOR_TOTAL}'"), total.c.subject == subject,
        total.c.window_start == 0))
    source, user_counter = latest_counter(
        joined, sa.literal_column(f"'{SPONSOR_USER}'"),
        subject.concat(":").concat(sa.bindparam("user_id", type_=sa.String)), "tt_sp_user")
    stmt = sa.select(
        _allowances.c.id, _allowances.c.name, _allowances.c.total_credit_limit,
        _allowances.c.daily_credit_limit, total.c.spent_micro, total.c.reserved_micro,
        *user_counter, sa.select(settings_json(dialect)).scalar_subquery().label("settings"),
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


def balances(session: Session, user_id: str, now: datetime, *, allowance_name: str | None = None,
             allowance_id: str | uuid.UUID | None = None
             ) -> tuple[AllowanceLimits | None, list[tuple[Limit, Balance]]]:
    """The limits that apply to the user now (their own window's, or a sponsored
    allowance's total and per-user ones), each with its state."""
    if allowance_name is None and allowance_id is None:
        return None, counters.own_balance(session, user_id, now)[0]
    if allowance_id is not None:
        row = session.execute(_statement(session, True), {
            "id": parse_allowance_id(allowance_id), "user_id": user_id}).first()
        if row is not None and allowance_name is not None and row.name != allowance_name:
            row = None
    else:
        row = session.execute(_statement(session, False),
                              {"name": allowance_name, "user_id": user_id}).first()
    if row is None:
        what = f"id {allowance_id}" if allowance_id is not None else f"name {allowance_name!r}"
        raise NotFoundError(f"sponsored allowance with {what} does not exist")
    allowance_id_, name, total_limit, daily_limit, spent, reserved, *user_values, stored = row
    allowance = AllowanceLimits(allowance_id_, name, int(total_limit),
                                None if daily_limit is None else int(daily_limit))
    settings = budget_settings_from(session, parse_settings(stored))
    found = {SPONSOR_TOTAL: (spent, reserved), SPONSOR_USER: (None, None)}
    user_counter = counter_of(*user_values)
    out = []
    for limit in counters.sponsor_limits(allowance, user_id, now, settings):
        if limit.key.scope == SPONSOR_USER and user_counter is not None:
            found[SPONSOR_USER] = user_counter.values_in(limit.key.window_start)
        out.append((limit, counters.balance_from(session, limit, *found[limit.key.scope])))
    return allowance, out
