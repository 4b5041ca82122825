"""Budget windows (day, week, month in a timezone) and the admission rule.

A user's allowance applies to the current *window*: the calendar day (or ISO week
starting Monday, or calendar month) in the configured timezone. Windows are half-open
``[start, end)`` intervals of aware UTC instants; ``end`` is the exact next reset.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in aware UTC; ``key`` identifies it in the counters table."""

    start: datetime
    end: datetime

    @property
    def key(self) -> int:
        """Start as integer Unix seconds: stable, exact and cheap to index."""
        return int(self.start.timestamp())


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (UTC), not a naive one")


def _local_midnight(day: datetime, tz: tzinfo) -> datetime:
    """The first instant of the local calendar date of ``day`` (a naive local date)."""
    naive = datetime(day.year, day.month, day.day)
    local = naive.replace(tzinfo=tz)
    # A midnight skipped by a DST jump does not exist; zoneinfo maps it to the
    # instant after the gap, which is the true start of that local day.
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) < naive:
        utc = (local + timedelta(hours=1)).astimezone(UTC)
    return utc


def window_for(now: datetime, period: Period | str, tz: tzinfo) -> Window:
    """The budget window containing ``now`` (aware), with calendar boundaries in ``tz``."""
    _require_aware(now)
    period = Period(period)
    local = now.astimezone(tz)
    day = datetime(local.year, local.month, local.day)
    if period is Period.DAY:
        first, nxt = day, day + timedelta(days=1)
    elif period is Period.WEEK:
        first = day - timedelta(days=day.weekday())
        nxt = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
    return Window(_local_midnight(first, tz), _local_midnight(nxt, tz))


TOTAL = Window(datetime.fromtimestamp(0, UTC), datetime.max.replace(tzinfo=UTC))
"""The window of a sponsored allowance's total limit: all of its usage, ever."""


@dataclass(frozen=True, slots=True)
class Admission:
    """Outcome of the admission rule for one limit (all amounts in micro-credits)."""

    admitted: bool
    remaining: int
    """Credits left in the window after what is spent and reserved (may be negative)."""


def admission_decision(
    *, spent: int, reserved: int, estimate: int, limit: int | None
) -> Admission:
    """Admit when what is spent, what others reserved and this estimate fit the limit.

    ``limit`` None means unlimited. A zero estimate (free model) is always admitted.
    The SQL conditional update in ``storage.ledger`` implements exactly this rule.
    """
    if limit is None:
        return Admission(True, 0)
    remaining = limit - spent - reserved
    if estimate == 0:
        return Admission(True, remaining)
    return Admission(spent + reserved + estimate <= limit, remaining)
