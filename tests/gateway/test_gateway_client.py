"""The official ``openai`` client against the gateway (uvicorn) and the fake upstream."""

from __future__ import annotations

import pytest
from gw_support import ALICE_KEY, MODEL_OF, PAID, ledger, messages, reservations

from openwebui_token_tracking.accounting.pricing import charge
from openwebui_token_tracking.accounting.usage import Usage

# (provider, usage the fixture reports: charged exactly as the pipes charge it)
STREAM_USAGE = {
    "openai": Usage(input_tokens=141, cached_input_tokens=1920, output_tokens=12),
    "anthropic": Usage(input_tokens=21, cached_input_tokens=1500, cache_write_tokens=188,
                       output_tokens=0),
    "google_genai": None,
    "mistral": None,
}



@pytest.mark.parametrize("provider", list(MODEL_OF))
def test_stream_per_protocol_with_usage_chunk(oai, gateway_url, gw_engine, upstream, provider):
    stream = oai().chat.completions.create(
        model=MODEL_OF[provider], messages=messages(), stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    [row] = ledger(gw_engine)
    assert row.provider == provider and row.model_id == MODEL_OF[provider]
    assert row.user_id == "u-alice" and row.status == "completed"
    assert row.entry_point == "gateway" and row.api_key_id.startswith("key-")
    assert chunks[-1].usage.prompt_tokens == row.input_tokens + row.cached_input_tokens \
        + row.cache_write_tokens
    assert chunks[-1].usage.completion_tokens == row.output_tokens + row.reasoning_tokens
    usage = Usage(input_tokens=row.input_tokens, cached_input_tokens=row.cached_input_tokens,
                  cache_write_tokens=row.cache_write_tokens, output_tokens=row.output_tokens,
                  reasoning_tokens=row.reasoning_tokens)
    assert row.charged_micro == charge(usage, PAID.to_price()).micro_credits > 0
    assert reservations(gw_engine) == 0
    path, sent, headers = upstream[0].requests[-1]
    assert ALICE_KEY not in str(sent) and ALICE_KEY not in str(headers)  # never forwarded


@pytest.mark.parametrize("provider", list(MODEL_OF))
def test_non_stream_per_protocol(oai, gateway_url, gw_engine, provider):
    answer = oai().chat.completions.create(
        model=MODEL_OF[provider], messages=messages())
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content
    assert answer.model == MODEL_OF[provider]
    [row] = ledger(gw_engine)
    assert row.status == "completed" and row.entry_point == "gateway"
    assert answer.usage.prompt_tokens == row.input_tokens + row.cached_input_tokens \
        + row.cache_write_tokens
    assert answer.usage.completion_tokens == row.output_tokens + row.reasoning_tokens


def test_no_usage_chunk_unless_asked(oai, gateway_url, gw_engine):
    chunks = list(oai().chat.completions.create(
        model="gpt-4o-mini", messages=messages(), stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    [row] = ledger(gw_engine)
    assert row.status == "completed" and row.input_tokens == 141  # charged all the same
