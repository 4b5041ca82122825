"""Bad input at every boundary we read, replayed from recorded-format fixtures: a clear
one-line error, a charge no larger than the ledger can justify, and nothing lost."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fault_support import ALICE, MODEL, counters, drain, ledger, micro, reservations

from openwebui_token_tracking import TokenTracker
from openwebui_token_tracking.errors import (
    DailyTokenLimitExceededError,
    InvalidInputError,
    ProviderError,
)
from openwebui_token_tracking.filters.usage_filter import UsageFilter
from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe
from openwebui_token_tracking.providers.protocol import MAX_TOKENS

pytestmark = pytest.mark.anyio
FIXTURES = Path(__file__).parents[1] / "fixtures" / "openai"
MB = 1024 * 1024
PROMPT_ESTIMATE = 12  # "What is the capital of France?" (30 chars / 4) + 4 per message
ANSWER = "The capital of France is Paris."


def request(stream: bool = True, **extra: object) -> dict[str, object]:
    return {"model": f"tt_openai.{MODEL}", "stream": stream,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            **extra}


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]
        await asyncio.sleep(0)


def replay(data: bytes, content_type: str = "text/event-stream"
           ) -> Callable[[httpx.Request], httpx.Response]:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": content_type},
                              content=_chunks(data))
    return handler


def pipe_for(db_url: str, handler: Callable[[httpx.Request], httpx.Response]
             ) -> OpenAITrackedPipe:
    pipe = OpenAITrackedPipe()
    pipe.valves = pipe.Valves(DATABASE_URL=db_url, API_KEY="sk-fake")
    pipe.transport = httpx.MockTransport(handler)
    return pipe


def rows(engine) -> list[tuple[str, int, int, int]]:
    return [(r.status, r.input_tokens, r.output_tokens, r.charged_micro) for r in ledger(engine)]


def estimated(streamed: str, status: str) -> tuple[str, int, int, int]:
    """The row charged from the local estimate of the prompt and of ``streamed``."""
    out = -(-len(streamed) // 4)
    return (status, PROMPT_ESTIMATE, out, micro(PROMPT_ESTIMATE, out))


async def stream_until_error(pipe: OpenAITrackedPipe) -> tuple[str, ProviderError]:
    seen: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for item in await pipe.pipe(request(), __user__=ALICE):
            if isinstance(item, str):
                seen.append(item)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return "".join(seen), info.value


@pytest.mark.parametrize("fixture, error, streamed", [
    ("stream_malformed_json.sse", "openai sent a stream event that is not JSON", "The capital"),
    ("stream_invalid_utf8.sse", "openai sent a stream that is not valid UTF-8 (line 9, byte 52)",
     "The capital of"),
])
async def test_broken_stream_is_an_error_charged_for_what_was_streamed(
        db_url, priced, fixture, error, streamed):
    pipe = pipe_for(db_url, replay((FIXTURES / fixture).read_bytes()))
    seen, exc = await stream_until_error(pipe)
    assert str(exc).startswith(error)
    assert seen == streamed
    assert rows(priced) == [estimated(streamed, "error")]
    assert reservations(priced) == []


async def test_ten_megabyte_stream_line_is_refused_before_it_fills_memory(db_url, priced):
    first = "".join(event + "\n\n" for event in  # two good events, then the huge one
                    (FIXTURES / "stream_usage.sse").read_text().split("\n\n")[:2])
    huge = b'data: {"choices":[{"index":0,"delta":{"content":"' + b"x" * (10 * MB) + b'"}}]}\n\n'
    pipe = pipe_for(db_url, replay(first.encode() + huge))
    seen, exc = await stream_until_error(pipe)
    assert str(exc) == "openai sent a stream line longer than 8 MB (line 5); the stream was " \
                       "stopped there"
    assert rows(priced) == [estimated(seen, "error")] and seen == "The"


async def test_broken_stream_before_any_token_charges_nothing(db_url, priced):
    pipe = pipe_for(db_url, replay(b"data: {not json at all\n\n"))
    seen, exc = await stream_until_error(pipe)
    assert seen == "" and "not JSON" in str(exc)
    assert rows(priced) == [] and reservations(priced) == []
    assert counters(priced)["user:u-alice"][1] == 0  # the reservation was given back


@pytest.mark.parametrize("fixture", ["stream_usage_negative.sse", "stream_usage_huge.sse",
                                     "stream_usage_not_integer.sse"])
async def test_impossible_usage_numbers_are_not_trusted(db_url, priced, fixture, caplog):
    pipe = pipe_for(db_url, replay((FIXTURES / fixture).read_bytes()))
    with caplog.at_level(logging.WARNING):
        answer = await drain(await pipe.pipe(request(), __user__=ALICE))
    assert "".join(x for x in answer if isinstance(x, str)) == ANSWER  # the user is served
    assert rows(priced) == [estimated(ANSWER, "estimated")]  # at the local estimate
    assert "openai sent an impossible usage report" in caplog.text


async def test_usage_chunk_sent_twice_is_charged_once(db_url, priced):
    pipe = pipe_for(db_url, replay((FIXTURES / "stream_usage_twice.sse").read_bytes()))
    await drain(await pipe.pipe(request(), __user__=ALICE))
    [row] = ledger(priced)
    assert (row.status, row.input_tokens, row.cached_input_tokens, row.output_tokens) == (
        "completed", 141, 1920, 12)


@pytest.mark.parametrize("body, error", [
    (b'{"choices": [{"message": {"content": "' + b"x" * (10 * MB) + b'"}}]}',
     "openai answered with a body larger than 8 MB; it was not read further"),
    (b'{"choices": [{"message": {"content": "Par\xffis"}}]}',
     "openai answered with a body that is not valid UTF-8 (byte 41)"),
    (b"[" * 100_000, "openai answered with a body that is not JSON: '[[[["),
])
async def test_unreadable_answer_is_an_error_and_charges_nothing(db_url, priced, body, error):
    pipe = pipe_for(db_url, replay(body, "application/json"))
    with pytest.raises(ProviderError) as info:
        await pipe.pipe(request(stream=False), __user__=ALICE)
    assert str(info.value).startswith(error) and "\n" not in str(info.value)
    assert rows(priced) == [] and reservations(priced) == []


async def test_request_that_is_not_valid_unicode_is_refused_and_charges_nothing(db_url, priced):
    pipe = pipe_for(db_url, replay(b""))
    body = request()
    body["messages"] = [{"role": "user", "content": "broken \ud800 surrogate"}]
    with pytest.raises(InvalidInputError, match="^the request contains text that is not valid "
                                                "Unicode"):
        await pipe.pipe(body, __user__=ALICE)
    assert rows(priced) == [] and reservations(priced) == []


async def test_absurd_max_tokens_is_held_at_the_largest_possible_request(db_url, priced):
    pipe = pipe_for(db_url, replay(b""))
    with pytest.raises(DailyTokenLimitExceededError, match="needs about 400000.012"):
        await pipe.pipe(request(max_tokens=10**30), __user__=ALICE)
    assert micro(PROMPT_ESTIMATE, MAX_TOKENS) == 400_000_012_000
    assert rows(priced) == [] and reservations(priced) == []


@pytest.mark.parametrize("prompt, response", [(-1, 10), (10, -5), (1.5, 10), ("10", 10),
                                              (True, 10), (10, 10**12)])
def test_0_1_10_api_refuses_impossible_token_counts(db_url, priced, prompt, response):
    tracker = TokenTracker(db_url)
    with pytest.raises(InvalidInputError, match="must be a whole number from 0 to"):
        tracker.log_token_usage("openai", MODEL, ALICE, prompt, response)
    assert rows(priced) == []


async def test_filter_charges_impossible_usage_at_the_estimate(db_url, priced):
    usage_filter = UsageFilter()
    usage_filter.valves.DATABASE_URL = db_url
    answer = {"id": "m1", "role": "assistant", "content": ANSWER,
              "usage": {"prompt_tokens": -7, "completion_tokens": 1e300}}
    body = {"model": MODEL, "chat_id": "c1", "messages": [
        {"role": "user", "content": "What is the capital of France?"}, answer]}
    assert await usage_filter.outlet(body, __user__=ALICE) == body
    assert rows(priced) == [estimated(ANSWER, "estimated")]
    assert json.dumps(body)  # the body Open WebUI keeps is untouched
