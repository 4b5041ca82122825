"""Counting refused requests (limits, unpriced models, uncovered models) for metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..errors import (
    ModelNotCoveredError,
    TokenLimitExceededError,
    TokenTrackingError,
    UnknownModelError,
)
from .schema import RefusalCount

refusals = cast(sa.Table, RefusalCount.__table__)


def reason_of(exc: TokenTrackingError) -> str | None:
    """The refusal reason of an admission error, None if it is not a refusal."""
    if isinstance(exc, TokenLimitExceededError):
        return exc.reason or "limit"
    if isinstance(exc, UnknownModelError):
        return "unpriced_model"
    if isinstance(exc, ModelNotCoveredError):
        return "model_not_covered"
    return None


def record_refusal(session: Session, *, now: datetime, reason: str, provider: str,
                   model_id: str, entry_point: str | None = None) -> None:
    """Add one refusal to today's (UTC) count of its entry point (pipe, filter, gateway)."""
    utc = now.astimezone(UTC)
    day = datetime(utc.year, utc.month, utc.day, tzinfo=UTC)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    stmt = insert(refusals).values(day=int(day.timestamp()), reason=reason,
                                   provider=provider, model_id=model_id,
                                   entry_point=entry_point or "unknown", count=1)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["day", "reason", "provider", "model_id", "entry_point"],
        set_={"count": refusals.c.count + 1}))


@dataclass(frozen=True)
class RefusalTotal:
    reason: str
    provider: str
    model_id: str
    count: int
    entry_point: str = "unknown"


def refusal_totals(session: Session, since: datetime | None = None,
                   until: datetime | None = None) -> list[RefusalTotal]:
    """Refusals by reason, provider, model and entry point: all ever counted, or those of
    the UTC days that start in ``[since, until)``."""
    c = refusals.c
    query = (sa.select(c.reason, c.provider, c.model_id, c.entry_point, sa.func.sum(c.count))
             .group_by(c.reason, c.provider, c.model_id, c.entry_point)
             .order_by(c.reason, c.provider, c.model_id, c.entry_point))
    if since is not None:
        query = query.where(c.day >= int(since.timestamp()))
    if until is not None:
        query = query.where(c.day < int(until.timestamp()))
    return [RefusalTotal(r, p, m, int(n), e) for r, p, m, e, n in session.execute(query)]
