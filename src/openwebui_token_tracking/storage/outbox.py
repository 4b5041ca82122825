"""The alert outbox: claim due deliveries atomically, record how each attempt ended.

A deliverer claims a row with one conditional write (``UPDATE ... WHERE id = :id AND
status = 'pending' AND (claimed_until IS NULL OR claimed_until <= :now)``): of two
processes claiming the same row, exactly one matches (PostgreSQL re-checks the
condition on the locked row; SQLite runs writers one at a time). The claim is a lease:
a deliverer that dies mid-send leaves a row that is claimable again once
``claimed_until`` passed, so every event is delivered at least once.

Every function takes a ``Session`` in a transaction the caller owns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .alerts import delivery_table, event_table
from .types import UTCDateTime

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 10
"""After this many failed attempts a delivery is given up (status ``failed``)."""


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 30 s, 1 min, 2 min, ... capped at 1 h."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP)


@dataclass(frozen=True)
class Claimed:
    """A delivery this deliverer holds until ``lease_until``."""

    delivery_id: int
    channel: str
    attempts: int
    """Attempts before this one."""
    event_key: str
    payload: str
    token: str


_d = delivery_table.c
_CLAIM = (
    sa.update(delivery_table)
    .where(_d.id == sa.bindparam("did"), _d.status == PENDING,
           sa.or_(_d.claimed_until.is_(None), _d.claimed_until <= sa.bindparam("now")))
    .values(claimed_until=sa.bindparam("lease_until"), claim_token=sa.bindparam("token"))
)


def claim_due(session: Session, *, now: datetime, lease: timedelta,
              batch: int = 20) -> list[Claimed]:
    """Claim up to ``batch`` deliveries that are due and not held by another deliverer."""
    due = session.execute(
        sa.select(_d.id, _d.channel, _d.attempts, event_table.c.event_key,
                  event_table.c.payload)
        .join(event_table, event_table.c.id == _d.event_id)
        .where(_d.status == PENDING, _d.next_attempt_at <= now,
               sa.or_(_d.claimed_until.is_(None), _d.claimed_until <= now))
        .order_by(_d.next_attempt_at, _d.id).limit(batch)
    ).all()
    claimed = []
    for row in due:
        token = str(uuid.uuid4())
        params = {"did": row.id, "now": now, "lease_until": now + lease, "token": token}
        if cast("sa.CursorResult[Any]", session.execute(_CLAIM, params)).rowcount == 1:
            claimed.append(Claimed(row.id, row.channel, row.attempts, row.event_key,
                                   row.payload, token))
    return claimed


def _held(delivery: Claimed) -> sa.ColumnElement[bool]:
    return sa.and_(_d.id == delivery.delivery_id, _d.claim_token == delivery.token)


def mark_delivered(session: Session, delivery: Claimed, now: datetime) -> None:
    session.execute(sa.update(delivery_table).where(_held(delivery)).values(
        status=DELIVERED, delivered_at=now, attempts=delivery.attempts + 1,
        claimed_until=None, claim_token=None, last_error=None))


def mark_failed(session: Session, delivery: Claimed, now: datetime, error: str,
                max_attempts: int = MAX_ATTEMPTS) -> bool:
    """Record a failed attempt; schedule the next with backoff, or give up. True: gave up."""
    attempts = delivery.attempts + 1
    gave_up = attempts >= max_attempts
    session.execute(sa.update(delivery_table).where(_held(delivery)).values(
        status=FAILED if gave_up else PENDING, attempts=attempts,
        next_attempt_at=now + backoff(attempts), claimed_until=None, claim_token=None,
        last_error=error[:255]))
    return gave_up


def next_due(session: Session) -> datetime | None:
    """When the earliest pending delivery may be tried (a held one: when its lease ends)."""
    nxt = session.scalar(sa.select(sa.func.min(
        sa.case((_d.claimed_until > _d.next_attempt_at, _d.claimed_until),
                else_=_d.next_attempt_at), type_=UTCDateTime()))
        .where(_d.status == PENDING))
    return cast("datetime | None", nxt)
