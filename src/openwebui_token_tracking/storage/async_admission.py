"""PostgreSQL: a one-limit admission (and its settlement) from the event loop, without a
worker thread.

The gateway serves many streams on one event loop. An admission in a worker thread
waits twice for that loop (handing the work over and back) and, after each of its round
trips, for the interpreter the loop holds; with 8 streams in flight that tripled the
admission's time. Here a one-limit admission runs on psycopg's async connections,
awaited on the loop: the first for a user, model and key reads the terms with their digest
(``user_state.fingerprinted``) and holds (``at_once.statement``); the next ones plan from
those terms and hold in one statement that checks the digest is unchanged
(``at_once.guarded_statement``; when it changed, the terms are read again). Settling
such a reservation is one statement too (``at_once.settle_statement``).

Only that path: whenever it cannot admit by itself (a first request in a window, a
refusal, several limits, an unpriced model id, any error), ``admit`` returns None or
raises, and the caller admits in a worker thread as every entry point does, with the
same reservation id, so a statement that was executed but whose answer was lost is
found there, never held twice. Likewise a settlement it cannot do goes to the worker
thread, where one whose answer was lost finds nothing left to charge. Connections:
autocommit, at most ``size`` per event loop, opened on first use, with the same lock
timeout as the engine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..accounting.pricing import Price
from ..accounting.usage import Usage
from . import at_once, ledger
from .engine import LOCK_WAIT_S
from .ledger import Admitted
from .openwebui_groups import GroupTables, group_tables, known_group_tables
from .prepared import prepared_for
from .user_state import UserTerms, fingerprinted, fold_terms, terms_fingerprint

if TYPE_CHECKING:  # psycopg comes with the postgres extra; imported when connecting
    import psycopg


class _Pool:
    """Idle connections of one event loop and a bound on how many are open."""

    def __init__(self, size: int) -> None:
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.slots = asyncio.Semaphore(size)


class AsyncAdmissions:
    """One-limit admissions on PostgreSQL from the event loop (see the module's doc)."""

    def __init__(self, engine: Engine, size: int = 8) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("async admission runs on PostgreSQL only")
        self.engine = engine
        self.size = size
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = \
            weakref.WeakKeyDictionary()
        self._admit = prepared_for(engine.dialect, at_once.statement())
        self._terms: dict[tuple[str, str, str, str | None, GroupTables],
                          tuple[UserTerms, str]] = {}
        """Terms read for (user, provider, model, key, group tables), with their digest:
        the next admission plans from them and holds only if the digest is unchanged."""
        self._settle = prepared_for(engine.dialect, at_once.settle_statement())

    async def _group_tables(self) -> GroupTables:
        """The shape of Open WebUI's group tables, as the worker-thread path reads it;
        when their cached probe is due, probed again in a worker thread (it inspects the
        database)."""
        kind = known_group_tables(self.engine)
        return kind if kind is not None else await asyncio.to_thread(self._probe)

    def _probe(self) -> GroupTables:
        with Session(self.engine) as session:
            return group_tables(session)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        import psycopg

        args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        conn = await psycopg.AsyncConnection.connect(*args, **kwargs, autocommit=True)
        await conn.execute(f"SET lock_timeout = {int(LOCK_WAIT_S * 1000)}")
        return conn

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of the running loop's pool; closed instead of kept if the work
        on it failed."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Pool(self.size)
        async with pool.slots:
            conn = pool.idle.pop() if pool.idle else await self._connect()
            healthy = False
            try:
                yield conn
                healthy = True
            finally:
                if healthy and not conn.closed:
                    pool.idle.append(conn)
                else:
                    await _close(conn)

    async def admit(self, *, user_id: str, provider: str, model_id: str, estimate: Usage,
                    now: datetime, reservation_id: str, api_key_id: str | None = None,
                    entry_point: str | None = None, chat_id: str | None = None,
                    message_id: str | None = None) -> Admitted | None:
        """Admit on the user's own allowance, or None (admit in a worker thread instead,
        with the same ``reservation_id``): one statement when the user's terms were read
        before (and are unchanged), else two."""
        kind = await self._group_tables()
        key = (user_id, provider, model_id, api_key_id, kind)
        terms_of = {"user_id": user_id, "model_id": model_id, "provider": provider,
                    "api_key_id": api_key_id, "at": now}

        def planned(terms: UserTerms) -> tuple[ledger.Plan, dict[str, object]] | None:
            """The plan and its one-statement values; None: not for this path."""
            try:
                plan = ledger.plan(
                    _NO_SESSION, user_id=user_id, provider=provider, model_id=model_id,
                    estimate=estimate, now=now, api_key_id=api_key_id,
                    entry_point=entry_point, chat_id=chat_id, message_id=message_id,
                    reservation_id=reservation_id, may_write=False, terms=terms)
            except ledger.NeedsTransaction:
                return None
            values = at_once.params(plan)
            return None if values is None else (plan, values)

        # one cursor for the statements below: all prepared for this dialect, so the same
        # kind of cursor (psycopg's raw one) runs each
        async with self._connection() as conn, self._admit.cursor(conn) as cur:
            known = self._terms.get(key)
            if known is not None:
                ready = planned(known[0])
                if ready is None:
                    return None
                plan, values = ready
                stmt = prepared_for(self.engine.dialect, at_once.guarded_statement(kind))
                await cur.execute(stmt.driver_sql, stmt.driver_args({
                    **values, "terms_fp": known[1],
                    **{f"t_{name}": value for name, value in terms_of.items()}}))
                row = await cur.fetchone()
                if row is not None and row[2] == known[1]:
                    return at_once.admitted(plan, row)
                self._terms.pop(key, None)  # the terms changed: read them again
            stmt = prepared_for(self.engine.dialect, fingerprinted(kind))
            await cur.execute(stmt.driver_sql, stmt.driver_args(terms_of))
            rows = stmt.rows(await cur.fetchall())
            terms, digest = fold_terms(rows), terms_fingerprint(rows)
            if digest is not None:
                if len(self._terms) >= MAX_CACHED_TERMS:
                    self._terms.clear()
                self._terms[key] = (terms, digest)
            ready = planned(terms)
            if ready is None:
                return None
            plan, values = ready
            await cur.execute(self._admit.driver_sql, self._admit.driver_args(values))
            return at_once.admitted(plan, await cur.fetchone())

    async def settle(self, reservation_id: str, usage: Usage, status: str, price: Price
                     ) -> at_once.Settled | None:
        """Settle a reservation that holds only the user's counter in one statement
        (``at_once.settle_at_once``), or None (settle in a worker thread instead)."""
        values = at_once.settle_params(reservation_id, usage, status, price)
        if values is None:
            return None
        stmt = self._settle
        async with self._connection() as conn, stmt.cursor(conn) as cur:
            await cur.execute(stmt.driver_sql, stmt.driver_args(values))
            rows = stmt.rows(await cur.fetchall())
            return at_once.settled(rows[0] if rows else None, values)

    async def aclose(self) -> None:
        """Close the idle connections of the running loop's pool."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        while pool is not None and pool.idle:
            await _close(pool.idle.pop())


async def _close(conn: psycopg.AsyncConnection[Any]) -> None:
    import psycopg

    try:
        await conn.close()
    except psycopg.Error:
        pass


MAX_CACHED_TERMS = 10_000

_NO_SESSION: Any = None
"""``ledger.plan`` with the terms given and ``may_write=False`` reads nothing."""
