"""Requests and tokens per minute: one conditional write admits or refuses.

Each user has one row in ``token_tracking_rate_counter`` holding the minute it counts,
the requests admitted in it and their tokens. Admission is a single conditional
``UPDATE`` that rolls a stale row over to the new minute and adds the request and its
estimated tokens only if both fit (``accounting.limits.rate_admits``)::

    UPDATE token_tracking_rate_counter
       SET requests = <0 if stale else requests> + 1,
           tokens = <0 if stale else tokens> + :estimate, minute_start = ...
     WHERE user_id = :user AND <0 if stale else requests> + 1 <= :rpm
       AND <0 if stale else tokens> + :estimate <= :tpm

As for credits, PostgreSQL re-checks the condition on the locked row and SQLite runs
writers one at a time, so concurrent requests never admit more than the limit in a
minute. Settling replaces the estimate by the actual tokens in the request's own minute
(nothing, once that minute is over). A row counted in a later minute (another process's
clock ahead) counts as current rather than stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..accounting.budget import Window
from ..accounting.limits import minute_window
from ..errors import RateLimitExceededError
from .prepared import run
from .schema import RateCounter

REQUESTS, TOKENS = "requests_per_minute", "tokens_per_minute"
REFUSAL_REASONS = {REQUESTS: "rate_limit_requests", TOKENS: "rate_limit_tokens"}

rate_table = cast(sa.Table, RateCounter.__table__)
_c = rate_table.c
_minute = sa.bindparam("minute", type_=sa.BigInteger)
_estimate = sa.bindparam("estimate", type_=sa.BigInteger)
_stale = _c.minute_start < _minute
_requests_now = sa.case((_stale, 0), else_=_c.requests)
_tokens_now = sa.case((_stale, 0), else_=_c.tokens)
_ADMIT = (
    sa.update(rate_table).where(
        _c.user_id == sa.bindparam("rate_user"),
        sa.or_(sa.bindparam("rpm", type_=sa.BigInteger).is_(None),
               _requests_now + 1 <= sa.bindparam("rpm", type_=sa.BigInteger)),
        sa.or_(sa.bindparam("tpm", type_=sa.BigInteger).is_(None),
               _tokens_now + _estimate <= sa.bindparam("tpm", type_=sa.BigInteger)))
    .values(requests=_requests_now + 1, tokens=_tokens_now + _estimate,
            minute_start=sa.case((_stale, _minute), else_=_c.minute_start))
)
"""Admit one request (all SET expressions read the row's values before the update)."""
_ADJUST = (sa.update(rate_table)
           .where(_c.user_id == sa.bindparam("rate_user"), _c.minute_start == _minute)
           .values(tokens=_c.tokens + sa.bindparam("delta", type_=sa.BigInteger)))
_ADD_TOKENS = (sa.update(rate_table).where(_c.user_id == sa.bindparam("rate_user"))
               .values(requests=_requests_now, tokens=_tokens_now + _estimate,
                       minute_start=sa.case((_stale, _minute), else_=_c.minute_start)))
_READ = sa.select(_c.minute_start, _c.requests, _c.tokens).where(
    _c.user_id == sa.bindparam("rate_user"))


@dataclass(frozen=True)
class RateLimits:
    """A user's limits per minute; None is no limit."""

    requests_per_minute: int | None
    tokens_per_minute: int | None

    @property
    def active(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None


def _create(session: Session, user_id: str, minute: int) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(rate_table).values(user_id=user_id, minute_start=minute,
                                              requests=0, tokens=0)
                    .on_conflict_do_nothing())


def admit(session: Session, user_id: str, limits: RateLimits, estimate_tokens: int,
          now: datetime) -> int:
    """Count one request and hold its estimated tokens in this minute, or raise
    ``RateLimitExceededError``. Returns the minute's key (Unix seconds)."""
    window = minute_window(now)
    params = {"rate_user": user_id, "minute": window.key, "estimate": estimate_tokens,
              "rpm": limits.requests_per_minute, "tpm": limits.tokens_per_minute}
    if run(session, _ADMIT, params).rowcount == 1:
        return window.key
    # No row yet, or one that another transaction created after this UPDATE began:
    # create it if missing and try once more, now that the row surely exists.
    _create(session, user_id, window.key)
    if run(session, _ADMIT, params).rowcount == 1:
        return window.key
    row = run(session, _READ, params).one()
    raise _refusal(row, limits, estimate_tokens, window)


def _refusal(row: Any, limits: RateLimits, estimate: int,
             window: Window) -> RateLimitExceededError:
    stale = row.minute_start < window.key
    requests, tokens = (0, 0) if stale else (int(row.requests), int(row.tokens))
    rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
    if rpm is not None and requests + 1 > rpm:
        return RateLimitExceededError(
            f"rate limit reached: {requests} of {rpm} requests this minute",
            reset_at=window.end, reason=REFUSAL_REASONS[REQUESTS], limit_kind=REQUESTS,
            rate_limit=rpm, rate_used=requests)
    assert tpm is not None
    if estimate > tpm:
        return RateLimitExceededError(
            f"this request needs about {estimate} tokens, more than the limit of {tpm} "
            "tokens per minute; ask for a shorter answer (max_tokens)",
            reason=REFUSAL_REASONS[TOKENS], limit_kind=TOKENS, rate_limit=tpm,
            rate_used=tokens)
    return RateLimitExceededError(
        f"rate limit reached: {tokens} of {tpm} tokens this minute, this request needs "
        f"about {estimate}", reset_at=window.end, reason=REFUSAL_REASONS[TOKENS],
        limit_kind=TOKENS, rate_limit=tpm, rate_used=tokens)


def settle(session: Session, user_id: str, minute: int, held: int, actual: int) -> None:
    """Replace the held estimate by the actual tokens, if that minute is still counted."""
    if actual != held:
        run(session, _ADJUST, {"rate_user": user_id, "minute": minute,
                               "delta": actual - held})


def add_tokens(session: Session, user_id: str, tokens: int, now: datetime) -> None:
    """Count tokens used without admission (charged after the fact) in this minute."""
    minute = minute_window(now).key
    params = {"rate_user": user_id, "minute": minute, "estimate": tokens}
    if run(session, _ADD_TOKENS, params).rowcount == 0:
        _create(session, user_id, minute)
        run(session, _ADD_TOKENS, params)
