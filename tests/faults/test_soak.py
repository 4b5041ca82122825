"""The soak of ``bench/soak.py`` in short: many concurrent streams through the real pipe
against the local upstream; the ledger equals the usage the upstream reported, to the
token and the micro-credit, and nothing is left over. Timings are for the bench."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict

import soak
from fault_support import ALICE, Answer, FakeUpstream, ledger, open_pipe, request


def test_short_soak_charges_exactly_and_leaves_nothing(backend, db_url):
    server = FakeUpstream(Answer(chunks=10, interval_s=0.005))
    upstream = soak.Upstream(server.base_url, lambda: asdict(server.stats), server.close)
    app_name = "tt_soak_test" if backend == "postgresql" else None
    url = f"{db_url}&application_name={app_name}" if app_name else db_url
    try:
        soak.prepare(url, users=20)
        report = asyncio.run(soak.soak(url, upstream, concurrency=20, duration=4.0,
                                       direct=0, users=20, backend=backend,
                                       app_name=app_name, sample_every=1.0))
    finally:
        server.close()
    assert report.piped.failed == 0, report.piped.errors
    assert report.piped.completed >= 20
    assert report.exact, (report.ledger_rows, report.ledger_input, report.ledger_output,
                          report.ledger_micro, report.upstream_requests,
                          report.upstream_input, report.upstream_output)
    assert report.ledger_rows == report.piped.completed
    assert (report.end.reservations, report.pending, report.end.checked_out) == (0, 0, 0)
    assert server.stats.open_streams == 0


def test_more_than_a_hundred_streams_run_at_once(db_url, priced):
    """httpx lets a client hold 100 connections by default: the 101st concurrent answer
    used to wait for another one to finish before it could even start."""
    server = FakeUpstream(Answer(chunks=2, interval_s=5.0))  # each answer holds 5 s

    async def run() -> tuple[list[float], list[float]]:
        firsts: list[float] = []
        ends: list[float] = []
        async with open_pipe(db_url, server.base_url) as pipe:
            async def one(i: int) -> None:
                answer = await pipe.pipe(request(), __user__=ALICE, __chat_id__="c",
                                         __message_id__=str(i))
                started = False
                async for item in answer:
                    if isinstance(item, str) and item and not started:
                        started = True
                        firsts.append(time.perf_counter())
                ends.append(time.perf_counter())
            await one(-1)  # the pipe's HTTP client exists: every answer shares it
            firsts.clear()
            ends.clear()
            await asyncio.gather(*(one(i) for i in range(120)))
        return firsts, ends

    try:
        firsts, ends = asyncio.run(run())
    finally:
        server.close()
    assert len(firsts) == len(ends) == 120
    assert max(firsts) < min(ends)  # every answer had started before any had finished
    assert len(ledger(priced)) == 121


def test_concurrent_first_requests_share_one_http_client(db_url):
    async def run() -> set[int]:
        async with open_pipe(db_url, "http://127.0.0.1:9/v1") as pipe:
            settings = pipe.settings()
            clients = await asyncio.gather(*(pipe.client(settings) for _ in range(10)))
            return {id(c) for c in clients}
    assert len(asyncio.run(run())) == 1  # before: ten clients, nine never closed
