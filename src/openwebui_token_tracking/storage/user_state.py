"""A user's own-allowance terms and the settings, in one round trip.

Admission and the balance check read, in one statement, everything that shapes the
user's own limits: the settings (base allowance, window, default rate limits), each
credit group the user is in (as a direct member or through a linked Open WebUI group,
each group once), the spend caps of the base and of those groups, and, for the balance,
the counters. The statement is a ``UNION ALL`` of tagged rows:

- ``s``: the stored settings, as one JSON object
- ``g``: a credit group: name, allowance, rate-limit overrides, team budget (and its
  counter)
- ``c``: a spend cap of the base or of one of the groups (and the user's counter for it)
- ``u``: the user's window counter and rate counter (balance only)
- ``k``: the cap of the API key the request came with, if it has one (admission only)
- ``p``: the requested model's price in force, if it has one (admission only)
- ``f``: on PostgreSQL, for the event loop's admissions (``fingerprinted``), a digest of
  all the other rows: an admission planned from terms read earlier holds only while the
  terms still have that digest (``storage.at_once.guarded_statement``)

Counters are joined as each key's latest window (an index seek on the primary key), so
the statement does not depend on the window the settings define; a counter of another
window than the current one counts as missing.

Statements are compiled once per dialect, shape of Open WebUI's group tables and purpose
(``prepared``: the check's cost is mostly Python around the query).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from ..accounting.limits import effective_caps, most_generous
from ..accounting.pricing import Price
from .openwebui_groups import GroupTables, group_tables, user_openwebui_groups
from .prepared import as_uuid, run
from .prices import PRICE_COLUMNS, PriceInput, price_in_force
from .schema import (
    BaseSetting,
    BudgetCounter,
    CreditGroup,
    CreditGroupUser,
    KeyBudget,
    RateCounter,
    SpendCap,
)
from .scopes import GROUP_TOTAL, MODEL_CAP, PROVIDER_CAP, USER
from .types import UTCDateTime

_groups = cast(sa.Table, CreditGroup.__table__)
_members = cast(sa.Table, CreditGroupUser.__table__)
_caps = cast(sa.Table, SpendCap.__table__)
_counter = cast(sa.Table, BudgetCounter.__table__)
_rate = cast(sa.Table, RateCounter.__table__)
_settings = cast(sa.Table, BaseSetting.__table__)
_key_budgets = cast(sa.Table, KeyBudget.__table__)


def group_subject(group_id: uuid.UUID) -> str:
    """The ``group_total`` counter subject of a credit group: its id as 32 hex digits."""
    return group_id.hex


def settings_json(dialect: str) -> sa.ColumnElement[str]:
    """Every stored setting as one JSON object ``{key: value}`` (one row, not one per
    setting: settings are read before every request)."""
    key, value = _settings.c.setting_key, _settings.c.setting_value
    if dialect == "postgresql":
        return sa.cast(sa.func.json_object_agg(key, value), sa.Text)
    return sa.func.json_group_object(key, value)


def _hex_id(dialect: str) -> sa.ColumnElement[str]:
    """``group_subject`` in SQL (SQLite stores a UUID as its 32 hex digits already)."""
    as_text = sa.cast(_groups.c.id, sa.String)
    if dialect != "postgresql":
        return as_text
    return sa.func.replace(as_text, sa.literal_column("'-'"), sa.literal_column("''"))


@dataclass(frozen=True)
class Counter:
    """A counter's latest window (``window_start``) and its values."""

    window_start: int
    spent_micro: int
    reserved_micro: int

    def values_in(self, window_key: int) -> tuple[int | None, int | None]:
        """(spent, reserved) if this is the counter of window ``window_key``, else Nones."""
        if self.window_start != window_key:
            return None, None
        return self.spent_micro, self.reserved_micro


def parse_settings(target: object) -> dict[str, str]:
    """The settings of ``settings_json``'s JSON object (NULL: none stored)."""
    stored = json.loads(str(target)) if target else {}
    return {str(k): str(v) for k, v in stored.items() if v is not None}


def _counter_of(window: object, spent: object, reserved: object) -> Counter | None:
    if window is None:
        return None
    return Counter(int(cast(int, window)), int(cast(int, spent or 0)),
                   int(cast(int, reserved or 0)))


@dataclass(frozen=True)
class GroupTerms:
    id: uuid.UUID
    name: str
    max_credit: int
    requests_per_minute: int | None
    tokens_per_minute: int | None
    total_credit_limit: int | None
    total_counter: Counter | None = None
    """The team budget's counter (balance only)."""


@dataclass(frozen=True)
class CapTerms:
    group_id: uuid.UUID | None
    scope: str
    target: str
    credit_limit: int
    counter: Counter | None = None
    """The user's counter for this cap (balance only)."""


@dataclass(frozen=True)
class RateState:
    minute_start: int
    requests: int
    tokens: int


@dataclass(frozen=True)
class UserTerms:
    settings: dict[str, str]
    """Every stored setting, unvalidated (``settings_store.budget_settings_from``)."""
    groups: tuple[GroupTerms, ...]
    caps: tuple[CapTerms, ...]
    counter: Counter | None = None
    """The user's own window counter (balance only)."""
    rate: RateState | None = None
    key_cap_micro: int | None = None
    """The cap of the request's API key (admission only; None: not capped)."""
    price: Price | None = None
    """The model's price in force (admission only; None: not priced, or not listed)."""

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
        return {key: CapTerms(None, key[0], key[1], value, sample[key].counter)
                for key, value in sorted(chosen.items())}


def _cast_null(type_: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
    return sa.cast(sa.null(), type_)


def _latest(source: sa.FromClause, scope: sa.ColumnElement[str],
            subject: sa.ColumnElement[str], name: str,
            also: sa.ColumnElement[bool] | None = None
            ) -> tuple[sa.FromClause, list[sa.ColumnElement[Any]]]:
    """``source`` left-joined to the key's latest counter (an index seek on the primary
    key), and that counter's (window_start, spent, reserved) columns."""
    found, latest = _counter.alias(name), _counter.alias(f"{name}_max")
    newest = (sa.select(sa.func.max(latest.c.window_start))
              .where(latest.c.scope == scope, latest.c.subject == subject).scalar_subquery())
    on = sa.and_(found.c.scope == scope, found.c.subject == subject,
                 found.c.window_start == newest)
    joined = source.outerjoin(found, on if also is None else sa.and_(also, on))
    return joined, [found.c.window_start, found.c.spent_micro, found.c.reserved_micro]


NUMBERS = 8
"""Integer columns of every row (``n1`` .. ``n8``), then the instant ``at``."""


def _row(tag: str, gid: sa.ColumnElement[Any] | None, scope: sa.ColumnElement[Any] | None,
         target: sa.ColumnElement[Any] | None, numbers: list[sa.ColumnElement[Any]],
         at: sa.ColumnElement[Any] | None = None) -> list[sa.ColumnElement[Any]]:
    """One tagged row's columns, NULLs where the row has no value (the first row's
    types and labels name the statement's columns)."""
    big, text = sa.BigInteger(), sa.String()
    cols: list[sa.ColumnElement[Any]] = [
        sa.literal_column(f"'{tag}'").label("tag"),
        (gid if gid is not None else _cast_null(sa.Uuid())).label("gid"),
        (scope if scope is not None else _cast_null(text)).label("scope"),
        (target if target is not None else _cast_null(text)).label("target")]
    padded = numbers + [_cast_null(big) for _ in range(NUMBERS - len(numbers))]
    cols += [n.label(f"n{i}") for i, n in enumerate(padded, 1)]
    cols.append((at if at is not None else _cast_null(UTCDateTime())).label("at"))
    return cols


def build_statement(dialect: str, kind: GroupTables, *, balance: bool) -> sa.CompoundSelect:
    """The tagged-rows statement. Binds ``user_id``; admission also ``model_id`` and
    ``provider`` (the price in force at ``at`` and only the caps on them are read) and
    ``api_key_id`` (may be None)."""
    uid = sa.bindparam("user_id", type_=sa.String)
    direct = sa.select(_members.c.credit_group_id).where(_members.c.user_id == uid)
    mine: sa.ColumnElement[bool] = _groups.c.id.in_(direct)
    if kind is not GroupTables.NONE:
        owui = user_openwebui_groups(kind)
        mine = sa.or_(mine, _groups.c.openwebui_group_id.in_(sa.select(owui.c.gid)))
    mine_ids = sa.select(_groups.c.id).where(mine).cte("tt_mine")
    setting_rows = sa.select(*_row("s", None, None, settings_json(dialect), [])
                             ).select_from(_settings)
    group_source: sa.FromClause = _groups
    total: list[sa.ColumnElement[Any]] = []
    if balance:
        group_source, total = _latest(_groups, sa.literal_column(f"'{GROUP_TOTAL}'"),
                                      _hex_id(dialect), "tt_total",
                                      _groups.c.total_credit_limit.is_not(None))
    group_rows = sa.select(*_row(
        "g", _groups.c.id, None, _groups.c.name,
        [_groups.c.max_credit, _groups.c.requests_per_minute, _groups.c.tokens_per_minute,
         _groups.c.total_credit_limit, *total]),
    ).select_from(group_source).where(_groups.c.id.in_(sa.select(mine_ids.c.id)))
    cap_filter: sa.ColumnElement[bool] = sa.or_(
        _caps.c.credit_group_id.is_(None),
        _caps.c.credit_group_id.in_(sa.select(mine_ids.c.id)))
    cap_source: sa.FromClause = _caps
    cap_counter: list[sa.ColumnElement[Any]] = []
    if balance:
        cap_source, cap_counter = _latest(
            _caps, _caps.c.scope, uid + sa.literal_column("':'") + _caps.c.target, "tt_cap")
    else:
        cap_filter = sa.and_(cap_filter, sa.or_(
            sa.and_(_caps.c.scope == MODEL_CAP, _caps.c.target == sa.bindparam("model_id")),
            sa.and_(_caps.c.scope == PROVIDER_CAP,
                    _caps.c.target == sa.bindparam("provider"))))
    cap_rows = sa.select(*_row(
        "c", _caps.c.credit_group_id, _caps.c.scope, _caps.c.target,
        [_caps.c.credit_limit, *cap_counter]),
    ).select_from(cap_source).where(cap_filter)
    parts: list[sa.Select[Any]] = [setting_rows, group_rows, cap_rows]
    if balance:
        one = sa.select(sa.literal_column("1").label("one")).subquery("tt_one")
        own_source, own = _latest(one, sa.literal_column(f"'{USER}'"), uid, "tt_own")
        own_source = own_source.outerjoin(_rate, _rate.c.user_id == uid)
        parts.append(sa.select(*_row(
            "u", None, None, None,
            [*own, _rate.c.minute_start, _rate.c.requests, _rate.c.tokens]),
        ).select_from(own_source))
    else:
        parts.append(sa.select(*_row("k", None, None, None, [_key_budgets.c.limit_micro]))
                     .where(_key_budgets.c.key_id == sa.bindparam("api_key_id",
                                                                  type_=sa.String)))
        price = price_in_force.subquery("tt_price")
        parts.append(sa.select(*_row(
            "p", None, None, None, [price.c[name] for name in PRICE_COLUMNS],
            price.c.effective_from)).select_from(price))
    return sa.union_all(*parts)


_statements: dict[tuple[str, GroupTables, bool], sa.CompoundSelect] = {}


def _statement(session: Session, balance: bool) -> sa.CompoundSelect:
    return statement_for(session.get_bind().dialect.name, group_tables(session), balance)


def statement_for(dialect: str, kind: GroupTables, balance: bool) -> sa.CompoundSelect:
    """The terms statement for a dialect and shape of Open WebUI's group tables, built
    once (``admission_terms`` runs it with ``balance=False``; its rows go to
    ``fold_terms``)."""
    key = (dialect, kind, balance)
    stmt = _statements.get(key)
    if stmt is None:
        stmt = _statements[key] = build_statement(dialect, kind, balance=balance)
    return stmt


FINGERPRINT = "f"


def terms_digest(rows: sa.CTE) -> sa.ScalarSelect[str]:
    """PostgreSQL: the md5 of the text of every row of the terms ``rows``, in a fixed
    order (any change to the settings, groups, memberships, caps, key cap or price in
    force changes it)."""
    text: sa.ColumnElement[str] = sa.literal_column(f"{rows.name}::text")
    agg = sa.func.string_agg(text, aggregate_order_by(sa.literal_column("','"), text))
    return (sa.select(sa.func.coalesce(sa.func.md5(agg), ""))
            .select_from(rows).scalar_subquery())


@functools.cache
def fingerprinted(kind: GroupTables) -> sa.CompoundSelect:
    """PostgreSQL: the admission terms statement plus its ``f`` row, whose target is
    ``terms_digest`` of the others, read in the same snapshot (``terms_fingerprint``)."""
    rows = statement_for("postgresql", kind, balance=False).cte("tt_terms")
    digest = sa.select(*_row(FINGERPRINT, None, None, terms_digest(rows), []))
    return sa.union_all(sa.select(rows), digest)


def terms_fingerprint(rows: Iterable[Any]) -> str | None:
    """The digest in the ``f`` row of ``fingerprinted``'s rows."""
    return next((str(row[3]) for row in rows if row[0] == FINGERPRINT), None)


def _int(value: object) -> int | None:
    return None if value is None else int(cast(int, value))


def fold_terms(rows: Iterable[Any]) -> UserTerms:
    """``UserTerms`` from the rows of the terms statement (``statement_for``)."""
    settings: dict[str, str] = {}
    groups, caps = [], []
    own = rate = key_cap = price = None
    for tag, gid, scope, target, n1, n2, n3, n4, n5, n6, n7, n8, at in rows:
        if tag == "s":
            settings = parse_settings(target)
        elif tag == "g":
            groups.append(GroupTerms(cast(uuid.UUID, as_uuid(gid)), str(target), int(n1 or 0),
                                     _int(n2), _int(n3), _int(n4), _counter_of(n5, n6, n7)))
        elif tag == "c":
            caps.append(CapTerms(as_uuid(gid), str(scope), str(target),
                                 int(n1 or 0), _counter_of(n2, n3, n4)))
        elif tag == "k":
            key_cap = _int(n1)
        elif tag == FINGERPRINT:
            continue
        elif tag == "p":
            price = PriceInput(*(_int(n) for n in (n1, n2, n3, n4, n5, n6, n7, n8))  # type: ignore[arg-type]
                               ).to_price(at)
        else:
            own = _counter_of(n1, n2, n3)
            if n4 is not None:
                rate = RateState(int(n4), int(n5 or 0), int(n6 or 0))
    return UserTerms(settings, tuple(groups), tuple(caps), own, rate, key_cap, price)


def admission_terms(session: Session, user_id: str, provider: str, model_id: str,
                    api_key_id: str | None = None, at: datetime | None = None) -> UserTerms:
    """The settings, the user's groups, the caps on this model and provider, the cap
    of the API key the request came with and the model's price in force at ``at``."""
    return fold_terms(run(session, _statement(session, False), {
        "user_id": user_id, "model_id": model_id, "provider": provider,
        "api_key_id": api_key_id, "at": at}).rows)


def balance_terms(session: Session, user_id: str) -> UserTerms:
    """The settings, the user's groups, every cap that applies and the latest counters."""
    return fold_terms(run(session, _statement(session, True), {"user_id": user_id}).rows)
