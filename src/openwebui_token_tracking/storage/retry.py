"""Bounded retries of a unit of work after transient database failures.

What is transient: a dropped connection (PostgreSQL restarted, the backend terminated,
a pooled connection gone stale), a server that refuses connections for a moment, a lock
held too long by another connection (SQLite ``database is locked``, PostgreSQL
``lock_timeout``), a serialization failure or deadlock. Anything else (a constraint, a
missing table, bad data) fails at once.

When is a retry safe? A failure *before* COMMIT rolled the whole transaction back, so
running the unit again cannot count anything twice. A failure *during* COMMIT leaves the
outcome unknown: the unit is retried only if it is idempotent, i.e. running it after a
successful first run changes nothing:

- settling deletes its reservation first (``DELETE ... RETURNING``): a second run finds
  no reservation and charges nothing;
- admission inserts its reservation (id chosen before the first attempt) before
  reserving: a second run finds the id taken and returns the first run's admission;
- a charge with a (chat, message) pair hits the ledger's unique key the second time.

A charge without such a key is never retried after COMMIT: a lost charge would be
logged, a double one would be silent.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import exc as sa_exc

logger = logging.getLogger(__name__)
T = TypeVar("T")

_PG_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
"""SQLSTATE classes: connection exception, transaction rollback (serialization failure,
deadlock), insufficient resources, operator intervention (shutdown, cancel), system."""
_PG_TRANSIENT_STATES = ("55P03",)  # lock_not_available: our lock_timeout expired
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open database", "disk i/o error",
                     "closed database")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a unit of work may be tried.

    ``attempts`` counts every try; no new try starts once ``deadline_s`` seconds have
    passed since the first (a lock wait alone can use the whole budget). Pauses double
    from ``backoff_s`` up to ``max_backoff_s``, with jitter so that many waiting
    requests do not retry in step; a dropped connection is retried without a pause.
    """

    attempts: int = 2
    deadline_s: float = 5.0
    backoff_s: float = 0.05
    max_backoff_s: float = 2.0
    idempotent: bool = False
    """Safe to run again after a COMMIT whose outcome is unknown."""

    def pause(self, attempt: int, disconnect: bool) -> float:
        if disconnect and attempt == 1:
            return 0.0
        cap = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return random.uniform(cap / 2, cap)


class CommitOutcomeUnknown(Exception):
    """The unit's work ran, then COMMIT failed: it may or may not have been applied."""

    def __init__(self, cause: sa_exc.SQLAlchemyError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, sa_exc.DisconnectionError) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated)


def is_transient(exc: BaseException) -> bool:
    """True for failures that may pass when the same unit is tried again later."""
    if isinstance(exc, CommitOutcomeUnknown):
        return is_transient(exc.cause)
    if is_disconnect(exc) or isinstance(exc, sa_exc.TimeoutError):  # pool exhausted
        return True
    if not isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:  # PostgreSQL answered with an error code
        return str(sqlstate).startswith(_PG_TRANSIENT_CLASSES) or sqlstate in _PG_TRANSIENT_STATES
    if type(orig).__module__.startswith("sqlite3"):
        message = str(orig).lower()
        return any(part in message for part in _SQLITE_TRANSIENT)
    return True  # no answer from the server at all: connection refused, reset, timed out


def call_with_retry(attempt: Callable[[], T], policy: RetryPolicy, what: str,
                    sleep: Callable[[float], None] = time.sleep,
                    monotonic: Callable[[], float] = time.monotonic) -> T:
    """Run ``attempt`` until it succeeds, fails permanently, or ``policy`` is spent.

    ``attempt`` raises ``CommitOutcomeUnknown`` when its COMMIT failed; that is retried
    only for an idempotent unit. The last error is raised as the database raised it.
    """
    started = monotonic()
    n = 0
    while True:
        n += 1
        try:
            return attempt()
        except CommitOutcomeUnknown as unknown:
            error: sa_exc.SQLAlchemyError = unknown.cause
            retry = policy.idempotent and is_transient(error)
            if not retry:
                if is_transient(error):
                    logger.error("%s: COMMIT failed and %s is not safe to repeat; its "
                                 "outcome is unknown: %s", what, what, _line(error))
                raise error from None
        except sa_exc.SQLAlchemyError as exc:
            error = exc
            if not is_transient(exc):
                raise
        pause = policy.pause(n, is_disconnect(error))
        if n >= policy.attempts or monotonic() - started + pause > policy.deadline_s:
            raise error
        logger.warning("%s failed (%s); try %d of %d in %.2f s", what, _line(error), n + 1,
                       policy.attempts, pause)
        if pause:
            sleep(pause)


def _line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}"
