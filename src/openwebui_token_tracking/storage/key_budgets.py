"""Per-key budgets: an API key capped below its owner's allowance, per budget window.

A key is known by a non-secret id (:func:`key_id`, a hash prefix); the key itself is
never stored. A capped key is one more limit in the same atomic admission (counter
scope ``api_key``): its counter sums every charge made with the key in the window, own
and sponsored alike. Uncapped keys keep no counter; their usage is read from the ledger.

An admin may set, raise or remove any key's cap; the key's owner may only lower it
(or set one where there was none). Every function takes a ``Session`` in a transaction
the caller owns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..accounting.budget import window_for
from ..accounting.money import micro_to_credits
from ..errors import DailyTokenLimitExceededError, InvalidInputError, NotFoundError
from .counters import API_KEY, CounterKey, Limit, balance_of
from .openwebui_access import api_key_table, optional_read
from .schema import KeyBudget, TokenUsageLog
from .settings_store import BudgetSettings

KEY_ID_PREFIX = "key-"
budgets = cast(sa.Table, KeyBudget.__table__)
usage_log = cast(sa.Table, TokenUsageLog.__table__)


def key_id(api_key: str) -> str:
    """The key's public id: ``key-`` and 16 hex digits of its SHA-256 (never the key)."""
    return KEY_ID_PREFIX + hashlib.sha256(api_key.encode()).hexdigest()[:16]


_CAP = sa.select(budgets.c.limit_micro).where(budgets.c.key_id == sa.bindparam("key_id"))


def key_limit(session: Session, api_key_id: str, now: datetime,
              settings: BudgetSettings) -> Limit | None:
    """The key's limit in the window of ``now``, None when the key is not capped."""
    return key_limit_of(session.execute(_CAP, {"key_id": api_key_id}).scalar(), api_key_id,
                        now, settings)


def key_limit_of(cap: int | None, api_key_id: str, now: datetime,
                 settings: BudgetSettings) -> Limit | None:
    """``key_limit`` of a cap already read (``UserTerms.key_cap_micro``)."""
    if cap is None:
        return None
    window = window_for(now, settings.period, settings.timezone)
    return Limit(CounterKey(API_KEY, api_key_id, window.key), int(cap), window,
                 DailyTokenLimitExceededError)


@dataclass(frozen=True)
class KeyState:
    """One key of a user: its cap and what it spent in the current window (micro)."""

    key_id: str
    user_id: str
    limit_micro: int | None
    spent_micro: int
    reserved_micro: int
    requests: int
    set_by: str | None
    window_end: datetime


def _window_usage(session: Session, key_ids: list[str], start: datetime, end: datetime
                  ) -> dict[str, tuple[int, int]]:
    if not key_ids:
        return {}
    c = usage_log.c
    rows = session.execute(
        sa.select(c.api_key_id, sa.func.coalesce(sa.func.sum(c.charged_micro), 0),
                  sa.func.count())
        .where(c.api_key_id.in_(key_ids), c.created_at >= start, c.created_at < end)
        .group_by(c.api_key_id))
    return {k: (int(m), int(n)) for k, m, n in rows}


def known_keys(session: Session, user_id: str | None) -> list[tuple[str, str]]:
    """(key id, owner) of every key that has a budget or a ledger row; one user's or all."""
    c = usage_log.c
    used = sa.select(c.api_key_id, c.user_id).where(c.api_key_id.is_not(None)).distinct()
    capped = sa.select(budgets.c.key_id, budgets.c.user_id)
    if user_id is not None:
        used = used.where(c.user_id == user_id)
        capped = capped.where(budgets.c.user_id == user_id)
    found = {(str(k), str(u)) for k, u in session.execute(used)}
    found |= {(str(k), str(u)) for k, u in session.execute(capped)}
    return sorted(found)


def key_states(session: Session, keys: list[tuple[str, str]], now: datetime,
               settings: BudgetSettings) -> list[KeyState]:
    """Cap and current-window spend of each (key id, owner)."""
    window = window_for(now, settings.period, settings.timezone)
    ids = [k for k, _ in keys]
    caps = {r.key_id: r for r in session.execute(
        sa.select(budgets).where(budgets.c.key_id.in_(ids)))} if ids else {}
    usage = _window_usage(session, ids, window.start, window.end)
    out = []
    for kid, owner in keys:
        cap = caps.get(kid)
        spent, requests = usage.get(kid, (0, 0))
        reserved = 0
        if cap is not None:
            state = balance_of(session, Limit(CounterKey(API_KEY, kid, window.key),
                                              int(cap.limit_micro), window,
                                              DailyTokenLimitExceededError))
            spent, reserved = state.spent_micro, state.reserved_micro
        out.append(KeyState(kid, owner, None if cap is None else int(cap.limit_micro),
                            spent, reserved, requests, None if cap is None else cap.set_by,
                            window.end))
    return out


def check_key_id(value: str) -> str:
    value = value.strip()
    hexpart = value.removeprefix(KEY_ID_PREFIX)
    if not value.startswith(KEY_ID_PREFIX) or len(hexpart) != 16 or any(
            ch not in "0123456789abcdef" for ch in hexpart):
        raise InvalidInputError(f"{value!r} is not a key id: key ids look like "
                                "key-0123456789abcdef (see 'keys list')")
    return value


def set_budget(session: Session, *, api_key_id: str, owner_id: str, limit_micro: int,
               by: str, by_admin: bool, now: datetime) -> None:
    """Cap a key at ``limit_micro`` per window; the owner (not admin) may only lower it."""
    api_key_id = check_key_id(api_key_id)
    if limit_micro < 0:
        raise InvalidInputError("a key budget cannot be negative")
    row = session.execute(sa.select(budgets).where(budgets.c.key_id == api_key_id)).first()
    if row is not None and row.user_id != owner_id:
        raise InvalidInputError(f"key {api_key_id} belongs to another user")
    if not by_admin and row is not None and limit_micro > row.limit_micro:
        raise InvalidInputError(
            f"you may only lower your key's budget (now "
            f"{micro_to_credits(row.limit_micro).normalize():f} credits); ask an admin to "
            "raise it")
    values = {"limit_micro": limit_micro, "set_by": by, "updated_at": now}
    if row is None:
        session.execute(sa.insert(budgets).values(key_id=api_key_id, user_id=owner_id,
                                                  **values))
    else:
        session.execute(sa.update(budgets).where(budgets.c.key_id == api_key_id)
                        .values(**values))


def clear_budget(session: Session, api_key_id: str) -> None:
    """Remove a key's cap (admins only: callers check)."""
    deleted = session.execute(sa.delete(budgets).where(
        budgets.c.key_id == check_key_id(api_key_id)))
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise NotFoundError(f"key {api_key_id} has no budget")


def openwebui_keys(session: Session, user_id: str | None) -> list[tuple[str, str]]:
    """(key id, owner) of the API keys in Open WebUI's ``api_key`` table (hashed here,
    never returned), in a session of its own; empty when this database has no such table."""
    query = sa.select(api_key_table.c.key, api_key_table.c.user_id)
    if user_id is not None:
        query = query.where(api_key_table.c.user_id == user_id)
    return optional_read(session, lambda own: [(key_id(k), str(u))
                                               for k, u in own.execute(query)]) or []


@dataclass(frozen=True)
class KeyOverview:
    state: KeyState
    current: bool
    """The owner's current Open WebUI key (a key seen only in the ledger was replaced)."""


def key_overview(session: Session, user_id: str | None, now: datetime,
                 settings: BudgetSettings) -> list[KeyOverview]:
    """Every key of a user (None: of everyone) with its cap and spend this window."""
    current = set(openwebui_keys(session, user_id))
    keys = sorted(set(known_keys(session, user_id)) | current)
    return [KeyOverview(s, (s.key_id, s.user_id) in current)
            for s in key_states(session, keys, now, settings)]


def owner_of(session: Session, api_key_id: str) -> str:
    """The user a key belongs to, from its budget, the ledger or Open WebUI's keys."""
    api_key_id = check_key_id(api_key_id)
    for kid, owner in [*known_keys(session, None), *openwebui_keys(session, None)]:
        if kid == api_key_id:
            return owner
    raise NotFoundError(f"no API key {api_key_id} is known (not in Open WebUI's keys, "
                        "never used, no budget)")
