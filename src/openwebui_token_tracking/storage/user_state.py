"""A user's own-allowance terms in one round trip.

Admission and the balance check read, in one statement, everything that shapes the
user's own limits: each credit group they are in (as a direct member or through a
linked Open WebUI group, each group once), the spend caps of the base and of those
groups, and, for the balance, the counters. The statement is a ``UNION ALL`` of tagged
rows:

- ``g``: a credit group: name, allowance, rate-limit overrides, team budget (and its
  counter)
- ``c``: a spend cap of the base or of one of the groups (and the user's counter for it)
- ``u``: the user's window counter and rate counter (balance only)

Statements are built once per dialect, shape of Open WebUI's group tables and purpose.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..accounting.limits import effective_caps, most_generous
from .openwebui_groups import GroupTables, group_tables, user_openwebui_groups
from .schema import BudgetCounter, CreditGroup, CreditGroupUser, RateCounter, SpendCap
from .scopes import GROUP_TOTAL, MODEL_CAP, PROVIDER_CAP, USER

_groups = cast(sa.Table, CreditGroup.__table__)
_members = cast(sa.Table, CreditGroupUser.__table__)
_caps = cast(sa.Table, SpendCap.__table__)
_counter = cast(sa.Table, BudgetCounter.__table__)
_rate = cast(sa.Table, RateCounter.__table__)


def group_subject(group_id: uuid.UUID) -> str:
    """The ``group_total`` counter subject of a credit group: its id as 32 hex digits."""
    return group_id.hex


def _hex_id(dialect: str) -> sa.ColumnElement[str]:
    """``group_subject`` in SQL (SQLite stores a UUID as its 32 hex digits already)."""
    as_text = sa.cast(_groups.c.id, sa.String)
    return sa.func.replace(as_text, "-", "") if dialect == "postgresql" else as_text


@dataclass(frozen=True)
class GroupTerms:
    id: uuid.UUID
    name: str
    max_credit: int
    requests_per_minute: int | None
    tokens_per_minute: int | None
    total_credit_limit: int | None
    total_spent_micro: int | None = None
    """The team budget's counter (balance only; None: no counter yet this window)."""
    total_reserved_micro: int | None = None


@dataclass(frozen=True)
class CapTerms:
    group_id: uuid.UUID | None
    scope: str
    target: str
    credit_limit: int
    spent_micro: int | None = None
    """The user's counter for this cap (balance only; None: no counter yet)."""
    reserved_micro: int | None = None


@dataclass(frozen=True)
class RateState:
    minute_start: int
    requests: int
    tokens: int


@dataclass(frozen=True)
class UserTerms:
    groups: tuple[GroupTerms, ...]
    caps: tuple[CapTerms, ...]
    spent_micro: int | None = None
    """The user's window counter (balance only; None: no counter yet this window)."""
    reserved_micro: int | None = None
    rate: RateState | None = None

    @property
    def group_allowance(self) -> int:
        """Whole credits the user's groups add to the base allowance."""
        return sum(g.max_credit for g in self.groups)

    def rate_limits(self, requests_default: int | None, tokens_default: int | None
                    ) -> tuple[int | None, int | None]:
        """(requests, tokens) per minute: a group's override, else the default."""
        return (most_generous(requests_default, (g.requests_per_minute for g in self.groups)),
                most_generous(tokens_default, (g.tokens_per_minute for g in self.groups)))

    def effective_caps(self) -> dict[tuple[str, str], CapTerms]:
        """The cap in force per (scope, target), as whole credits."""
        base = {(c.scope, c.target): c.credit_limit for c in self.caps if c.group_id is None}
        by_group: dict[uuid.UUID, dict[tuple[str, str], int]] = {}
        for c in self.caps:
            if c.group_id is not None:
                by_group.setdefault(c.group_id, {})[(c.scope, c.target)] = c.credit_limit
        chosen = effective_caps(base, by_group.values())
        sample = {(c.scope, c.target): c for c in self.caps}
        return {key: CapTerms(None, key[0], key[1], value, sample[key].spent_micro,
                              sample[key].reserved_micro)
                for key, value in sorted(chosen.items())}


def _cast_null(type_: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
    return sa.cast(sa.null(), type_)


def _counter_value(col: sa.Column[int], scope: sa.ColumnElement[str],
                   subject: sa.ColumnElement[str]) -> sa.ColumnElement[Any]:
    return (sa.select(col).where(_counter.c.scope == scope, _counter.c.subject == subject,
                                 _counter.c.window_start == sa.bindparam("k_window"))
            .scalar_subquery())


def build_statement(dialect: str, kind: GroupTables, *, balance: bool) -> sa.CompoundSelect:
    """The tagged-rows statement. Binds ``user_id``; admission also ``model_id`` and
    ``provider`` (only the caps on them are read); balance also ``k_window`` (the budget
    window key) for the counters."""
    big, uid = sa.BigInteger(), sa.bindparam("user_id", type_=sa.String)
    direct = sa.select(_members.c.credit_group_id).where(_members.c.user_id == uid)
    mine: sa.ColumnElement[bool] = _groups.c.id.in_(direct)
    if kind is not GroupTables.NONE:
        owui = user_openwebui_groups(kind)
        mine = sa.or_(mine, _groups.c.openwebui_group_id.in_(sa.select(owui.c.gid)))
    null_big = _cast_null(big)
    total_cols: list[sa.ColumnElement[Any]]
    if balance:
        total_cols = [
            sa.case((_groups.c.total_credit_limit.is_not(None), _counter_value(
                col, sa.literal_column(f"'{GROUP_TOTAL}'"), _hex_id(dialect))))
            for col in (_counter.c.spent_micro, _counter.c.reserved_micro)]
    else:
        total_cols = [null_big, null_big]
    group_rows: sa.Select[Any] = sa.select(
        sa.literal_column("'g'").label("tag"), _groups.c.id.label("gid"),
        _cast_null(sa.String()).label("scope"), _groups.c.name.label("target"),
        _groups.c.max_credit.label("n1"), _groups.c.requests_per_minute.label("n2"),
        _groups.c.tokens_per_minute.label("n3"), _groups.c.total_credit_limit.label("n4"),
        total_cols[0].label("n5"), total_cols[1].label("n6"),
    ).where(mine)
    cap_owner = sa.or_(_caps.c.credit_group_id.is_(None),
                       _caps.c.credit_group_id.in_(sa.select(_groups.c.id).where(mine)))
    cap_counters: list[sa.ColumnElement[Any]]
    if balance:
        subject = uid + sa.literal_column("':'") + _caps.c.target
        cap_counters = [_counter_value(col, _caps.c.scope, subject)
                        for col in (_counter.c.spent_micro, _counter.c.reserved_micro)]
        cap_filter = cap_owner
    else:
        cap_counters = [null_big, null_big]
        cap_filter = sa.and_(cap_owner, sa.or_(
            sa.and_(_caps.c.scope == MODEL_CAP, _caps.c.target == sa.bindparam("model_id")),
            sa.and_(_caps.c.scope == PROVIDER_CAP,
                    _caps.c.target == sa.bindparam("provider"))))
    cap_rows: sa.Select[Any] = sa.select(
        sa.literal_column("'c'"), _caps.c.credit_group_id, _caps.c.scope, _caps.c.target,
        _caps.c.credit_limit, cap_counters[0], cap_counters[1], null_big, null_big, null_big,
    ).where(cap_filter)
    parts: list[sa.Select[Any]] = [group_rows, cap_rows]
    if balance:
        own = [_counter_value(col, sa.literal_column(f"'{USER}'"), uid)
               for col in (_counter.c.spent_micro, _counter.c.reserved_micro)]
        rate = [sa.select(col).where(_rate.c.user_id == uid).scalar_subquery()
                for col in (_rate.c.minute_start, _rate.c.requests, _rate.c.tokens)]
        parts.append(sa.select(
            sa.literal_column("'u'"), _cast_null(sa.Uuid()), _cast_null(sa.String()),
            _cast_null(sa.String()), *own, *rate, null_big))
    return sa.union_all(*parts)


_statements: dict[tuple[str, GroupTables, bool], sa.CompoundSelect] = {}


def _statement(session: Session, balance: bool) -> sa.CompoundSelect:
    dialect = session.get_bind().dialect.name
    key = (dialect, group_tables(session), balance)
    stmt = _statements.get(key)
    if stmt is None:
        stmt = _statements[key] = build_statement(dialect, key[1], balance=balance)
    return stmt


def _int(value: object) -> int | None:
    return None if value is None else int(cast(int, value))


def _fold(rows: Iterable[Any]) -> UserTerms:
    groups, caps = [], []
    own: tuple[int | None, int | None] = (None, None)
    rate = None
    for tag, gid, scope, target, n1, n2, n3, n4, n5, n6 in rows:
        if tag == "g":
            groups.append(GroupTerms(cast(uuid.UUID, gid), str(target), int(n1 or 0),
                                     _int(n2), _int(n3), _int(n4), _int(n5), _int(n6)))
        elif tag == "c":
            caps.append(CapTerms(cast(uuid.UUID | None, gid), str(scope), str(target),
                                 int(n1 or 0), _int(n2), _int(n3)))
        else:
            own = (_int(n1), _int(n2))
            if n3 is not None:
                rate = RateState(int(n3), int(n4 or 0), int(n5 or 0))
    return UserTerms(tuple(groups), tuple(caps), own[0], own[1], rate)


def admission_terms(session: Session, user_id: str, provider: str, model_id: str
                    ) -> UserTerms:
    """The user's groups and the caps on this model and provider (no counters)."""
    rows = session.execute(_statement(session, False),
                           {"user_id": user_id, "model_id": model_id, "provider": provider})
    return _fold(rows)


def balance_terms(session: Session, user_id: str, window_key: int) -> UserTerms:
    """The user's groups, every cap that applies and the counters of this window."""
    rows = session.execute(_statement(session, True),
                           {"user_id": user_id, "k_window": window_key})
    return _fold(rows)
