"""Fake providers (httpx.MockTransport over recorded fixtures) and ledger readers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from openwebui_token_tracking.openwebui.pipe import TrackedPipe
from openwebui_token_tracking.storage.prices import PriceInput
from openwebui_token_tracking.storage.schema import Reservation, TokenUsageLog
from openwebui_token_tracking.storage.settings_store import set_value

FIXTURES = Path(__file__).parents[1] / "fixtures"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ALICE = {"id": "u-alice", "name": "Alice", "email": "alice@example.edu", "role": "user",
         "timezone": "Europe/Berlin"}

PAID = PriceInput(input_cost_credits=1000, per_input_tokens=1_000_000,
                  output_cost_credits=4000, per_output_tokens=1_000_000,
                  cached_input_cost_credits=500, per_cached_input_tokens=1_000_000,
                  cache_write_cost_credits=1250, per_cache_write_tokens=1_000_000)
FREE = PriceInput(0, 1_000_000, 0, 1_000_000)
MODELS = [("openai", "gpt-4o-mini", "GPT-4o mini", PAID),
          ("openai", "o4-mini", "o4 mini", PAID),
          ("openai", "llama-free", "Llama (free)", FREE),
          ("anthropic", "claude-sonnet-4", "Claude Sonnet 4", PAID),
          ("google_genai", "gemini-2.5-flash", "Gemini 2.5 Flash", PAID),
          ("mistral", "mistral-small-latest", "Mistral Small", PAID)]


def fixture_text(provider: str, name: str) -> str:
    return (FIXTURES / provider / name).read_text()


def strip_usage(sse_text: str) -> str:
    """The transcript with every usage report removed (a server that sends none)."""
    out = []
    for line in sse_text.splitlines():
        if line.startswith("data: {"):
            data = json.loads(line[6:])
            data.pop("usage", None)
            data.pop("usageMetadata", None)
            if isinstance(data.get("message"), dict):
                data["message"].pop("usage", None)
            if data.get("choices") == [] and "usage" not in data:
                continue
            line = "data: " + json.dumps(data)
        out.append(line)
    return "\n".join(out) + "\n"


async def _events(text: str, delay: float, stall_after: int | None) -> AsyncIterator[bytes]:
    for i, event in enumerate(text.split("\n\n")):
        if not event.strip():
            continue
        if stall_after is not None and i >= stall_after:
            await asyncio.sleep(3600)  # a server that stops sending (until disconnected)
        if delay:
            await asyncio.sleep(delay)
        yield (event + "\n\n").encode()


def sse(text: str, *, delay: float = 0.0, stall_after: int | None = None,
        status: int = 200) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(status, headers={"content-type": "text/event-stream"},
                                  content=_events(text, delay, stall_after))


def body(provider: str, name: str, status: int = 200) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(status, json=json.loads(fixture_text(provider, name)))


class FakeProvider:
    """A MockTransport handler answering queued responses and recording requests."""

    def __init__(self, *responses: Callable[[], httpx.Response], delay: float = 0.0) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []
        self.delay = delay

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.responses:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        return self.responses.pop(0)()

    def json(self, i: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[i].content)


def make_pipe(cls: type[TrackedPipe], db_url: str, fake: FakeProvider,
              **valves: Any) -> TrackedPipe:
    pipe = cls()
    pipe.valves = pipe.Valves(DATABASE_URL=db_url, API_KEY="sk-test", **valves)
    pipe.transport = httpx.MockTransport(fake)
    return pipe


def set_setting(engine: Engine, key: str, value: str) -> None:
    with Session(engine) as s, s.begin():
        set_value(s, key, value)


def ledger(engine: Engine) -> list[TokenUsageLog]:
    with Session(engine, expire_on_commit=False) as s:
        return list(s.scalars(sa.select(TokenUsageLog).order_by(TokenUsageLog.id)))


def reservations(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(Reservation)) or 0)


def messages(text: str = "What is the capital of France?") -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": text}]


async def drain(gen: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in gen]
