"""The OpenAI tracked pipe end to end against recorded streams (MockTransport)."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from fakes import (
    ALICE,
    FakeProvider,
    body,
    drain,
    fixture_text,
    ledger,
    make_pipe,
    messages,
    reservations,
    set_setting,
    sse,
)
from sqlalchemy.orm import Session

from openwebui_token_tracking.accounting.pricing import charge
from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.errors import (
    DailyTokenLimitExceededError,
    GroupBudgetExceededError,
    InvalidInputError,
    ProviderError,
    RateLimitExceededError,
    SpendCapExceededError,
)
from openwebui_token_tracking.openwebui import billing
from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe
from openwebui_token_tracking.storage import caps, group_limits, groups
from openwebui_token_tracking.storage.prices import PriceInput
from openwebui_token_tracking.storage.schema import RateCounter

pytestmark = pytest.mark.anyio
MODEL = "tt_openai.gpt-4o-mini"


def request(stream: bool, model: str = MODEL, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": messages(), "stream": stream, "chat_id": "ignored",
            **extra}


def price() -> PriceInput:
    from fakes import PAID
    return PAID


async def test_pipes_lists_the_providers_priced_models(priced, db_url):
    """Without a readable models list (here: a refused key) the priced models are listed."""
    pipe = make_pipe(OpenAITrackedPipe, db_url,
                     FakeProvider(body("openai", "error_401.json", status=401)))
    models = await pipe.pipes()
    assert models == [{"id": "gpt-4o-mini", "name": "GPT-4o mini"},
                      {"id": "llama-free", "name": "Llama (free)"},
                      {"id": "o4-mini", "name": "o4 mini"}]
    pipe.valves.PROVIDER = "anthropic"
    assert [m["id"] for m in await pipe.pipes()] == ["claude-sonnet-4"]


async def test_non_stream_returns_a_completion_and_charges_cached_and_reasoning(
        priced, db_url, anyio_backend):
    fake = FakeProvider(body("openai", "completion_reasoning.json"))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    out = await pipe.pipe(request(False, "tt_openai.o4-mini"), __user__=ALICE,
                          __chat_id__="c1", __message_id__="m1")
    assert out["choices"][0]["message"]["content"] == "Paris is the capital of France."
    assert out["usage"]["prompt_tokens"] == 1117
    assert out["usage"]["completion_tokens_details"]["reasoning_tokens"] == 38
    sent = fake.json()
    assert sent["model"] == "o4-mini" and sent["stream"] is False
    assert "stream_options" not in sent and "chat_id" not in sent
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"
    assert str(fake.requests[0].url) == "https://api.openai.com/v1/chat/completions"
    [row] = ledger(priced)
    usage = Usage(input_tokens=93, cached_input_tokens=1024, output_tokens=8,
                  reasoning_tokens=38)
    assert (row.input_tokens, row.cached_input_tokens, row.output_tokens,
            row.reasoning_tokens) == (93, 1024, 8, 38)
    assert row.status == "completed" and row.user_id == "u-alice"
    assert row.model_id == "o4-mini" and row.provider == "openai"
    assert (row.chat_id, row.message_id) == ("c1", "m1")
    assert row.charged_micro == charge(usage, price().to_price()).micro_credits
    assert reservations(priced) == 0


async def test_stream_yields_text_then_a_usage_chunk_and_charges_usage(priced, db_url):
    fake = FakeProvider(sse(fixture_text("openai", "stream_usage.sse")))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    out = await drain(await pipe.pipe(request(True), __user__=ALICE))
    text = "".join(x for x in out if isinstance(x, str))
    assert text == "The capital of France is Paris."
    final = out[-1]
    assert final["usage"]["prompt_tokens"] == 2061
    assert final["usage"]["prompt_tokens_details"]["cached_tokens"] == 1920
    assert final["choices"][0]["finish_reason"] == "stop"
    assert fake.json()["stream_options"] == {"include_usage": True}
    [row] = ledger(priced)
    assert (row.input_tokens, row.cached_input_tokens, row.output_tokens) == (141, 1920, 12)
    assert row.status == "completed"


async def test_reasoning_content_is_wrapped_in_think_tags(priced, db_url):
    fake = FakeProvider(sse(fixture_text("openai", "stream_reasoning_content.sse")))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    out = await drain(await pipe.pipe(request(True), __user__=ALICE))
    text = "".join(x for x in out if isinstance(x, str))
    assert text == "<think>\nThe user asks for a capital.\n</think>\n\nParis."
    [row] = ledger(priced)
    assert (row.input_tokens, row.output_tokens) == (20, 25)


async def test_server_without_usage_is_estimated_and_warned_once(priced, db_url, caplog):
    billing._warned_no_usage.clear()
    stream = fixture_text("openai", "stream_no_usage.sse")
    fake = FakeProvider(sse(stream), sse(stream))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    with caplog.at_level(logging.WARNING, logger=billing.__name__):
        for _ in range(2):
            out = await drain(await pipe.pipe(request(True), __user__=ALICE))
    warnings = [r for r in caplog.records if "reported no token usage" in r.message]
    assert len(warnings) == 1 and "gpt-4o-mini" in warnings[0].getMessage()
    rows = ledger(priced)
    assert [r.status for r in rows] == ["estimated", "estimated"]
    # ceil(31 chars / 4) = 8 output tokens; prompt: 2 messages x 4 + ceil(15/4) + ceil(30/4)
    assert (rows[0].input_tokens, rows[0].output_tokens) == (4 + 4 + 8 + 4, 8)
    assert out[-1]["usage"]["completion_tokens"] == 8


async def test_non_stream_without_usage_is_estimated(priced, db_url):
    fake = FakeProvider(body("openai", "completion_no_usage.json"))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    out = await pipe.pipe(request(False), __user__=ALICE)
    assert out["choices"][0]["message"]["content"] == "Paris is the capital of France."
    [row] = ledger(priced)
    assert row.status == "estimated" and row.output_tokens == 8 and row.charged_micro > 0


@pytest.mark.parametrize("stream", [True, False])
async def test_provider_error_before_any_token_raises_and_charges_nothing(
        priced, db_url, stream):
    fake = FakeProvider(body("openai", "error_401.json", status=401))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    with pytest.raises(ProviderError, match="HTTP 401: invalid_request_error: Incorrect API "
                       "key provided") as info:
        result = await pipe.pipe(request(stream), __user__=ALICE)
        await drain(result)
    assert info.value.status_code == 401
    assert isinstance(info.value.__cause__, Exception)
    assert ledger(priced) == [] and reservations(priced) == 0


async def test_provider_unreachable_is_a_provider_error(priced, db_url):
    import httpx

    async def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    pipe = make_pipe(OpenAITrackedPipe, db_url, FakeProvider())
    pipe.transport = httpx.MockTransport(refuse)
    with pytest.raises(ProviderError, match="could not be reached: ConnectError"):
        await pipe.pipe(request(False), __user__=ALICE)
    assert ledger(priced) == [] and reservations(priced) == 0


async def test_provider_error_mid_stream_charges_what_was_streamed_as_error(priced, db_url):
    fake = FakeProvider(sse(fixture_text("openai", "stream_error_midway.sse")))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    gen = await pipe.pipe(request(True), __user__=ALICE)
    seen = []
    with pytest.raises(ProviderError, match="server_error: The server had an error"):
        async for item in gen:
            seen.append(item)
    assert "".join(seen) == "The capital of"
    [row] = ledger(priced)
    assert row.status == "error"
    assert row.output_tokens == 4  # ceil(len("The capital of") / 4)
    assert row.input_tokens == 20 and reservations(priced) == 0


async def test_disconnect_mid_stream_charges_and_marks_stopped(priced, db_url):
    text = fixture_text("openai", "stream_usage.sse")
    fake = FakeProvider(sse(text, stall_after=4))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    gen = await pipe.pipe(request(True), __user__=ALICE, __chat_id__="c", __message_id__="m")
    got = [await gen.__anext__() for _ in range(3)]
    assert "".join(got) == "The capital of"
    await gen.aclose()  # Open WebUI closes the generator when the client goes away
    [row] = ledger(priced)
    assert row.status == "stopped"
    assert (row.input_tokens, row.output_tokens) == (20, 4)  # ceil(14 / 4)
    assert row.charged_micro > 0 and reservations(priced) == 0


async def test_cancelled_consumer_charges_and_marks_stopped(priced, db_url):
    fake = FakeProvider(sse(fixture_text("openai", "stream_usage.sse"), stall_after=3))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    gen = await pipe.pipe(request(True), __user__=ALICE)
    first = asyncio.Event()

    async def consume():
        async for _ in gen:
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    await asyncio.sleep(0.05)
    task.cancel()  # what Starlette does when the browser disconnects
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = ledger(priced)
    assert row.status == "stopped" and row.output_tokens == 3


async def test_limit_refusal_is_raised_with_the_facts_and_charges_nothing(priced, db_url):
    set_setting(priced, "base_credit_allowance", "0.001")
    set_setting(priced, "limit_contact_text", "Write to help@example.edu for more.")
    fake = FakeProvider()
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    with pytest.raises(DailyTokenLimitExceededError) as info:
        await pipe.pipe(request(True), __user__=ALICE)
    message = str(info.value)
    assert "credit allowance is used up" in message
    assert "Credits left: 0.00 of 0.00" in message
    assert "(Europe/Berlin)" in message and "reset at" in message
    assert "Write to help@example.edu for more." in message
    assert "free model Llama (free)" in message
    assert info.value.reset_at is not None
    assert fake.requests == [] and ledger(priced) == [] and reservations(priced) == 0


async def test_reset_time_falls_back_to_utc(priced, db_url):
    set_setting(priced, "base_credit_allowance", "0")
    pipe = make_pipe(OpenAITrackedPipe, db_url, FakeProvider())
    with pytest.raises(DailyTokenLimitExceededError, match=r"00:00 UTC \(UTC\)"):
        await pipe.pipe(request(False), __user__={**ALICE, "timezone": "Not/AZone"})


async def test_task_calls_are_charged_but_never_blocked(priced, db_url):
    set_setting(priced, "base_credit_allowance", "0")
    fake = FakeProvider(body("openai", "completion_reasoning.json"),
                        body("openai", "completion_reasoning.json"))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    out = await pipe.pipe(request(False), __user__=ALICE, __task__="title_generation",
                          __chat_id__="c", __message_id__="m")
    assert out["choices"][0]["message"]["content"]
    await pipe.pipe(request(False), __user__=ALICE,
                    __metadata__={"task": "tags_generation", "chat_id": "c",
                                  "message_id": "m"})
    rows = ledger(priced)
    assert [(r.task, r.message_id) for r in rows] == [
        ("title_generation", "m:title_generation"), ("tags_generation", "m:tags_generation")]
    assert all(r.charged_micro > 0 for r in rows)


async def test_image_over_the_limit_is_refused_before_admission(priced, db_url):
    import base64
    big = base64.b64encode(b"\0" * (20 * 1024 * 1024 + 10)).decode()
    msgs = [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{big}"}}]}]
    fake = FakeProvider()
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    with pytest.raises(InvalidInputError, match=r"attachment 1 \(image/png\) is 20.0 MB; "
                       "openai accepts at most 20 MB"):
        await pipe.pipe({"model": MODEL, "messages": msgs, "stream": False}, __user__=ALICE)
    assert fake.requests == [] and ledger(priced) == []


async def test_images_are_passed_through_in_openai_format(priced, db_url):
    url = "data:image/png;base64,iVBORw0KGgo="
    msgs = [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]
    fake = FakeProvider(body("openai", "completion_reasoning.json"))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    await pipe.pipe({"model": MODEL, "messages": msgs, "stream": False}, __user__=ALICE)
    assert fake.json()["messages"] == msgs


async def test_azure_is_configuration(priced, db_url):
    fake = FakeProvider(body("openai", "completion_reasoning.json"))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake,
                     API_BASE_URL="https://res.openai.azure.com/openai/deployments/gpt4omini",
                     AUTH_HEADER="api-key", QUERY_PARAMS="api-version=2024-10-21")
    await pipe.pipe(request(False), __user__=ALICE)
    sent = fake.requests[0]
    assert str(sent.url) == ("https://res.openai.azure.com/openai/deployments/gpt4omini/"
                             "chat/completions?api-version=2024-10-21")
    assert sent.headers["api-key"] == "sk-test" and "authorization" not in sent.headers


async def test_environment_defaults_survive_valve_reinstantiation(priced, db_url,
                                                                  monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_API_BASE_URL", "http://vllm.local:8000/v1")
    monkeypatch.setenv("DATABASE_URL", db_url)
    fake = FakeProvider(body("openai", "completion_reasoning.json"))
    pipe = OpenAITrackedPipe()
    pipe.transport = make_pipe(OpenAITrackedPipe, db_url, fake).transport
    pipe.valves = pipe.Valves(**{})  # what Open WebUI does before every call
    await pipe.pipe(request(False), __user__=ALICE)
    assert fake.requests[0].headers["authorization"] == "Bearer sk-from-env"
    assert str(fake.requests[0].url) == "http://vllm.local:8000/v1/chat/completions"
    assert len(ledger(priced)) == 1


async def test_provider_valve_bills_another_provider(priced, db_url):
    fake = FakeProvider(body("openai", "completion_reasoning.json"))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake, PROVIDER="mistral")
    await pipe.pipe(request(False, "my_fn.mistral-small-latest"), __user__=ALICE)
    [row] = ledger(priced)
    assert (row.provider, row.model_id) == ("mistral", "mistral-small-latest")


async def test_status_line_reports_tokens_credits_and_balance(priced, db_url):
    events = []

    async def emit(event):
        events.append(event)

    fake = FakeProvider(sse(fixture_text("openai", "stream_usage.sse")))
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake, SHOW_STATUS=True)
    await drain(await pipe.pipe(request(True), __user__=ALICE, __event_emitter__=emit))
    [event] = events
    assert event["type"] == "status" and event["data"]["done"] is True
    text = event["data"]["description"]
    # 141 x 1000 + 1920 x 500 + 12 x 4000 credits per 1M tokens = 1.149 credits
    assert text == "2061 tokens in, 12 out · 1.149 credits · 998.85 credits left"


async def test_rate_limit_refusal_says_when_to_retry_in_the_users_zone(priced, db_url):
    set_setting(priced, "requests_per_minute", "1")
    with Session(priced) as s, s.begin():  # a request counted this minute (or later)
        s.add(RateCounter(user_id=ALICE["id"], minute_start=2**40, requests=1, tokens=0))
    fake = FakeProvider()
    pipe = make_pipe(OpenAITrackedPipe, db_url, fake)
    with pytest.raises(RateLimitExceededError) as info:
        await pipe.pipe(request(True), __user__=ALICE)
    message = str(info.value)
    assert message.startswith("This request was refused: you are sending too much too fast "
                              "(rate limit reached: 1 of 1 requests this minute).")
    assert re.search(r"You can retry at \d{4}-\d\d-\d\d \d\d:\d\d:00 CES?T \(Europe/Berlin\)",
                     message), message
    assert info.value.reason == "rate_limit_requests" and info.value.reset_at is not None
    assert fake.requests == [] and reservations(priced) == 0


async def test_a_request_larger_than_the_token_rate_limit_is_refused(priced, db_url):
    set_setting(priced, "tokens_per_minute", "100")
    pipe = make_pipe(OpenAITrackedPipe, db_url, FakeProvider())
    with pytest.raises(RateLimitExceededError, match="more than the limit of 100 tokens"):
        await pipe.pipe(request(False), __user__=ALICE)


async def test_spend_cap_and_team_budget_refusals_name_the_limit(priced, db_url):
    with Session(priced) as s, s.begin():
        caps.set_cap(s, kind="model", target="gpt-4o-mini", credit_limit=0)
    pipe = make_pipe(OpenAITrackedPipe, db_url, FakeProvider())
    with pytest.raises(SpendCapExceededError) as info:
        await pipe.pipe(request(False), __user__=ALICE)
    assert "your spend cap on this model is used up (spend cap on model 'gpt-4o-mini'" \
        in str(info.value)
    assert "Credits left: 0.00 of 0.00" in str(info.value)
    assert info.value.reason == "model_cap"
    with Session(priced) as s, s.begin():
        caps.remove_cap(s, kind="model", target="gpt-4o-mini")
        groups.create_group(s, "Team", 10)
        groups.add_member(s, "Team", ALICE["id"])
        group_limits.set_group_limits(s, "Team", total_credit_limit=0)
    with pytest.raises(GroupBudgetExceededError,
                       match="your credit group's team budget is used up"):
        await pipe.pipe(request(False), __user__=ALICE)
