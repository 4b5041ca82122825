"""Connections die under the pool: the next unit of work reconnects and succeeds, and a
COMMIT whose answer was lost is retried only where a repeat cannot charge twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from fault_support import (
    ALICE,
    MODEL,
    TcpProxy,
    counters,
    drain,
    ledger,
    micro,
    open_pipe,
    proxied,
    request,
    reservations,
)
from sqlalchemy.engine import Engine, make_url

from db_support import pg_conninfo
from openwebui_token_tracking import TokenTracker
from openwebui_token_tracking.errors import DatabaseError
from openwebui_token_tracking.storage.engine import get_engine

pytestmark = pytest.mark.anyio
PROMPT, ANSWER = 8, 10


def drop_pooled_connections(backend: str, url: str) -> int:
    """Kill every connection the pool holds, from outside the pool."""
    if backend == "postgresql":
        name = make_url(url).query["application_name"]
        with psycopg.connect(pg_conninfo(make_url(url)), autocommit=True) as admin:
            return len(admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()", (name,)).fetchall())
    pool = get_engine(url).pool
    records = list(pool._pool.queue)  # type: ignore[attr-defined]
    for record in records:  # as if the file's connections were closed underneath
        record.dbapi_connection.close()
    return len(records)


@pytest.fixture
def named_url(backend: str, db_url: str, priced: Engine) -> str:
    """The test database under a URL whose PostgreSQL connections can be told apart."""
    if backend == "sqlite":
        return db_url
    return f"{db_url}&application_name=tt_drop_{id(priced) % 10**8}"


async def test_connections_dropped_between_requests_and_mid_stream(
        backend, named_url, upstream, priced):
    async with open_pipe(named_url, upstream.base_url) as pipe:
        await drain(await pipe.pipe(request(), __user__=ALICE, __message_id__="m1",
                                    __chat_id__="c"))
        assert drop_pooled_connections(backend, named_url) >= 1
        await drain(await pipe.pipe(request(), __user__=ALICE, __message_id__="m2",
                                    __chat_id__="c"))  # reconnects, succeeds
        gen = await pipe.pipe(request(), __user__=ALICE, __message_id__="m3", __chat_id__="c")
        await gen.__anext__()
        assert drop_pooled_connections(backend, named_url) >= 1  # while it streams
        await drain(gen)  # settles on a fresh connection
    charge = micro(PROMPT, ANSWER)
    assert [(r.message_id, r.status, r.charged_micro) for r in ledger(priced)] == [
        ("m1", "completed", charge), ("m2", "completed", charge), ("m3", "completed", charge)]
    assert counters(priced)["user:u-alice"] == (3 * charge, 0)
    assert reservations(priced) == []


def param(text: bytes) -> bytes:
    """A text parameter as a Bind message carries it: its length, then its bytes."""
    return len(text).to_bytes(4, "big") + text


class LostCommit:
    """Makes the answer to the next COMMIT disappear after the database committed.

    PostgreSQL: the proxy forwards COMMIT, lets the server run it, then drops the
    connection. SQLite (no network to lose): the commit runs, then the driver reports an
    I/O error, as a failing disk could.
    """

    def __init__(self, url: str, proxy: TcpProxy | None) -> None:
        self.url, self.proxy = url, proxy
        self.armed = False
        self.lost = 0
        if proxy is None:
            sa.event.listen(get_engine(url), "commit", self._lose_answer)

    def arm(self, at_once: bytes | None = None) -> None:
        """Lose the next COMMIT's answer; on PostgreSQL, with ``at_once``, the answer to
        the next statement sending that text parameter instead (a write done in one
        statement, without COMMIT: ``storage.at_once``)."""
        if self.proxy is not None:
            self.proxy.drop_after_commit(None if at_once is None else param(at_once))
        else:
            self.armed = True

    @property
    def count(self) -> int:
        return self.proxy.commits_dropped if self.proxy is not None else self.lost

    def _lose_answer(self, conn: sa.Connection) -> None:
        if not self.armed:
            return
        self.armed = False
        self.lost += 1
        conn.connection.driver_connection.commit()  # type: ignore[union-attr]
        raise sa.exc.OperationalError("COMMIT", None, sqlite3.OperationalError("disk I/O error"))


@pytest.fixture
def lost_commit(backend: str, db_url: str, priced: Engine) -> Iterator[LostCommit]:
    if backend == "sqlite":
        yield LostCommit(db_url, None)
        return
    with proxied(db_url) as (proxy, url):
        yield LostCommit(url, proxy)


async def test_settlement_whose_commit_answer_was_lost_is_charged_once(
        lost_commit, upstream, priced):
    async with open_pipe(lost_commit.url, upstream.base_url) as pipe:
        gen = await pipe.pipe(request(), __user__=ALICE, __chat_id__="c", __message_id__="m1")
        await gen.__anext__()
        lost_commit.arm(at_once=b"completed")  # the next COMMIT, or statement, settles
        await drain(gen)
    assert lost_commit.count == 1
    [row] = ledger(priced)
    assert (row.status, row.charged_micro) == ("completed", micro(PROMPT, ANSWER))
    assert counters(priced)["user:u-alice"] == (micro(PROMPT, ANSWER), 0)
    assert reservations(priced) == []


async def test_admission_whose_commit_answer_was_lost_reserves_once(
        lost_commit, upstream, priced):
    async with open_pipe(lost_commit.url, upstream.base_url) as pipe:
        await drain(await pipe.pipe(request(), __user__=ALICE))  # warm: sweep done
        lost_commit.arm(at_once=b"pipe")  # the next COMMIT, or statement, admits
        await drain(await pipe.pipe(request(), __user__=ALICE))
    assert lost_commit.count == 1
    assert [r.charged_micro for r in ledger(priced)] == [micro(PROMPT, ANSWER)] * 2
    # Had the retry reserved again, a second reservation would be held (and charged at
    # its estimate when it expired): none is, and nothing stays reserved.
    assert reservations(priced) == []
    assert counters(priced)["user:u-alice"] == (2 * micro(PROMPT, ANSWER), 0)


def test_charge_whose_commit_answer_was_lost_is_retried_only_with_a_message_key(
        lost_commit, priced):
    tracker = TokenTracker(lost_commit.url)
    lost_commit.arm()
    assert tracker.log_token_usage("openai", MODEL, ALICE, 100, 10, chat_id="c",
                                   message_id="m1") is None  # the retry hit the key
    lost_commit.arm()
    with pytest.raises(DatabaseError):  # no key: a repeat could charge twice, so no retry
        tracker.log_token_usage("openai", MODEL, ALICE, 100, 20)
    assert lost_commit.count == 2
    assert [(r.message_id, r.output_tokens) for r in ledger(priced)] == [("m1", 10), (None, 20)]
    assert counters(priced)["user:u-alice"] == (micro(100, 10) + micro(100, 20), 0)
