"""A pipe never blocks Open WebUI's event loop: other coroutines keep running."""

from __future__ import annotations

import asyncio
import time

import pytest
from fakes import ALICE, FakeProvider, drain, fixture_text, ledger, make_pipe, messages, sse

from openwebui_token_tracking.accountant import Accountant
from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe

pytestmark = pytest.mark.anyio
SLOW_DB_S = 0.3


async def max_tick_gap(work) -> tuple[float, float]:
    """Run ``work`` while a 5 ms ticker runs; the ticker's longest gap and work's time."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    return max(gaps), elapsed


async def test_slow_database_and_slow_provider_do_not_block_the_loop(priced, db_url,
                                                                     monkeypatch):
    # A slow database: every ledger call takes 0.3 s of blocking work (as a busy
    # PostgreSQL or a locked SQLite file would). On the loop, the ticker would stall.
    for name in ("admit", "settle"):
        original = getattr(Accountant, name)

        def slow(self, *a, _original=original, **kw):
            time.sleep(SLOW_DB_S)
            return _original(self, *a, **kw)

        monkeypatch.setattr(Accountant, name, slow)
    fake = FakeProvider(sse(fixture_text("openai", "stream_usage.sse"), delay=0.03),
                        delay=0.1)
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)

    async def work():
        await drain(await pipe.pipe({"model": "f.gpt-4o-mini", "messages": messages(),
                                     "stream": True}, __user__=ALICE))

    gap, elapsed = await max_tick_gap(work)
    assert elapsed > 2 * SLOW_DB_S + 0.1  # the slow parts really ran ...
    assert gap < 0.1                       # ... while the loop kept ticking
    assert len(ledger(priced)) == 1


async def test_concurrent_requests_overlap(priced, db_url):
    streams = [sse(fixture_text("openai", "stream_usage.sse"), delay=0.05) for _ in range(4)]
    pipe = make_pipe(OpenAITrackedPipe, db_url, FakeProvider(*streams))

    async def one(i: int):
        return await drain(await pipe.pipe({"model": "f.gpt-4o-mini", "messages": messages(),
                                            "stream": True}, __user__=ALICE,
                                           __chat_id__="c", __message_id__=f"m{i}"))

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(4)))
    elapsed = time.perf_counter() - start
    assert elapsed < 4 * 10 * 0.05  # serial would take 4 streams x 10 events x 50 ms
    assert len(ledger(priced)) == 4
