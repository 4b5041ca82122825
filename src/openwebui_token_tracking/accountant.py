"""The engine-bound entry to the ledger: one short transaction per operation.

Pipes, the CLI, the service and the 0.1.10-compatible wrappers all charge through an
``Accountant``. It owns transactions; the storage functions it calls take a session.
Its methods are synchronous: async callers run them with ``asyncio.to_thread``.

Every unit of work is retried after transient database failures within a bounded
budget (``storage.retry`` says when a retry is safe): a dropped connection once and at
once, a settlement with backoff for up to ``SETTLE_RETRY.deadline_s`` and then, if the
caller asks, in the background (``pending``).
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DataError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .accounting.limits import minute_window
from .accounting.money import micro_to_credits
from .accounting.pricing import Price
from .accounting.usage import Usage
from .errors import DatabaseError, InvalidInputError, TokenTrackingError
from .pending import PendingCharges
from .storage import alerts, balances, counters, ledger, refusals, scopes, sponsors
from .storage import at_once as at_once_module
from .storage import engine as engine_module
from .storage.engine import LOCK_WAIT_S, get_engine, read_only_options, redact, write_gate
from .storage.ledger import Admitted
from .storage.retry import CommitOutcomeUnknown, RetryPolicy, call_with_retry
from .storage.schema import SponsoredAllowance
from .storage.settings_store import BudgetSettings
from .storage.user_state import UserTerms

T = TypeVar("T")
logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The one place the clock is read (entry points pass it inward)."""
    return datetime.now(UTC)


@contextmanager
def translate_db_errors(url: str = "") -> Iterator[None]:
    """Map driver errors to ``DatabaseError`` at the boundary, never leaking a password."""
    try:
        yield
    except DataError as exc:
        # The database refused a value (a NUL byte in text, a number out of range):
        # bad input, not a broken database.
        cause = getattr(exc, "orig", None) or exc
        first_line = (str(cause).splitlines() or [""])[0]
        raise InvalidInputError(f"the database refused a value: {first_line}") from exc
    except SQLAlchemyError as exc:
        where = f" ({redact(url)})" if url else ""
        cause = getattr(exc, "orig", None) or exc
        first_line = (str(cause).splitlines() or [""])[0]
        raise DatabaseError(f"database error{where}: {type(cause).__name__}: {first_line}"
                            ) from exc


@dataclass(frozen=True)
class LimitState:
    """One limit as users see it: credits, not micro-credits."""

    scope: str
    limit: Decimal | None
    spent: Decimal
    reserved: Decimal
    remaining: Decimal | None
    window_start: datetime
    reset_at: datetime | None
    target: str | None = None
    """The capped model or provider (``model_cap``, ``provider_cap``), or the credit
    group of a team budget (``group_total``)."""


@dataclass(frozen=True)
class RateReport:
    """A user's rate limits (None: no limit) and what the current minute has used."""

    requests_per_minute: int | None
    tokens_per_minute: int | None
    requests: int
    tokens: int
    reset_at: datetime


@dataclass(frozen=True)
class BalanceReport:
    user_id: str
    limits: list[LimitState]
    allowance_name: str | None = None
    rate: RateReport | None = None
    """Rate limits of the user's own allowance (None under a sponsored allowance, or
    when no rate limit applies)."""

    @property
    def remaining(self) -> Decimal | None:
        """The binding (smallest) remaining amount over the limits that bind every
        request, None if unlimited (a spend cap binds only its model or provider)."""
        values = [s.remaining for s in self.limits
                  if s.remaining is not None and s.scope not in scopes.CAP_SCOPES]
        return min(values) if values else None

    @property
    def reset_at(self) -> datetime | None:
        values = [s.reset_at for s in self.limits if s.reset_at is not None]
        return min(values) if values else None


@contextmanager
def transaction(database_url: str | URL | None = None) -> Iterator[Session]:
    """One session in one transaction on the cached engine for ``database_url``.

    ``None`` means ``DATABASE_URL`` (or Open WebUI's SQLite default). Commits on success,
    rolls back on any error, so nothing is half-written.
    """
    engine = get_engine(database_url)
    with translate_db_errors(str(engine.url)), Session(engine, expire_on_commit=False) as s, \
            s.begin():
        yield s


ONCE_MORE = RetryPolicy(attempts=2, deadline_s=LOCK_WAIT_S)
"""Default: a unit that failed before COMMIT on a dropped or refused connection is tried
once more; one that waited ``LOCK_WAIT_S`` for a lock is not (the wait was the bound)."""
READ_RETRY = RetryPolicy(attempts=2, deadline_s=LOCK_WAIT_S, idempotent=True)
SETTLE_RETRY = RetryPolicy(attempts=4, deadline_s=3 * LOCK_WAIT_S, idempotent=True)
"""Settling and releasing are idempotent (the reservation row is deleted in the same
transaction), so they are retried even when a COMMIT's outcome is unknown."""
RECORD_RETRY = RetryPolicy(attempts=4, deadline_s=3 * LOCK_WAIT_S)
ADMIT_RETRY = RetryPolicy(attempts=2, deadline_s=LOCK_WAIT_S, idempotent=True)
"""Admission fails closed after one lock wait; its reservation id makes it idempotent."""


class Accountant:
    """Charges and admits requests against one database."""

    def __init__(self, engine_or_url: Engine | str | URL | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = (engine_or_url if isinstance(engine_or_url, Engine)
                       else get_engine(engine_or_url))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_only = read_only_options(self.engine)
        self._url = str(self.engine.url)
        self._write_gate = write_gate(self.engine)
        self._postgresql = self.engine.dialect.name == "postgresql"
        self._last_sweep: datetime | None = None
        self.clock = clock
        self.pending = PendingCharges()
        """Settlements queued after the database failed them (see ``settle``)."""

    def run(self, work: Callable[[Session], T], *, read_only: bool = False,
            autocommit: bool = False, retry: RetryPolicy = ONCE_MORE,
            what: str = "database work") -> T:
        """Run ``work`` in one transaction, translating database errors.

        ``read_only`` work reads without a transaction (each statement sees the latest
        committed state) and takes no write lock on SQLite. ``autocommit`` work runs
        the same way on PostgreSQL: each statement commits on its own, so every write
        in it must be one atomic statement that is safe to repeat. Transient failures are
        retried as ``retry`` allows; ``work`` must then be safe to run again (it only
        touches the database through its session). A transaction that queued budget
        alerts starts their delivery after it committed.
        """
        if autocommit and not self._postgresql:
            raise ValueError("autocommit work runs on PostgreSQL only")
        with translate_db_errors(self._url):
            return call_with_retry(lambda: self._attempt(work, read_only or autocommit),
                                   retry, what)

    def _deliver_alerts(self) -> None:
        """The transaction just committed queued alerts: deliver them in a background
        thread of this process, never delaying or failing the charge itself."""
        from .alerts.deliverer import kick

        try:
            kick(self.engine, self.clock)
        except RuntimeError:  # no thread could start: the next deliverer sends them
            logger.exception("could not start alert delivery")

    def _attempt(self, work: Callable[[Session], T], read_only: bool) -> T:
        if read_only or self._write_gate is None:
            return self._transaction(work, read_only)
        if not self._write_gate.acquire(timeout=engine_module.LOCK_WAIT_S):
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(
                "database is locked (by this process's other writers)"))
        try:
            return self._transaction(work, read_only)
        finally:
            self._write_gate.release()

    def _read(self, work: Callable[[Session], T]) -> T:
        """Read-only work on a connection without a transaction (``read_only_options``);
        a session bound to it is half the cost of a session's own transaction."""
        with self.engine.connect() as conn:
            conn.execution_options(**self._read_only)
            with Session(bind=conn, expire_on_commit=False) as session:
                return work(session)

    def _transaction(self, work: Callable[[Session], T], read_only: bool) -> T:
        if read_only:
            return self._read(work)
        with self._sessions() as session:
            tx = session.begin()
            try:
                result = work(session)
            except BaseException:
                try:
                    tx.rollback()
                except SQLAlchemyError:  # the connection is gone; so is the transaction
                    logger.debug("rollback failed", exc_info=True)
                raise
            try:
                tx.commit()
            except SQLAlchemyError as exc:
                raise CommitOutcomeUnknown(exc) from exc
            if session.info.pop(alerts.PENDING, False):
                self._deliver_alerts()
            return result

    def _allowance(self, session: Session, name: str | None,
                   allowance_id: str | uuid.UUID | None) -> SponsoredAllowance | None:
        if name is None and allowance_id is None:
            return None
        return sponsors.get_allowance(session, name=name, allowance_id=allowance_id)

    def admit(self, *, user_id: str, provider: str, model_id: str, estimate: Usage,
              allowance_name: str | None = None,
              allowance_id: str | uuid.UUID | None = None, enforce: bool = True,
              chat_id: str | None = None, message_id: str | None = None,
              task: str | None = None, now: datetime | None = None,
              api_key_id: str | None = None, entry_point: str | None = None,
              reservation_id: str | None = None) -> Admitted:
        """Reserve the estimated cost or raise a ``TokenLimitExceededError``.

        ``api_key_id``: the caller's key (a capped key is one more limit);
        ``entry_point``: pipe, filter or gateway, recorded on the row and refusal counts.
        The reservation id is chosen before the first try (or given: an earlier attempt
        elsewhere may have written it), so a retry after a COMMIT of unknown outcome
        returns the first try's reservation instead of holding twice.

        On PostgreSQL the terms are read and, when one limit applies, the admission is
        written in one atomic statement, without a transaction (``storage.at_once``);
        anything else (more limits, a counter to create, a refusal) is held in a
        transaction. On SQLite reading and holding share one write transaction.
        """
        now = now or self.clock()
        rid = reservation_id or str(uuid.uuid4())

        def plan(session: Session, may_write: bool = True) -> ledger.Plan:
            allowance = self._allowance(session, allowance_name, allowance_id)
            return ledger.plan(
                session, user_id=user_id, provider=provider, model_id=model_id,
                estimate=estimate, now=now, allowance=allowance, enforce=enforce,
                chat_id=chat_id, message_id=message_id, task=task, api_key_id=api_key_id,
                entry_point=entry_point, reservation_id=rid, may_write=may_write)

        def at_once(session: Session) -> Admitted | ledger.Plan | None:
            try:
                planned = plan(session, may_write=False)
            except ledger.NeedsTransaction:
                return None
            return at_once_module.hold_at_once(session, planned) or planned

        self.maybe_sweep(now)
        try:
            done = (self.run(at_once, autocommit=True, retry=ADMIT_RETRY, what="admission")
                    if self._postgresql else None)
            if isinstance(done, Admitted):
                return done
            planned = done
            return self.run(lambda s: ledger.hold(s, planned or plan(s)), retry=ADMIT_RETRY,
                            what="admission")
        except TokenTrackingError as exc:
            reason = refusals.reason_of(exc)
            if reason is not None:
                self._count_refusal(now, reason, provider, model_id, entry_point)
            raise

    def sweep_due(self, now: datetime) -> bool:
        """Whether ``maybe_sweep`` would look for expired reservations now (no I/O)."""
        last = self._last_sweep
        return last is None or not last <= now < last + ledger.SWEEP_EVERY

    def maybe_sweep(self, now: datetime) -> None:
        """Settle reservations of dead processes at most every ``SWEEP_EVERY``, in a
        transaction of its own (settling other users' reservations inside an admission
        would lock their counters too); in between, no transaction is opened at all.
        Every admission calls it (the gateway's on the event loop, in a worker thread).
        A read comes first, so the write lock is only taken when something expired."""
        if not self.sweep_due(now):
            return
        self._last_sweep = now
        if self.run(lambda s: ledger.any_expired(s, now), read_only=True, retry=READ_RETRY,
                    what="looking for expired reservations"):
            self.run(lambda s: ledger.settle_expired(s, now), retry=ADMIT_RETRY,
                     what="settling expired reservations")

    def _count_refusal(self, now: datetime, reason: str, provider: str, model_id: str,
                       entry_point: str | None = None) -> None:
        """Count a refusal for metrics; never let counting hide the refusal itself."""
        try:
            self.run(lambda s: refusals.record_refusal(
                s, now=now, reason=reason, provider=provider, model_id=model_id,
                entry_point=entry_point))
        except DatabaseError:
            logger.exception("could not count a refused request")

    def settle(self, reservation_id: str, usage: Usage, status: str = "completed",
               price: Price | None = None, *, defer_on_failure: bool = False,
               one_limit: bool = True) -> int | None:
        """Charge a reservation for the actual ``usage`` (``price``: ``Admitted.price``).

        Retried with backoff within ``SETTLE_RETRY``; never charges twice (see
        ``storage.retry``). If the database still fails, ``DatabaseError`` is raised,
        or with ``defer_on_failure`` the settlement is queued (``self.pending``) and
        None returned; either way the reservation's expiry charges its estimate if the
        actual usage never gets through. ``one_limit`` (``Admitted.one_limit``): False
        skips the one-statement attempt on PostgreSQL for a reservation known to hold
        more.
        """
        now = self.clock()
        what = f"settling reservation {reservation_id}"

        def work() -> int | None:
            if self._postgresql and price is not None and one_limit:  # storage.at_once
                done = self.run(lambda s: at_once_module.settle_at_once(
                    s, reservation_id, usage, status, price), autocommit=True,
                    retry=SETTLE_RETRY, what=what)
                if done is not None:
                    self.note_alerts(done, now)
                    return done.row_id
            return self.run(lambda s: ledger.settle(s, reservation_id, usage, status=status,
                                                    price=price, now=now),
                            retry=SETTLE_RETRY, what=what)
        return self._or_defer(work, what, defer_on_failure)

    def note_alerts(self, done: at_once_module.Settled, now: datetime) -> None:
        """Record the budget alerts a charge settled in one statement crossed, in a
        transaction of its own (an alert may be lost, never the charge)."""
        if not done.crossed_alerts():
            return
        key = done.key
        try:
            self.run(lambda s: alerts.note_spend(
                s, key, lambda: ledger.stored_window(s, done.created_at, key.window_start),
                before=done.spent_micro - done.charged_micro, after=done.spent_micro,
                limit_micro=done.limit_micro, thresholds_text=done.thresholds, at=now),
                what="recording a budget alert")
        except DatabaseError:
            logger.exception("could not record the budget alert of %s; the charge stands",
                             key.subject)

    def release(self, reservation_id: str, *, defer_on_failure: bool = False) -> bool:
        """Give a reservation back (nothing used); retried and deferred as ``settle``."""
        def work() -> bool:
            return self.run(lambda s: ledger.release(s, reservation_id), retry=SETTLE_RETRY,
                            what=f"releasing reservation {reservation_id}")
        return bool(self._or_defer(work, f"releasing reservation {reservation_id}",
                                   defer_on_failure))

    def _or_defer(self, work: Callable[[], T], what: str, defer: bool) -> T | None:
        try:
            return work()
        except DatabaseError as exc:
            if not defer:
                raise
            logger.error("%s failed: %s", what, exc)
            self.pending.submit(what, work)
            return None

    def record(self, *, user_id: str, provider: str, model_id: str, usage: Usage,
               allowance_name: str | None = None,
               allowance_id: str | uuid.UUID | None = None, status: str = "completed",
               chat_id: str | None = None, message_id: str | None = None,
               task: str | None = None, now: datetime | None = None,
               entry_point: str | None = None, defer_on_failure: bool = False) -> int | None:
        """Charge usage that was not reserved (no limit check: it is already spent).

        ``defer_on_failure`` queues a charge the database keeps failing (see ``settle``),
        only when it has a (chat, message) key: nothing else makes a repeat harmless.
        """
        now = now or self.clock()

        def work(session: Session) -> int | None:
            allowance = self._allowance(session, allowance_name, allowance_id)
            return ledger.record_usage(
                session, user_id=user_id, provider=provider, model_id=model_id, usage=usage,
                now=now, allowance=allowance, status=status, chat_id=chat_id,
                message_id=message_id, task=task, entry_point=entry_point)
        # With a (chat, message) key the ledger drops a repeat, so a COMMIT of unknown
        # outcome may be retried; without one it may not (a double charge is silent).
        keyed = chat_id is not None and message_id is not None
        what = f"charging {user_id} for {model_id}"

        def charge() -> int | None:
            return self.run(work, retry=SETTLE_RETRY if keyed else RECORD_RETRY, what=what)
        return self._or_defer(charge, what, defer_on_failure and keyed)

    def balance(self, user_id: str, *, allowance_name: str | None = None,
                allowance_id: str | uuid.UUID | None = None,
                now: datetime | None = None) -> BalanceReport:
        """The user's limits now: their window allowance, or a sponsored allowance's."""
        now = now or self.clock()

        def work(session: Session) -> BalanceReport:
            rate = None
            if allowance_name is None and allowance_id is None:
                # settings, groups, caps and counters in one round trip
                limits, terms, settings = counters.own_balance(session, user_id, now)
                allowance = None
                rate = rate_report(terms, settings, now)
            else:
                allowance, limits = balances.balances(session, user_id, now,
                                                      allowance_name=allowance_name,
                                                      allowance_id=allowance_id)
            states = []
            for limit, bal in limits:
                remaining = bal.remaining_micro
                states.append(LimitState(
                    scope=limit.key.scope,
                    limit=None if limit.limit_micro is None else micro_to_credits(
                        limit.limit_micro),
                    spent=micro_to_credits(bal.spent_micro),
                    reserved=micro_to_credits(bal.reserved_micro),
                    remaining=None if remaining is None else micro_to_credits(remaining),
                    window_start=limit.window.start,
                    reset_at=None if limit.key.scope == counters.SPONSOR_TOTAL
                    else limit.window.end,
                    target=limit.target,
                ))
            return BalanceReport(user_id, states, allowance.name if allowance else None, rate)
        return self.run(work, read_only=True, retry=READ_RETRY, what="reading a balance")


def rate_report(terms: UserTerms, settings: BudgetSettings, now: datetime) -> RateReport | None:
    """The user's rate limits and this minute's use; None when no rate limit applies."""
    rpm, tpm = terms.rate_limits(settings.requests_per_minute, settings.tokens_per_minute)
    if rpm is None and tpm is None:
        return None
    window = minute_window(now)
    current = terms.rate is not None and terms.rate.minute_start >= window.key
    return RateReport(rpm, tpm, terms.rate.requests if current and terms.rate else 0,
                      terms.rate.tokens if current and terms.rate else 0, window.end)
