"""PostgreSQL: admission and settlement of a request with one limit, each in one
atomic statement.

Most requests hold their estimate on a single counter (the user's own allowance: no
team budget, spend cap, capped key or rate limit). For them the conditional write and
the reservation row need no transaction around them::

    WITH held AS (
        UPDATE token_tracking_budget_counter
           SET reserved_micro = reserved_micro + :amount, limit_micro = :cap
         WHERE <scope, subject, window>
           AND spent_micro + reserved_micro + :amount <= :cap
           AND NOT EXISTS (SELECT 1 FROM token_tracking_reservation WHERE id = :id)
        RETURNING 1)
    INSERT INTO token_tracking_reservation SELECT :id, ... WHERE EXISTS (SELECT 1 FROM held)
    ON CONFLICT DO NOTHING RETURNING id

run on its own (autocommit) after the terms were read: two round trips instead of five
(``BEGIN``, terms, ``INSERT``, ``UPDATE``, ``COMMIT``). The statement is atomic, and
PostgreSQL re-checks the limit on the locked counter row as for every admission. It
writes nothing unless both parts succeed: when the counter is missing, the limit is
reached, or the reservation id is taken (an earlier try of the same admission
committed), nothing was written and the caller takes the transactional path
(``ledger.hold``), which creates counters, words refusals and finds earlier tries.

Settling such a reservation is likewise one statement (``settle_at_once``): delete the
reservation, insert the ledger row (dropped if its chat message was already charged),
move its estimate from reserved to spent on the counter, and return what the budget
alerts need. It applies only to a reservation that holds nothing but the user's
existing counter (anything else is settled by ``ledger.settle`` in a transaction). An
alert the charge triggers is then recorded in a transaction of its own: as in
``alerts.note_spend``, an alert may be lost, never the charge.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors

from ..accounting.alerts import crossed_thresholds
from ..accounting.pricing import Price, charge
from ..accounting.usage import Usage
from . import alerts
from .counters import USER, CounterKey, counter, usage_log
from .ledger import STATUSES, Admitted, Plan, reservation_table
from .openwebui_groups import GroupTables
from .prepared import run
from .user_state import statement_for, terms_digest


@functools.cache
def statement() -> sa.Select[tuple[int, int]]:
    """The one-limit admission (see the module's doc); values: ``params(plan)``."""
    return _admission()


TERMS_PARAMS = ("user_id", "model_id", "provider", "api_key_id", "at")
"""What the admission terms statement binds; ``guarded_statement`` binds them ``t_...``."""


@functools.cache
def guarded_statement(kind: GroupTables) -> sa.Select[tuple[int, int, str]]:
    """``statement()`` for a plan made from terms read earlier: it holds only while the
    user's terms still have the digest they were read with (``terms_fp``, from
    ``user_state.fingerprinted``), computed in the same statement, so a change to any of
    them (a limit, a group or membership, a cap, the price in force) is never missed.
    Values: ``params(plan)``, the terms' values as ``t_user_id``, ... (``TERMS_PARAMS``)
    and ``terms_fp``; it answers (held, inserted, the digest now)."""
    terms = cast(sa.CompoundSelect, visitors.replacement_traverse(
        statement_for("postgresql", kind, balance=False), {}, _prefixed))
    digest = terms_digest(terms.cte("tt_terms"))
    return _admission(digest == sa.bindparam("terms_fp", type_=sa.String), digest)


def _prefixed(element: visitors.ExternallyTraversible, **kw: Any
              ) -> visitors.ExternallyTraversible | None:
    if isinstance(element, sa.BindParameter) and element.key in TERMS_PARAMS:
        return sa.bindparam(f"t_{element.key}", type_=element.type)
    return None


def _admission(guard: sa.ColumnElement[bool] | None = None,
               digest: sa.ScalarSelect[str] | None = None) -> Any:
    res = reservation_table
    held = (
        sa.update(counter)
        .where(counter.c.scope == sa.bindparam("k_scope"),
               counter.c.subject == sa.bindparam("k_subject"),
               counter.c.window_start == sa.bindparam("k_window"),
               counter.c.spent_micro + counter.c.reserved_micro
               + sa.bindparam("amount", type_=sa.BigInteger)
               <= sa.bindparam("cap", type_=sa.BigInteger),
               ~sa.exists().where(res.c.id == sa.bindparam("id", type_=res.c.id.type)),
               *([] if guard is None else [guard]))
        .values(reserved_micro=counter.c.reserved_micro
                + sa.bindparam("amount", type_=sa.BigInteger),
                limit_micro=sa.bindparam("cap", type_=sa.BigInteger))
        .returning(counter.c.scope)
        .cte("held")
    )
    # Typed: a parameter in a SELECT list is otherwise read as text.
    values = sa.select(*[sa.cast(sa.bindparam(c.name, type_=c.type), c.type)
                         for c in res.columns]).where(sa.exists(sa.select(held.c.scope)))
    inserted = (
        postgresql.insert(res).from_select([c.name for c in res.columns], values)
        .on_conflict_do_nothing().returning(res.c.id).cte("inserted")
    )
    return sa.select(
        sa.select(sa.func.count()).select_from(held).scalar_subquery().label("held"),
        sa.select(sa.func.count()).select_from(inserted).scalar_subquery().label("inserted"),
        *([] if digest is None else [digest.label("terms_fp")]))


def hold_at_once(session: Session, plan: Plan) -> Admitted | None:
    """Hold ``plan``'s estimate on its only limit and write its reservation, in one
    statement; None when nothing was written (see the module's doc). ``session`` runs
    each statement on its own (autocommit), on PostgreSQL."""
    values = params(plan)
    if values is None:
        return None
    return admitted(plan, run(session, statement(), values).one())


def params(plan: Plan) -> dict[str, object] | None:
    """The values of ``statement()`` for ``plan``; None when it has more than one limit
    to hold (or none)."""
    limit = plan.one_hold
    if limit is None:
        return None
    key = limit.key
    return {**plan.row, "k_scope": key.scope, "k_subject": key.subject,
            "k_window": key.window_start, "amount": plan.estimate_micro,
            "cap": limit.limit_micro}


def admitted(plan: Plan, row: Any) -> Admitted | None:
    """The admission, if ``statement()`` answered ``row`` = (held, inserted) = (1, 1)."""
    held, inserted = cast(tuple[int, int], tuple(row)[:2])
    return plan.admitted() if held and inserted else None


@functools.cache
def settle_statement() -> sa.Select[Any]:
    """The one-statement settlement (see the module's doc); values: ``settle_params``."""
    res, log = reservation_table, usage_log
    own_counter = sa.and_(counter.c.scope == USER, counter.c.subject == res.c.user_id,
                          counter.c.window_start == res.c.window_start)
    taken = (
        sa.delete(res)
        .where(res.c.id == sa.bindparam("rid"), res.c.held_counters.is_(None),
               res.c.api_key_window.is_(None), res.c.rate_minute.is_(None),
               res.c.sponsored_allowance_id.is_(None),
               sa.exists().where(own_counter))
        .returning(res.c.user_id, res.c.provider, res.c.model_id, res.c.created_at,
                   res.c.window_start, res.c.estimate_micro, res.c.chat_id,
                   res.c.message_id, res.c.task, res.c.api_key_id, res.c.entry_point)
        .cte("taken")
    )
    given = {name: sa.cast(sa.bindparam(name, type_=log.c[name].type), log.c[name].type)
             for name in ("input_tokens", "cached_input_tokens", "cache_write_tokens",
                          "output_tokens", "reasoning_tokens", "charged_micro", "status")}
    columns = ["created_at", "user_id", "provider", "model_id", *given, "chat_id",
               "message_id", "task", "api_key_id", "entry_point"]
    logged = (
        postgresql.insert(log).from_select(columns, sa.select(
            taken.c.created_at, taken.c.user_id, taken.c.provider, taken.c.model_id,
            *given.values(), taken.c.chat_id, taken.c.message_id, taken.c.task,
            taken.c.api_key_id, taken.c.entry_point))
        .on_conflict_do_nothing(index_elements=["chat_id", "message_id"])  # charged once
        .returning(log.c.id).cte("logged")
    )
    charged = sa.case((sa.exists(sa.select(logged.c.id)), given["charged_micro"]),
                      else_=sa.literal(0, sa.BigInteger))
    spent = (
        sa.update(counter)
        .where(counter.c.scope == USER, counter.c.subject == taken.c.user_id,
               counter.c.window_start == taken.c.window_start)
        .values(spent_micro=counter.c.spent_micro + charged,
                reserved_micro=counter.c.reserved_micro - taken.c.estimate_micro)
        .returning(counter.c.spent_micro, counter.c.limit_micro,
                   alerts.THRESHOLDS_SETTING.label("thresholds"))
        .cte("spent")
    )
    return (sa.select(taken.c.user_id, taken.c.created_at, taken.c.window_start,
                      sa.select(logged.c.id).scalar_subquery().label("row_id"),
                      spent.c.spent_micro, spent.c.limit_micro, spent.c.thresholds)
            .select_from(taken.join(spent, sa.true(), isouter=True)))


@dataclass(frozen=True)
class Settled:
    """A settlement done in one statement: the ledger row (None: the chat message was
    already charged) and what the budget alerts need."""

    row_id: int | None
    charged_micro: int
    key: CounterKey
    created_at: datetime
    spent_micro: int
    limit_micro: int | None
    thresholds: str | None

    def crossed_alerts(self) -> bool:
        """Whether the charge crossed an alert threshold (``Accountant.note_alerts``)."""
        return bool(self.charged_micro) and bool(crossed_thresholds(
            self.spent_micro - self.charged_micro, self.spent_micro, self.limit_micro,
            alerts.thresholds_of(self.thresholds)))


def settle_at_once(session: Session, reservation_id: str, usage: Usage, status: str,
                   price: Price) -> Settled | None:
    """Settle a reservation that holds only the user's counter, in one statement; None
    when nothing was done: the reservation holds more (or is gone), for ``ledger.settle``
    to handle in a transaction. ``session`` runs each statement on its own."""
    values = settle_params(reservation_id, usage, status, price)
    if values is None:
        return None
    return settled(run(session, settle_statement(), values).first(), values)


def settle_params(reservation_id: str, usage: Usage, status: str, price: Price
                  ) -> dict[str, Any] | None:
    """The values of ``settle_statement()``; None for a status ``ledger.settle`` refuses."""
    if status not in STATUSES:
        return None  # ledger.settle says why
    return {"rid": reservation_id, "input_tokens": usage.input_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "output_tokens": usage.output_tokens, "reasoning_tokens": usage.reasoning_tokens,
            "charged_micro": charge(usage, price).micro_credits, "status": status}


def settled(row: Any, values: dict[str, Any]) -> Settled | None:
    """What ``settle_statement()`` did, from its row (None: nothing)."""
    if row is None:
        return None
    charged = int(values["charged_micro"]) if row.row_id is not None else 0
    return Settled(None if row.row_id is None else int(row.row_id), charged,
                   CounterKey(USER, row.user_id, int(row.window_start)), row.created_at,
                   int(row.spent_micro), None if row.limit_micro is None
                   else int(row.limit_micro), row.thresholds)
