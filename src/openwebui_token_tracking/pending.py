"""Charges the database could not take in time, retried in the background.

A settlement that still fails after its bounded retries (the database is down or
locked for long) must neither fail the user's finished answer nor be lost. It is queued
here and retried, with pauses growing to ``MAX_PAUSE_S``, for ``KEEP_TRYING_S`` (the
default reservation lifetime). Nothing can be charged twice: a settlement deletes its
reservation in the same transaction as it writes the charge, so once the reservation
expired and the sweep charged its estimate, a late settlement finds nothing to do.
If the process dies with items queued, their reservations expire and are charged at
their estimates, so the money is still not lost, only estimated.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import DatabaseError, TokenTrackingError

logger = logging.getLogger(__name__)

KEEP_TRYING_S = 3600.0
FIRST_PAUSE_S = 1.0
MAX_PAUSE_S = 60.0


@dataclass(order=True)
class _Item:
    due: float
    seq: int
    give_up: float = field(compare=False)
    pause: float = field(compare=False)
    what: str = field(compare=False)
    work: Callable[[], object] = field(compare=False)


class PendingCharges:
    """A queue of deferred charges and the daemon thread that retries them."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._items: list[_Item] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = 0
        self._monotonic = monotonic

    def __len__(self) -> int:
        with self._cond:
            return len(self._items) + self._busy

    def submit(self, what: str, work: Callable[[], object]) -> None:
        """Retry ``work`` (which raises ``DatabaseError`` while the database is down)."""
        now = self._monotonic()
        with self._cond:
            heapq.heappush(self._items, _Item(now + FIRST_PAUSE_S, next(self._seq),
                                              now + KEEP_TRYING_S, FIRST_PAUSE_S, what, work))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="token-tracking-pending")
                self._thread.start()
            self._cond.notify()
        logger.warning("%s is queued; retrying in the background", what)

    def retry_now(self) -> None:
        """Make every queued item due (tests, and an operator who fixed the database)."""
        with self._cond:
            for item in self._items:
                item.due = 0.0
            heapq.heapify(self._items)
            self._cond.notify()

    def wait_empty(self, timeout: float) -> bool:
        """Wait until nothing is queued or being tried; False on timeout."""
        deadline = self._monotonic() + timeout
        with self._cond:
            while self._items or self._busy:
                left = deadline - self._monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._items:
                    self._thread = None
                    return
                wait = self._items[0].due - self._monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                item = heapq.heappop(self._items)
                self._busy += 1
            try:
                self._try(item)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _try(self, item: _Item) -> None:
        try:
            item.work()
        except DatabaseError as exc:
            now = self._monotonic()
            if now >= item.give_up:
                logger.error("%s: giving up after %.0f s (%s); the reservation's expiry "
                             "charges its estimate", item.what, KEEP_TRYING_S, exc)
                return
            item.pause = min(item.pause * 2, MAX_PAUSE_S)
            item.due = now + item.pause
            with self._cond:
                heapq.heappush(self._items, item)
            return
        except TokenTrackingError as exc:
            logger.error("%s failed for good (%s); the reservation's expiry charges its "
                         "estimate", item.what, exc)
            return
        except Exception:  # a bug: log it, and keep the thread that holds other charges
            logger.exception("%s failed", item.what)
            return
        logger.info("%s succeeded after being queued", item.what)
