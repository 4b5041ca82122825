"""PostgreSQL: an admission with one limit to hold, in one atomic statement.

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
"""

from __future__ import annotations

import functools
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from .counters import counter
from .ledger import Admitted, Plan, reservation_table
from .prepared import run


@functools.cache
def _statement() -> sa.Select[tuple[int, int]]:
    res = reservation_table
    held = (
        sa.update(counter)
        .where(counter.c.scope == sa.bindparam("k_scope"),
               counter.c.subject == sa.bindparam("k_subject"),
               counter.c.window_start == sa.bindparam("k_window"),
               counter.c.spent_micro + counter.c.reserved_micro
               + sa.bindparam("amount", type_=sa.BigInteger)
               <= sa.bindparam("cap", type_=sa.BigInteger),
               ~sa.exists().where(res.c.id == sa.bindparam("id", type_=res.c.id.type)))
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
        sa.select(sa.func.count()).select_from(inserted).scalar_subquery().label("inserted"))


def hold_at_once(session: Session, plan: Plan) -> Admitted | None:
    """Hold ``plan``'s estimate on its only limit and write its reservation, in one
    statement; None when nothing was written (see the module's doc). ``session`` runs
    each statement on its own (autocommit), on PostgreSQL."""
    limit = plan.one_hold
    if limit is None:
        return None
    key = limit.key
    row = run(session, _statement(), {
        **plan.row, "k_scope": key.scope, "k_subject": key.subject,
        "k_window": key.window_start, "amount": plan.estimate_micro,
        "cap": limit.limit_micro}).one()
    held, inserted = cast(tuple[int, int], tuple(row))
    if held and inserted:
        return plan.admitted()
    return None
