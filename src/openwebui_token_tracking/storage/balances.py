"""Reads of the hot path, in as few round trips as the keys allow.

A user's own balance is one statement (``counters.own_balance``: settings, groups, caps
and counters). A sponsored balance is one statement for the allowance and the settings
together, then one for both counters (``counters.balances_of``): two round trips
whatever the size of the ledger, where looking the allowance up, reading the settings
and reading the counters one by one took four.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import NotFoundError
from . import counters
from .counters import Balance, Limit
from .schema import BaseSetting, SponsoredAllowance
from .settings_store import BUDGET_KEYS, BudgetSettings, budget_settings_from
from .sponsors import AllowanceLimits, parse_allowance_id

_settings = cast(sa.Table, BaseSetting.__table__)
_allowances = cast(sa.Table, SponsoredAllowance.__table__)


def _setting(key: str) -> sa.ScalarSelect[str | None]:
    return (sa.select(_settings.c.setting_value).where(_settings.c.setting_key == key)
            .scalar_subquery())


_ALLOWANCE_AND_SETTINGS = sa.select(
    _allowances.c.id, _allowances.c.name, _allowances.c.total_credit_limit,
    _allowances.c.daily_credit_limit, *[_setting(key).label(key) for key in BUDGET_KEYS])
_BY_NAME = _ALLOWANCE_AND_SETTINGS.where(_allowances.c.name == sa.bindparam("name"))
_BY_ID = _ALLOWANCE_AND_SETTINGS.where(_allowances.c.id == sa.bindparam("id", type_=sa.Uuid))


def _allowance_and_settings(session: Session, name: str | None,
                            allowance_id: str | uuid.UUID | None
                            ) -> tuple[AllowanceLimits, BudgetSettings]:
    if allowance_id is not None:
        row = session.execute(_BY_ID, {"id": parse_allowance_id(allowance_id)}).first()
        if row is not None and name is not None and row.name != name:
            row = None
    else:
        row = session.execute(_BY_NAME, {"name": name}).first()
    if row is None:
        what = f"id {allowance_id}" if allowance_id is not None else f"name {name!r}"
        raise NotFoundError(f"sponsored allowance with {what} does not exist")
    stored = {key: value for key in BUDGET_KEYS if (value := row._mapping[key]) is not None}
    allowance = AllowanceLimits(row.id, row.name, int(row.total_credit_limit),
                                None if row.daily_credit_limit is None
                                else int(row.daily_credit_limit))
    return allowance, budget_settings_from(session, stored)


def balances(session: Session, user_id: str, now: datetime, *, allowance_name: str | None = None,
             allowance_id: str | uuid.UUID | None = None
             ) -> tuple[AllowanceLimits | None, list[tuple[Limit, Balance]]]:
    """The limits that apply to the user now (their own window's, or a sponsored
    allowance's total and per-user ones), each with its state."""
    if allowance_name is None and allowance_id is None:
        return None, counters.own_balance(session, user_id, now)[0]
    allowance, settings = _allowance_and_settings(session, allowance_name, allowance_id)
    return allowance, counters.user_balance(session, user_id, now, allowance, settings)
