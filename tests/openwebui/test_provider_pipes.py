"""Every tracked pipe against its provider's recorded formats: the same guarantees."""

from __future__ import annotations

from dataclasses import dataclass

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
    sse,
    strip_usage,
)

from openwebui_token_tracking.errors import InvalidInputError, ProviderError
from openwebui_token_tracking.openwebui.pipe import TrackedPipe
from openwebui_token_tracking.pipes import (
    AnthropicTrackedPipe,
    GoogleTrackedPipe,
    MistralTrackedPipe,
    OpenAITrackedPipe,
)

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Case:
    cls: type[TrackedPipe]
    fixtures: str
    model: str
    provider: str
    url_stream: str
    url_plain: str
    body_json: str
    body_usage: tuple[int, int, int, int, int]
    """input, cached, cache write, output, reasoning from the JSON body fixture."""
    stream_text: str
    stream_usage: tuple[int, int, int, int, int]
    error_body: str
    error_status: int
    error_match: str
    midway_match: str
    midway_text: str


CASES = [
    Case(AnthropicTrackedPipe, "anthropic", "claude-sonnet-4", "anthropic",
         "https://api.anthropic.com/v1/messages", "https://api.anthropic.com/v1/messages",
         "message.json", (21, 1500, 188, 57, 0),
         "<think>\nA simple fact.\n</think>\n\nThe capital of France is Paris.",
         (21, 1500, 188, 42, 0),
         "error_401.json", 401, "HTTP 401: authentication_error: invalid x-api-key",
         "overloaded_error: Overloaded", "The capital of France"),
    Case(GoogleTrackedPipe, "gemini", "gemini-2.5-flash", "google_genai",
         "https://generativelanguage.googleapis.com/v1beta/models/"
         "gemini-2.5-flash:streamGenerateContent?alt=sse",
         "https://generativelanguage.googleapis.com/v1beta/models/"
         "gemini-2.5-flash:generateContent",
         "generate.json", (286, 1024, 0, 8, 120),
         "<think>\n**Recalling a fact**\n</think>\n\nThe capital of France is Paris.",
         (286, 1024, 0, 8, 120),
         "error_400.json", 400, "HTTP 400: INVALID_ARGUMENT: API key not valid",
         "UNAVAILABLE: The model is overloaded", "The capital of"),
    Case(MistralTrackedPipe, "mistral", "mistral-small-latest", "mistral",
         "https://api.mistral.ai/v1/chat/completions",
         "https://api.mistral.ai/v1/chat/completions",
         "completion.json", (12, 0, 0, 28, 0),
         "The capital of France is Paris.", (476, 1024, 0, 9, 0),
         "error_401.json", 401, "HTTP 401: Unauthorized",
         "Service unavailable", "The capital"),
]
IDS = [c.fixtures for c in CASES]


def req(case: Case, stream: bool) -> dict[str, object]:
    return {"model": f"fn_{case.fixtures}.{case.model}", "messages": messages(),
            "stream": stream, "max_tokens": 300}


def tokens(row) -> tuple[int, int, int, int, int]:
    return (row.input_tokens, row.cached_input_tokens, row.cache_write_tokens,
            row.output_tokens, row.reasoning_tokens)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_non_stream(case: Case, priced, db_url):
    fake = FakeProvider(body(case.fixtures, case.body_json))
    pipe = make_pipe(case.cls, db_url, fake)
    out = await pipe.pipe(req(case, False), __user__=ALICE)
    content = out["choices"][0]["message"]["content"]
    assert content.endswith("The capital of France is Paris.")
    assert str(fake.requests[0].url) == case.url_plain
    [row] = ledger(priced)
    assert (row.provider, row.model_id, row.status) == (case.provider, case.model,
                                                         "completed")
    assert tokens(row) == case.body_usage
    assert out["usage"]["prompt_tokens"] == sum(case.body_usage[:3])


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_stream(case: Case, priced, db_url):
    fake = FakeProvider(sse(fixture_text(case.fixtures, "stream.sse")))
    pipe = make_pipe(case.cls, db_url, fake)
    out = await drain(await pipe.pipe(req(case, True), __user__=ALICE))
    assert "".join(x for x in out if isinstance(x, str)) == case.stream_text
    assert out[-1]["usage"]["completion_tokens"] == sum(case.stream_usage[3:])
    assert str(fake.requests[0].url) == case.url_stream
    [row] = ledger(priced)
    assert tokens(row) == case.stream_usage and row.status == "completed"


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_stream_without_usage_is_estimated(case: Case, priced, db_url):
    text = strip_usage(fixture_text(case.fixtures, "stream.sse"))
    pipe = make_pipe(case.cls, db_url, FakeProvider(sse(text)))
    await drain(await pipe.pipe(req(case, True), __user__=ALICE))
    [row] = ledger(priced)
    streamed = len(case.stream_text.replace("<think>\n", "").replace("\n</think>\n\n", ""))
    assert row.status == "estimated"
    assert row.output_tokens == -(-streamed // 4) and row.input_tokens == 20


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_error_before_any_token(case: Case, stream: bool, priced, db_url):
    fake = FakeProvider(body(case.fixtures, case.error_body, case.error_status))
    pipe = make_pipe(case.cls, db_url, fake)
    with pytest.raises(ProviderError, match=case.error_match) as info:
        await drain(await pipe.pipe(req(case, True), __user__=ALICE)) if stream else \
            await pipe.pipe(req(case, False), __user__=ALICE)
    assert info.value.status_code == case.error_status
    assert ledger(priced) == [] and reservations(priced) == 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_error_mid_stream(case: Case, priced, db_url):
    fake = FakeProvider(sse(fixture_text(case.fixtures, "stream_error_midway.sse")))
    pipe = make_pipe(case.cls, db_url, fake)
    seen: list[object] = []
    with pytest.raises(ProviderError, match=case.midway_match):
        async for item in await pipe.pipe(req(case, True), __user__=ALICE):
            seen.append(item)
    assert "".join(map(str, seen)) == case.midway_text
    [row] = ledger(priced)
    assert row.status == "error" and row.charged_micro > 0
    assert reservations(priced) == 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_disconnect_mid_stream(case: Case, priced, db_url):
    text = fixture_text(case.fixtures, "stream.sse")
    pipe = make_pipe(case.cls, db_url, FakeProvider(sse(text, stall_after=3)))
    gen = await pipe.pipe(req(case, True), __user__=ALICE)
    first = await gen.__anext__()
    assert first
    await gen.aclose()
    [row] = ledger(priced)
    assert row.status == "stopped" and row.charged_micro > 0 and reservations(priced) == 0


async def test_anthropic_request_format(priced, db_url):
    fake = FakeProvider(body("anthropic", "message.json"))
    pipe = make_pipe(AnthropicTrackedPipe, db_url, fake)
    png = "data:image/png;base64,iVBORw0KGgo="
    msgs = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": png}}]}]
    await pipe.pipe({"model": "a.claude-sonnet-4", "messages": msgs, "stop": "END"},
                    __user__=ALICE)
    sent = fake.json()
    assert fake.requests[0].headers["x-api-key"] == "sk-test"
    assert fake.requests[0].headers["anthropic-version"] == "2023-06-01"
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 4096
    assert sent["stop_sequences"] == ["END"]
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}}]}]


async def test_anthropic_refuses_big_images_and_unknown_types(priced, db_url):
    import base64
    big = base64.b64encode(b"\0" * (5 * 1024 * 1024 + 1)).decode()
    pipe = make_pipe(AnthropicTrackedPipe, db_url, FakeProvider())
    for url, match in [(f"data:image/jpeg;base64,{big}", "anthropic accepts at most 5 MB"),
                       ("data:image/bmp;base64,Qk0=", "image/bmp, which anthropic does not")]:
        msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
        with pytest.raises(InvalidInputError, match=match):
            await pipe.pipe({"model": "a.claude-sonnet-4", "messages": msgs}, __user__=ALICE)
    assert ledger(priced) == []


async def test_gemini_request_format_and_link_refusal(priced, db_url):
    fake = FakeProvider(body("gemini", "generate.json"))
    pipe = make_pipe(GoogleTrackedPipe, db_url, fake)
    msgs = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": [
                {"type": "text", "text": "And this?"},
                {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklG"}}]}]
    await pipe.pipe({"model": "g.gemini-2.5-flash", "messages": msgs, "temperature": 0.2,
                     "max_tokens": 100}, __user__=ALICE)
    sent = fake.json()
    assert fake.requests[0].headers["x-goog-api-key"] == "sk-test"
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert sent["contents"][2]["parts"][1] == {"inlineData": {"mimeType": "image/webp",
                                                              "data": "UklG"}}
    assert sent["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 100}
    link = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}]}]
    with pytest.raises(InvalidInputError, match="Gemini cannot fetch links"):
        await pipe.pipe({"model": "g.gemini-2.5-flash", "messages": link}, __user__=ALICE)


async def test_mistral_request_format(priced, db_url):
    fake = FakeProvider(sse(fixture_text("mistral", "stream.sse")))
    pipe = make_pipe(MistralTrackedPipe, db_url, fake)
    await drain(await pipe.pipe({"model": "m.mistral-small-latest", "messages": messages(),
                                 "stream": True, "seed": 7, "features": {}},
                                __user__=ALICE))
    sent = fake.json()
    assert sent["random_seed"] == 7 and "seed" not in sent and "features" not in sent
    assert "stream_options" not in sent
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"


async def test_legacy_valve_names_still_configure_the_key(priced, db_url):
    fake = FakeProvider(body("anthropic", "message.json"))
    pipe = make_pipe(AnthropicTrackedPipe, db_url, fake)
    pipe.valves = pipe.Valves(DATABASE_URL=db_url, ANTHROPIC_API_KEY="sk-ant-legacy")
    await pipe.pipe({"model": "a.claude-sonnet-4", "messages": messages()}, __user__=ALICE)
    assert fake.requests[0].headers["x-api-key"] == "sk-ant-legacy"


def test_open_webui_sees_api_keys_as_secrets():
    for cls in (OpenAITrackedPipe, AnthropicTrackedPipe, GoogleTrackedPipe,
                MistralTrackedPipe):
        props = cls.Valves.model_json_schema()["properties"]
        assert props["API_KEY"]["input"] == {"type": "password"}
        assert {"API_KEY", "API_BASE_URL", "PROVIDER", "DATABASE_URL"} <= set(props)
        assert cls().type == "manifold"
