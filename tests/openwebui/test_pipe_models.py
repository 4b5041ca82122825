"""The pipes' model lists: the ids the provider serves that get a price (MockTransport
replaying each provider's models endpoint)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fakes import ALICE, FakeProvider, body, drain, fixture_text, ledger, make_pipe, messages, sse
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from openwebui_token_tracking.openwebui.pipe import TrackedPipe
from openwebui_token_tracking.pipes import (
    AnthropicTrackedPipe,
    GoogleTrackedPipe,
    MistralTrackedPipe,
    OpenAITrackedPipe,
)
from openwebui_token_tracking.price_data import default_catalogue
from openwebui_token_tracking.storage import prices, settings_store
from openwebui_token_tracking.storage.prices import PriceInput
from openwebui_token_tracking.storage.schema import ModelPricing

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PAST = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def defaults(engine: Engine) -> Engine:
    """``init``'s prices: genai-prices' current chat models."""
    with Session(engine) as s, s.begin():
        settings_store.ensure_defaults(s)
        for e in default_catalogue(credits_per_usd=settings_store.credits_per_usd(s), at=PAST):
            prices.set_price(s, provider=e.provider, model_id=e.model_id, name=e.name,
                             price=e.price, now=PAST, source="genai-prices")
    return engine


def price_rows(engine: Engine) -> int:
    with Session(engine) as s:
        return len(prices.list_prices(s))


def at(pipe: TrackedPipe, when: datetime) -> None:
    pipe.clock = lambda: when  # type: ignore[method-assign]


def ids(models: list[dict[str, str]]) -> list[str]:
    return [m["id"] for m in models]


async def test_openai_lists_served_ids_that_get_a_price(defaults, db_url):
    fake = FakeProvider(body("openai", "models.json"), body("openai", "models.json"))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    at(pipe, T0)
    before = price_rows(defaults)
    models = await pipe.pipes()
    assert ids(models) == ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini",
                           "gpt-4o-mini-2024-07-18", "o4-mini-2025-04-16"]
    by_id = {m["id"]: m["name"] for m in models}
    assert by_id["gpt-4o-2024-08-06"] == f"{by_id['gpt-4o']} (gpt-4o-2024-08-06)"
    [request] = fake.requests
    assert (request.method, str(request.url)) == ("GET", "https://api.openai.com/v1/models")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert price_rows(defaults) == before  # listing records nothing
    at(pipe, T0 + timedelta(minutes=4))
    assert ids(await pipe.pipes()) == ids(models) and len(fake.requests) == 1  # cached
    at(pipe, T0 + timedelta(minutes=6))
    assert ids(await pipe.pipes()) == ids(models) and len(fake.requests) == 2


async def test_a_listed_dated_id_is_charged_at_its_matched_price(defaults, db_url):
    fake = FakeProvider(body("openai", "models.json"),
                        sse(fixture_text("openai", "stream_usage.sse")))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    assert "gpt-4o-2024-08-06" in ids(await pipe.pipes())
    out = await drain(await pipe.pipe({"model": "tt_openai.gpt-4o-2024-08-06",
                                       "messages": messages(), "stream": True},
                                      __user__=ALICE))
    assert out[-1]["usage"]["prompt_tokens"] == 2061
    [row] = ledger(defaults)
    assert row.model_id == "gpt-4o-2024-08-06"
    # 141 fresh input at 2,500/1M, 1,920 cached at 1,250/1M, 12 output at 10,000/1M
    assert row.charged_micro == 141 * 2500 + 1920 * 1250 + 12 * 10000
    with Session(defaults) as s:
        alias = s.get(ModelPricing, ("openai", "gpt-4o-2024-08-06"))
        assert alias is not None and alias.matched_model_id == "gpt-4o"


@pytest.mark.parametrize("failure", [
    lambda: httpx.Response(401, json={"error": {"message": "Incorrect API key provided",
                                                "type": "invalid_request_error"}}),
    lambda: httpx.Response(404, text="404 page not found"),
    lambda: httpx.Response(200, json={"detail": "Not Found"}),
    lambda: httpx.Response(200, text="<html>proxy login</html>"),
])
async def test_an_unreadable_list_falls_back_to_the_priced_models(defaults, db_url, failure):
    fake = FakeProvider(failure)
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    at(pipe, T0)
    with Session(defaults) as s:
        priced = [r.id for r in prices.list_prices(s, provider="openai")]
    assert ids(await pipe.pipes()) == priced
    at(pipe, T0 + timedelta(seconds=30))
    assert ids(await pipe.pipes()) == priced and len(fake.requests) == 1  # asks again later


async def test_an_unreachable_server_falls_back(defaults, db_url):
    tried: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        tried.append(str(request.url))
        raise httpx.ConnectError("connection refused", request=request)
    pipe = make_pipe(OpenAITrackedPipe, db_url, FakeProvider())
    pipe.transport = httpx.MockTransport(refuse)
    models = ids(await pipe.pipes())
    assert tried == ["https://api.openai.com/v1/models"]
    assert "gpt-4o" in models and "gpt-4o-2024-08-06" not in models  # the priced list


async def test_anthropic_reads_every_page(defaults, db_url):
    fake = FakeProvider(body("anthropic", "models_page1.json"),
                        body("anthropic", "models_page2.json"))
    pipe = make_pipe(AnthropicTrackedPipe, db_url, fake)
    models = await pipe.pipes()
    assert models == [
        {"id": "claude-3-5-haiku-20241022", "name": "Claude Haiku 3.5"},
        {"id": "claude-3-7-sonnet-20250219", "name": "Claude Sonnet 3.7"},
        {"id": "claude-sonnet-4-20250514", "name": "Claude Sonnet 4"},
    ]  # claude-2.1 matches a legacy completion model, never priced by itself
    first, second = fake.requests
    assert str(first.url) == "https://api.anthropic.com/v1/models?limit=1000"
    assert second.url.params["after_id"] == "claude-3-7-sonnet-20250219"
    assert first.headers["x-api-key"] == "sk-test"
    assert first.headers["anthropic-version"] == "2023-06-01"


async def test_gemini_lists_generate_content_models_by_request_id(defaults, db_url):
    fake = FakeProvider(body("gemini", "models_page1.json"), body("gemini", "models_page2.json"))
    pipe = make_pipe(GoogleTrackedPipe, db_url, fake)
    models = await pipe.pipes()
    assert ids(models) == ["gemini-2.0-flash-001", "gemini-2.5-flash"]
    assert models[0]["name"] == "Gemini 2.0 Flash 001"
    first, second = fake.requests
    assert first.url.path == "/v1beta/models" and first.headers["x-goog-api-key"] == "sk-test"
    assert second.url.params["pageToken"] == "Chxtb2RlbHMvZ2VtaW5pLTEuNS1wcm8tMDAy"


async def test_mistral_dated_id_is_listed_once_an_admin_prices_it(defaults, db_url):
    fake = FakeProvider(body("mistral", "models.json"))
    pipe = make_pipe(MistralTrackedPipe, db_url, fake)
    assert ids(await pipe.pipes()) == ["mistral-large-2411"]
    with Session(defaults) as s, s.begin():
        prices.set_price(s, provider="mistral", model_id="mistral-small-2409",
                         name="Mistral Small (Cloud, Paid) 2024-09-01",
                         price=PriceInput(200, 10**6, 600, 10**6), now=PAST)
    models = await pipe.pipes()  # the served list is cached; prices are read every time
    assert models[1] == {"id": "mistral-small-2409",
                         "name": "Mistral Small (Cloud, Paid) 2024-09-01"}
    assert len(fake.requests) == 1
