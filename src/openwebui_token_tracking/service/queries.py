"""Aggregations the dashboards and /metrics need that ``storage.reports`` does not offer.

- spend per hour by model, folded here into calendar days of any time zone (SQL groups
  by UTC hour, which both SQLite and PostgreSQL can do; Python turns hours into local
  days, exact for every zone whose offset is whole hours);
- users near their own limit in the current window (sponsored spend excluded), open
  reservations. Sums by user, group, model, allowance come from ``storage.reports``.

Functions take a ``Session``; amounts are integer micro-credits.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..accounting.budget import window_for
from ..accounting.money import MICRO
from ..storage import groups
from ..storage.openwebui_tables import user_table
from ..storage.schema import Reservation, TokenUsageLog
from ..storage.settings_store import BudgetSettings

log = TokenUsageLog.__table__.c


@dataclass(frozen=True)
class HourSpend:
    hour: datetime
    provider: str
    model_id: str
    allowance_id: uuid.UUID | None
    charged_micro: int
    requests: int


def _hour_bucket(session: Session) -> sa.ColumnElement[str]:
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(
            sa.func.date_trunc("hour", sa.func.timezone("UTC", log.created_at)),
            "YYYY-MM-DD HH24")
    return sa.func.strftime("%Y-%m-%d %H", log.created_at)


def hourly_spend(session: Session, since: datetime, until: datetime, *,
                 user_id: str | None = None) -> list[HourSpend]:
    """Charges in ``[since, until)`` per UTC hour, provider, model and allowance."""
    bucket = _hour_bucket(session).label("hour")
    q = (sa.select(bucket, log.provider, log.model_id, log.sponsored_allowance_id,
                   sa.func.sum(log.charged_micro), sa.func.count())
         .where(log.created_at >= since, log.created_at < until)
         .group_by(bucket, log.provider, log.model_id, log.sponsored_allowance_id))
    if user_id is not None:
        q = q.where(log.user_id == user_id)
    return [
        HourSpend(datetime.strptime(h, "%Y-%m-%d %H").replace(tzinfo=UTC), p, m, a,
                  int(c or 0), int(n))
        for h, p, m, a, c, n in session.execute(q)
    ]


def days_between(since: datetime, until: datetime, tz: tzinfo) -> list[date]:
    """The local calendar days that ``[since, until)`` touches."""
    first = since.astimezone(tz).date()
    last = (until - timedelta(microseconds=1)).astimezone(tz).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def per_day_by_model(hours: list[HourSpend], days: list[date], tz: tzinfo,
                     max_series: int = 8) -> dict[str, list[int]]:
    """``{"provider/model": [micro per day]}``, the biggest ``max_series``, rest as other."""
    index = {d: i for i, d in enumerate(days)}
    table: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    for h in hours:
        i = index.get(h.hour.astimezone(tz).date())
        if i is not None:
            table[f"{h.provider}/{h.model_id}"][i] += h.charged_micro
    ranked = sorted(table, key=lambda k: -sum(table[k]))
    out = {k: table[k] for k in ranked[:max_series]}
    rest = ranked[max_series:]
    if rest:
        out["other"] = [sum(table[k][i] for k in rest) for i in range(len(days))]
    return out


def user_names(session: Session, ids: list[str]) -> dict[str, str]:
    """Display names from Open WebUI's user table (ids missing there map to nothing)."""
    if not ids:
        return {}
    try:
        rows = session.execute(sa.select(user_table.c.id, user_table.c.name)
                               .where(user_table.c.id.in_(ids))).all()
    except sa.exc.SQLAlchemyError:
        return {}
    return {i: n or i for i, n in rows}


@dataclass(frozen=True)
class NearLimit:
    user_id: str
    name: str
    spent_micro: int
    limit_micro: int

    @property
    def share(self) -> float:
        """Fraction of the limit spent (display only)."""
        return self.spent_micro / self.limit_micro if self.limit_micro else 1.0


def users_near_limit(session: Session, now: datetime, settings: BudgetSettings,
                     threshold: float = 0.8) -> list[NearLimit]:
    """Users whose own allowance this window is at least ``threshold`` spent."""
    window = window_for(now, settings.period, settings.timezone)
    q = (sa.select(log.user_id, sa.func.sum(log.charged_micro))
         .where(log.sponsored_allowance_id.is_(None), log.created_at >= window.start,
                log.created_at < window.end)
         .group_by(log.user_id))
    spent = {u: int(s or 0) for u, s in session.execute(q)}
    names = user_names(session, list(spent))
    extra = groups.allowances_by_user(session)
    out = []
    for uid, micro in spent.items():
        limit = settings.base_allowance_micro + extra.get(uid, 0) * MICRO
        if micro >= limit * threshold:
            out.append(NearLimit(uid, names.get(uid, uid), micro, limit))
    return sorted(out, key=lambda n: (-n.share, n.user_id))


def open_reservations(session: Session, now: datetime) -> tuple[int, int, int]:
    """(open reservations, micro-credits they hold, how many are past their expiry)."""
    r = Reservation.__table__.c
    n, held = session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(r.estimate_micro), 0))).one()
    expired = session.scalar(sa.select(sa.func.count()).where(r.expires_at <= now)) or 0
    return int(n), int(held), int(expired)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(3000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ChargeTotal:
    """Everything charged through one entry point for one model (micro-credits)."""

    entry_point: str
    provider: str
    model_id: str
    requests: int
    charged_micro: int
    tokens: dict[str, int]


UNKNOWN_ENTRY = "unknown"
"""Label of rows written before entry points were recorded (and by the 0.1.10 API)."""


def charge_totals(session: Session) -> list[ChargeTotal]:
    """The whole ledger summed by entry point, provider and model."""
    entry = sa.func.coalesce(log.entry_point, UNKNOWN_ENTRY).label("entry")
    kinds = ("input", "cached_input", "cache_write", "output", "reasoning")
    rows = session.execute(
        sa.select(entry, log.provider, log.model_id, sa.func.count(),
                  sa.func.coalesce(sa.func.sum(log.charged_micro), 0),
                  *(sa.func.coalesce(sa.func.sum(log[f"{k}_tokens"]), 0) for k in kinds))
        .group_by(entry, log.provider, log.model_id)
        .order_by(log.provider, log.model_id, entry))
    return [ChargeTotal(str(e), str(p), str(m), int(n), int(c),
                        {k: int(v) for k, v in zip(kinds, rest, strict=True)})
            for e, p, m, n, c, *rest in rows]
