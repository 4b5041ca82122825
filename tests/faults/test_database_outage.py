"""The database goes away: at admission the pipe fails closed with one line for the user
while the event loop keeps serving; at settlement the charge is retried, queued, and
never lost or doubled (the reservation's expiry charges its estimate at worst)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from fault_support import (
    ALICE,
    counters,
    drain,
    ledger,
    max_tick_gap,
    micro,
    open_pipe,
    request,
    reservations,
)

from openwebui_token_tracking.accountant import Accountant, utcnow
from openwebui_token_tracking.errors import DatabaseError
from openwebui_token_tracking.metering.outage import MESSAGE
from openwebui_token_tracking.storage import ledger as ledger_module

pytestmark = pytest.mark.anyio
PROMPT = 8  # "What is the capital of France?" is 30 characters: 8 tokens at 4 per token
ESTIMATED_PROMPT = 12  # the same plus 4 tokens of message overhead (providers.estimate)
ANSWER = 10  # the fake upstream's ten pieces


def rows(engine) -> list[tuple[str, int, int, int, str | None]]:
    return [(r.status, r.input_tokens, r.output_tokens, r.charged_micro, r.message_id)
            for r in ledger(engine)]


async def test_database_down_at_admission_refuses_in_one_line_and_the_loop_serves(
        outage, upstream, priced):
    async with open_pipe(outage.url, upstream.base_url) as pipe:
        await drain(await pipe.pipe(request(), __user__=ALICE))  # connections are pooled
        outage.down()
        ticks: list[int] = []

        async def other_user() -> None:  # another page Open WebUI keeps serving meanwhile
            for i in range(20):
                await asyncio.sleep(0.01)
                ticks.append(i)

        async def refused() -> DatabaseError:
            others = asyncio.create_task(other_user())
            with pytest.raises(DatabaseError) as info:
                await pipe.pipe(request(), __user__=ALICE)
            await others
            return info.value

        started = time.perf_counter()
        gap, error = await max_tick_gap(refused)
        waited = time.perf_counter() - started
        assert str(error) == MESSAGE  # one plain line: no traceback, no host, no file name
        assert "\n" not in str(error) and "Traceback" not in str(error)
        assert gap < 0.1 and ticks == list(range(20))
        assert waited < 5  # bounded: a short lock wait and one retry, not 30 s
        assert upstream.stats.requests == 1  # the refused request never reached the provider
        outage.up()
        await drain(await pipe.pipe(request(), __user__=ALICE))  # and it serves again
    assert [r[0] for r in rows(priced)] == ["completed", "completed"]
    assert reservations(priced) == []


async def settle_while_down(outage, upstream, message_id: str) -> Accountant:
    """Stream an answer, take the database down mid-stream, finish the stream."""
    async with open_pipe(outage.url, upstream.base_url) as pipe:
        gen = await pipe.pipe(request(), __user__=ALICE, __chat_id__="chat",
                              __message_id__=message_id)
        first = await gen.__anext__()
        outage.down()
        started = time.perf_counter()
        rest = await drain(gen)  # the user's answer still completes, usage chunk included
    assert time.perf_counter() - started < 10  # bounded retries, then queued
    assert "".join([first, *[x for x in rest if isinstance(x, str)]]) == "word " * ANSWER
    assert rest[-1]["usage"]["completion_tokens"] == ANSWER
    [acct] = pipe._accountants.values()
    assert len(acct.pending) == 1
    return acct


async def test_database_down_at_settle_charges_when_it_is_back(outage, slow_upstream, priced):
    acct = await settle_while_down(outage, slow_upstream, "m1")
    assert rows(priced) == [] and len(reservations(priced)) == 1  # held, not lost
    outage.up()
    acct.pending.retry_now()
    assert acct.pending.wait_empty(10)
    # The final ledger: the real usage, charged once, the reservation gone.
    assert rows(priced) == [("completed", PROMPT, ANSWER, micro(PROMPT, ANSWER), "m1")]
    assert reservations(priced) == []
    assert counters(priced)["user:u-alice"][1] == 0


async def test_settle_that_never_gets_through_is_charged_its_estimate_once(
        outage, slow_upstream, priced):
    acct = await settle_while_down(outage, slow_upstream, "m2")
    [held] = reservations(priced)
    outage.up()
    # An hour later another request's admission sweeps the expired reservation ...
    later = Accountant(priced, clock=lambda: utcnow() + timedelta(hours=2))
    later.run(lambda s: ledger_module.settle_expired(s, later.clock()))
    # ... and the queued settlement, arriving late, finds nothing left to charge.
    acct.pending.retry_now()
    assert acct.pending.wait_empty(10)
    assert rows(priced) == [("estimated", ESTIMATED_PROMPT, 1024, held.estimate_micro, "m2")]
    assert held.estimate_micro == micro(ESTIMATED_PROMPT, 1024)  # the default output estimate
    assert reservations(priced) == []
    assert counters(priced)["user:u-alice"] == (held.estimate_micro, 0)
