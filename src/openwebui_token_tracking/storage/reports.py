"""Usage reports over the ledger: sums by a dimension, and the raw rows, in a time range.

Ranges are half-open ``[since, until)`` of aware UTC instants. Amounts are exact: sums of
integer micro-credits, shown as ``Decimal`` credits. Every function takes a ``Session``
in a transaction the caller owns, and only reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..accounting.money import micro_to_credits
from ..errors import InvalidInputError
from .openwebui_groups import credit_group_members, group_tables
from .openwebui_tables import user_table
from .schema import CreditGroup, SponsoredAllowance, TokenUsageLog

GROUP_BY = ("user", "model", "provider", "group", "allowance", "day")
"""The dimensions :func:`usage_summary` sums by."""

NO_GROUP = "(no group)"
BASE_ALLOWANCE = "(base allowance)"

log = TokenUsageLog.__table__


@dataclass(frozen=True)
class SummaryRow:
    """Sums over the ledger rows sharing one ``key`` of the chosen dimension.

    ``key`` is the user id, model id, provider, group name, allowance name or UTC date
    (``YYYY-MM-DD``); ``detail`` adds what makes it readable (user name, the model's
    provider), or is None.
    """

    key: str
    detail: str | None
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    charged_micro: int

    @property
    def credits(self) -> Decimal:
        return micro_to_credits(self.charged_micro)

    @property
    def total_tokens(self) -> int:
        return (self.input_tokens + self.cached_input_tokens + self.cache_write_tokens
                + self.output_tokens + self.reasoning_tokens)


@dataclass(frozen=True)
class LedgerRow:
    """One charged request, as stored (``charged_micro`` in micro-credits)."""

    id: int
    created_at: datetime
    user_id: str
    provider: str
    model_id: str
    sponsored_allowance_id: uuid.UUID | None
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    charged_micro: int
    status: str
    chat_id: str | None
    message_id: str | None
    task: str | None

    @property
    def credits(self) -> Decimal:
        return micro_to_credits(self.charged_micro)


LEDGER_FIELDS = tuple(LedgerRow.__dataclass_fields__)


def check_range(since: datetime, until: datetime) -> None:
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInputError(f"{name} must be an aware instant (UTC), not {value!r}")
    if since >= until:
        raise InvalidInputError(
            f"the range is empty: since {since.isoformat()} is not before until "
            f"{until.isoformat()}"
        )


def _range(since: datetime, until: datetime,
           user_id: str | None) -> list[sa.ColumnElement[bool]]:
    check_range(since, until)
    where = [log.c.created_at >= since, log.c.created_at < until]
    if user_id is not None:
        where.append(log.c.user_id == user_id)
    return where


def _sums() -> list[sa.ColumnElement[int]]:
    c = log.c
    return [
        sa.func.count().label("requests"),
        *(sa.func.coalesce(sa.func.sum(col), 0).label(col.name) for col in (
            c.input_tokens, c.cached_input_tokens, c.cache_write_tokens, c.output_tokens,
            c.reasoning_tokens, c.charged_micro)),
    ]


def _utc_day(session: Session) -> sa.ColumnElement[str]:
    """The UTC calendar date of ``created_at`` as ``YYYY-MM-DD`` text, per dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", log.c.created_at), "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d", log.c.created_at)  # stored as naive UTC text


def _dimension(session: Session, by: str
               ) -> tuple[tuple[sa.ColumnElement[Any], sa.ColumnElement[Any] | None],
                          sa.FromClause]:
    """The key and detail (or None) columns and the FROM clause of one dimension."""
    c = log.c
    if by == "user":
        source = log.outerjoin(user_table, user_table.c.id == c.user_id)
        return (c.user_id, user_table.c.name), source
    if by == "model":
        return (c.model_id, c.provider), log
    if by == "provider":
        return (c.provider, None), log
    if by == "group":  # members directly or through a linked Open WebUI group
        members = credit_group_members(group_tables(session))
        groups = CreditGroup.__table__
        source = log.outerjoin(members, members.c.user_id == c.user_id).outerjoin(
            groups, groups.c.id == members.c.credit_group_id)
        return (sa.func.coalesce(groups.c.name, NO_GROUP), None), source
    if by == "allowance":
        allowances = SponsoredAllowance.__table__
        source = log.outerjoin(allowances, allowances.c.id == c.sponsored_allowance_id)
        return (allowances.c.name, c.sponsored_allowance_id), source
    if by == "day":
        return (_utc_day(session), None), log
    raise InvalidInputError(f"cannot sum usage by {by!r}; choose one of {', '.join(GROUP_BY)}")


def _allowance_key(name: object, allowance_id: object) -> tuple[str, str | None]:
    if allowance_id is None:
        return BASE_ALLOWANCE, None
    if name is None:  # the allowance was deleted; its rows keep its id
        return str(allowance_id), "deleted allowance"
    return str(name), str(allowance_id)


def usage_summary(session: Session, *, since: datetime, until: datetime, by: str,
                  user_id: str | None = None) -> list[SummaryRow]:
    """Requests, tokens and credits in ``[since, until)`` summed by ``by`` (see GROUP_BY).

    Sorted by credits, largest first, then key. By ``group``, a user in two groups counts
    in both and users in none under ``(no group)``, so group sums may exceed the total.
    """
    (key, detail), source = _dimension(session, by)
    grouped = [key] if detail is None else [key, detail]
    query = (sa.select(key.label("key"), (sa.null() if detail is None else detail)
                       .label("detail"), *_sums())
             .select_from(source).where(*_range(since, until, user_id))
             .group_by(*grouped))
    rows = []
    for r in session.execute(query):
        k, d = (_allowance_key(r.key, r.detail) if by == "allowance"
                else (str(r.key), None if r.detail is None else str(r.detail)))
        rows.append(SummaryRow(
            key=k, detail=d, requests=int(r.requests), input_tokens=int(r.input_tokens),
            cached_input_tokens=int(r.cached_input_tokens),
            cache_write_tokens=int(r.cache_write_tokens), output_tokens=int(r.output_tokens),
            reasoning_tokens=int(r.reasoning_tokens), charged_micro=int(r.charged_micro)))
    return sorted(rows, key=lambda s: (-s.charged_micro, s.key, s.detail or ""))


def usage_total(session: Session, *, since: datetime, until: datetime,
                user_id: str | None = None) -> SummaryRow:
    """All usage in the range as one row (key ``total``)."""
    r = session.execute(sa.select(*_sums()).where(*_range(since, until, user_id))).one()
    return SummaryRow("total", None, int(r.requests), int(r.input_tokens),
                      int(r.cached_input_tokens), int(r.cache_write_tokens),
                      int(r.output_tokens), int(r.reasoning_tokens), int(r.charged_micro))


def _ledger_query(since: datetime, until: datetime,
                  user_id: str | None) -> sa.Select[tuple[object, ...]]:
    return (sa.select(*(log.c[name] for name in LEDGER_FIELDS))
            .where(*_range(since, until, user_id))
            .order_by(log.c.created_at, log.c.id))


def _ledger_row(r: sa.Row[tuple[object, ...]]) -> LedgerRow:
    return LedgerRow(**r._mapping)


def count_ledger_rows(session: Session, *, since: datetime, until: datetime,
                      user_id: str | None = None) -> int:
    return int(session.scalar(
        sa.select(sa.func.count()).select_from(log).where(*_range(since, until, user_id))
    ) or 0)


def ledger_rows(session: Session, *, since: datetime, until: datetime,
                user_id: str | None = None, offset: int = 0,
                limit: int | None = None) -> list[LedgerRow]:
    """Ledger rows in the range, oldest first (``offset``/``limit`` page through them)."""
    if offset < 0 or (limit is not None and limit < 0):
        raise InvalidInputError("offset and limit must not be negative")
    query = _ledger_query(since, until, user_id).offset(offset).limit(limit)
    return [_ledger_row(r) for r in session.execute(query)]


def iter_ledger_rows(session: Session, *, since: datetime, until: datetime,
                     user_id: str | None = None, batch: int = 1000) -> Iterator[LedgerRow]:
    """Every ledger row in the range, oldest first, fetched ``batch`` rows at a time."""
    result = session.execute(_ledger_query(since, until, user_id),
                             execution_options={"yield_per": batch})
    for r in result:
        yield _ledger_row(r)


def spent_by_allowance(session: Session, until: datetime | None = None) -> dict[str, int]:
    """Micro-credits charged to each sponsored allowance (by id string), before ``until``."""
    q = (sa.select(log.c.sponsored_allowance_id, sa.func.sum(log.c.charged_micro))
         .where(log.c.sponsored_allowance_id.is_not(None))
         .group_by(log.c.sponsored_allowance_id))
    if until is not None:
        q = q.where(log.c.created_at < until)
    return {str(aid): int(total or 0) for aid, total in session.execute(q)}


def allowance_spent(session: Session, allowance_id: uuid.UUID) -> int:
    """Micro-credits charged to a sponsored allowance since its creation."""
    return int(session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(log.c.charged_micro), 0))
        .where(log.c.sponsored_allowance_id == allowance_id)
    ) or 0)
