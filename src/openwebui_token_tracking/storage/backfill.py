"""Budget counters built from the ledger in a few set-based statements.

Run by every upgrade (``init``, ``database migrate``): right after a 0.1.10 database
is migrated its ledger has no counters, and without them the first check of each user
would sum that user's rows of the window and, for a sponsored allowance, its whole
history. Only missing counters are created (never overwritten), so running it again,
at every container start, costs one aggregate over the current window and repairs
any counter that went missing:

- each user's counter of the current window, from their unsponsored rows in it;
- each sponsored allowance's total counter, from all of its rows;
- each allowance's per-user counter of the current window (if it has a per-user limit).

Safe next to live traffic: a charge that commits while this runs either created the
counter itself (this insert then does nothing) or finds this counter afterwards and
adds to it (``counters.apply_spend``).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..accounting.budget import Window, window_for
from .counters import SPONSOR_TOTAL, SPONSOR_USER, USER, counter, usage_log
from .schema import SponsoredAllowance
from .settings_store import budget_settings

COLUMNS = ["scope", "subject", "window_start", "spent_micro", "reserved_micro"]


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(counter)


def _rowcount(result: sa.Result[object]) -> int:
    return max(getattr(result, "rowcount", 0) or 0, 0)


def backfill_counters(session: Session, now: datetime) -> dict[str, int]:
    """Create the missing counters of the windows containing ``now``; counts per scope."""
    settings = budget_settings(session, warn=False)
    window = window_for(now, settings.period, settings.timezone)
    return {USER: _user_windows(session, window),
            SPONSOR_TOTAL: _sponsor_totals(session),
            SPONSOR_USER: _sponsor_user_windows(session, window)}


def _user_windows(session: Session, window: Window) -> int:
    c = usage_log.c
    sums = (sa.select(sa.literal(USER), c.user_id, sa.literal(window.key, sa.BigInteger),
                      sa.func.sum(c.charged_micro), sa.literal(0, sa.BigInteger))
            .where(c.sponsored_allowance_id.is_(None), c.created_at >= window.start,
                   c.created_at < window.end)
            .group_by(c.user_id))
    stmt = (_insert(session).from_select(COLUMNS, sums).on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True))
    return _rowcount(session.execute(stmt))


def _missing(session: Session, rows: list[dict[str, object]]) -> int:
    """Insert counter rows that do not exist yet."""
    if not rows:
        return 0
    existing = {(scope, subject, start) for scope, subject, start in session.execute(
        sa.select(counter.c.scope, counter.c.subject, counter.c.window_start)
        .where(counter.c.scope == rows[0]["scope"],
               counter.c.window_start.in_({r["window_start"] for r in rows})))}
    new = [r for r in rows if (r["scope"], r["subject"], r["window_start"]) not in existing]
    if new:
        session.execute(_insert(session).on_conflict_do_nothing(), new)
    return len(new)


def _sponsor_totals(session: Session) -> int:
    ids = list(session.scalars(sa.select(SponsoredAllowance.id)))
    if not ids:
        return 0
    c = usage_log.c
    sums = {aid: spent for aid, spent in session.execute(
        sa.select(c.sponsored_allowance_id, sa.func.sum(c.charged_micro))
        .where(c.sponsored_allowance_id.is_not(None), c.sponsored_allowance_id.in_(ids))
        .group_by(c.sponsored_allowance_id))}
    return _missing(session, [
        {"scope": SPONSOR_TOTAL, "subject": str(aid), "window_start": 0,
         "spent_micro": int(sums.get(aid) or 0), "reserved_micro": 0} for aid in ids])


def _sponsor_user_windows(session: Session, window: Window) -> int:
    ids = list(session.scalars(sa.select(SponsoredAllowance.id)
                               .where(SponsoredAllowance.daily_credit_limit.is_not(None))))
    if not ids:
        return 0
    c = usage_log.c
    sums = session.execute(
        sa.select(c.sponsored_allowance_id, c.user_id, sa.func.sum(c.charged_micro))
        .where(c.sponsored_allowance_id.is_not(None), c.sponsored_allowance_id.in_(ids),
               c.created_at >= window.start, c.created_at < window.end)
        .group_by(c.sponsored_allowance_id, c.user_id)).all()
    return _missing(session, [
        {"scope": SPONSOR_USER, "subject": f"{aid}:{user_id}", "window_start": window.key,
         "spent_micro": int(spent or 0), "reserved_micro": 0} for aid, user_id, spent in sums])
