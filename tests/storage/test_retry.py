"""When a unit of work is tried again, and when it must not be."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from openwebui_token_tracking.storage.retry import (
    CommitOutcomeUnknown,
    RetryPolicy,
    call_with_retry,
    is_transient,
)


def locked() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("BEGIN IMMEDIATE", None,
                                   sqlite3.OperationalError("database is locked"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run(failures: list[BaseException], policy: RetryPolicy, clock: Clock,
        cost: float = 0.0) -> tuple[str, int]:
    tries = 0

    def attempt() -> str:
        nonlocal tries
        tries += 1
        clock.now += cost
        if failures:
            raise failures.pop(0)
        return "done"
    return call_with_retry(attempt, policy, "work", clock.sleep, lambda: clock.now), tries


def test_transient_failures_are_retried_with_growing_pauses():
    clock = Clock()
    assert run([locked(), locked()], RetryPolicy(attempts=4, deadline_s=60), clock) == (
        "done", 3)
    assert 0.025 <= clock.slept[0] <= 0.05 and 0.05 <= clock.slept[1] <= 0.1


def test_attempts_and_the_deadline_bound_the_wait():
    clock = Clock()
    with pytest.raises(sa_exc.OperationalError):
        run([locked()] * 10, RetryPolicy(attempts=3, deadline_s=60), clock)
    assert len(clock.slept) == 2
    clock = Clock()
    with pytest.raises(sa_exc.OperationalError):  # each try waited 5 s for the lock
        run([locked()] * 10, RetryPolicy(attempts=10, deadline_s=5), clock, cost=5.0)
    assert clock.slept == []


def test_permanent_failures_are_not_retried():
    clock = Clock()
    missing = sa_exc.OperationalError("SELECT", None,
                                      sqlite3.OperationalError("no such table: x"))
    with pytest.raises(sa_exc.OperationalError, match="no such table"):
        run([missing], RetryPolicy(attempts=5), clock)
    assert not is_transient(sa_exc.IntegrityError("INSERT", None, Exception("duplicate")))


def test_unknown_commit_is_retried_only_when_the_unit_is_idempotent():
    clock = Clock()
    assert run([CommitOutcomeUnknown(locked())], RetryPolicy(idempotent=True), clock) == (
        "done", 2)
    with pytest.raises(sa_exc.OperationalError, match="database is locked"):
        run([CommitOutcomeUnknown(locked())], RetryPolicy(idempotent=False), clock)


def test_a_dropped_connection_is_retried_at_once():
    clock = Clock()
    dropped = sa_exc.OperationalError("SELECT 1", None, Exception("server closed"),
                                      connection_invalidated=True)
    assert run([dropped], RetryPolicy(), clock) == ("done", 2)
    assert clock.slept == []
