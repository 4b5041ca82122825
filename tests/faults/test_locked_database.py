"""Another connection holds the write lock (SQLite: Open WebUI writing to the same file;
PostgreSQL: our tables locked): a request waits a bounded time, retries a settlement
with backoff, never loses a charge and never waits without end."""

from __future__ import annotations

import time

import pytest
from fault_support import (
    ALICE,
    LockHolder,
    counters,
    drain,
    ledger,
    micro,
    open_pipe,
    request,
    reservations,
)

from openwebui_token_tracking.errors import DatabaseError
from openwebui_token_tracking.metering.outage import MESSAGE

pytestmark = pytest.mark.anyio
PROMPT, ANSWER = 8, 10


async def test_a_short_lock_is_waited_out(db_url, priced, upstream, short_lock_wait):
    holder = LockHolder(db_url).hold(seconds=short_lock_wait / 2)
    try:
        async with open_pipe(db_url, upstream.base_url) as pipe:
            started = time.perf_counter()
            answer = await drain(await pipe.pipe(request(), __user__=ALICE))
            waited = time.perf_counter() - started
    finally:
        holder.release()
    assert "".join(x for x in answer if isinstance(x, str)) == "word " * ANSWER
    assert waited >= short_lock_wait / 4  # it did wait for the lock ...
    assert [r.status for r in ledger(priced)] == ["completed"]  # ... and went through


async def test_a_long_lock_refuses_admission_within_the_bound(db_url, priced, upstream,
                                                              short_lock_wait):
    holder = LockHolder(db_url).hold(seconds=30)
    try:
        async with open_pipe(db_url, upstream.base_url) as pipe:
            started = time.perf_counter()
            with pytest.raises(DatabaseError) as info:
                await pipe.pipe(request(), __user__=ALICE)
            waited = time.perf_counter() - started
    finally:
        holder.release()
    assert str(info.value) == MESSAGE
    # Two tries of one lock wait each (the default wait is 5 s), never the 30 s hold.
    assert 2 * short_lock_wait <= waited < 2 * short_lock_wait + 1.5
    assert upstream.stats.requests == 0
    assert ledger(priced) == [] and reservations(priced) == []


async def test_a_settlement_outwaits_a_lock_with_backoff(db_url, priced, slow_upstream,
                                                         short_lock_wait):
    holder = LockHolder(db_url)
    async with open_pipe(db_url, slow_upstream.base_url) as pipe:
        gen = await pipe.pipe(request(), __user__=ALICE, __chat_id__="c", __message_id__="m")
        await gen.__anext__()
        holder.hold(seconds=2.5 * short_lock_wait)  # longer than one wait, shorter than all
        started = time.perf_counter()
        try:
            await drain(gen)
        finally:
            holder.release()
        waited = time.perf_counter() - started
        [acct] = pipe._accountants.values()
    assert len(acct.pending) == 0  # charged in the foreground, after a retry or two
    assert waited < 10
    [row] = ledger(priced)
    assert (row.status, row.charged_micro) == ("completed", micro(PROMPT, ANSWER))
    assert counters(priced)["user:u-alice"] == (micro(PROMPT, ANSWER), 0)
    assert reservations(priced) == []
