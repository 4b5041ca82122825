"""Each adapter turns its provider's usage report into disjoint ``Usage`` exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.errors import InvalidInputError, ProviderError
from openwebui_token_tracking.providers import ANTHROPIC, GEMINI, MISTRAL, OPENAI
from openwebui_token_tracking.providers.anthropic import usage_from_anthropic
from openwebui_token_tracking.providers.content import parse_data_url
from openwebui_token_tracking.providers.estimate import prompt_tokens, tokens_for_text
from openwebui_token_tracking.providers.gemini import usage_from_gemini
from openwebui_token_tracking.providers.mistral import usage_from_mistral
from openwebui_token_tracking.providers.openai_chat import usage_from_openai
from openwebui_token_tracking.providers.protocol import Connection
from openwebui_token_tracking.providers.sse import SSEEvent

FIXTURES = Path(__file__).parents[1] / "fixtures"


def load(provider: str, name: str) -> dict:
    return json.loads((FIXTURES / provider / name).read_text())


def replay(protocol, provider: str, name: str):
    parser = protocol.stream_parser()
    deltas = []
    for block in (FIXTURES / provider / name).read_text().split("\n\n"):
        lines = [x for x in block.splitlines() if x]
        if not lines:
            continue
        event = next((x[7:] for x in lines if x.startswith("event: ")), "message")
        data = "\n".join(x[6:] for x in lines if x.startswith("data: "))
        deltas += parser.feed(SSEEvent(data, event))
    return parser, deltas


def test_openai_splits_cached_prompt_and_reasoning_completion():
    usage = OPENAI.parse_completion(load("openai", "completion_reasoning.json")).usage
    assert usage == Usage(input_tokens=1117 - 1024, cached_input_tokens=1024,
                          output_tokens=46 - 38, reasoning_tokens=38)
    assert usage.prompt_tokens == 1117 and usage.response_tokens == 46


def test_openai_stream_usage_from_the_last_chunk():
    parser, deltas = replay(OPENAI, "openai", "stream_usage.sse")
    assert parser.finished
    assert parser.usage == Usage(input_tokens=141, cached_input_tokens=1920, output_tokens=12)
    assert "".join(d.text for d in deltas) == "The capital of France is Paris."


def test_openai_usage_tolerates_nulls_and_inconsistent_details():
    assert usage_from_openai(None) is None
    assert usage_from_openai({"prompt_tokens": 10, "completion_tokens": None,
                              "prompt_tokens_details": None}) == Usage(input_tokens=10)
    # cached larger than prompt (a buggy server) never makes a negative count
    assert usage_from_openai({"prompt_tokens": 5, "completion_tokens": 3,
                              "prompt_tokens_details": {"cached_tokens": 9},
                              "completion_tokens_details": {"reasoning_tokens": 4}}
                             ) == Usage(cached_input_tokens=5, reasoning_tokens=3)


def test_openai_no_usage_stream():
    parser, _ = replay(OPENAI, "openai", "stream_no_usage.sse")
    assert parser.usage is None and parser.finished


def test_openai_midstream_error_event():
    with pytest.raises(ProviderError, match="server_error"):
        replay(OPENAI, "openai", "stream_error_midway.sse")


def test_anthropic_message_start_and_cumulative_message_delta():
    parser, deltas = replay(ANTHROPIC, "anthropic", "stream.sse")
    assert parser.usage == Usage(input_tokens=21, cached_input_tokens=1500,
                                 cache_write_tokens=188, output_tokens=42)
    assert [d.reasoning for d in deltas] == [True, False, False, False]
    assert parser.finished


def test_anthropic_delta_may_update_input_counts():
    base = usage_from_anthropic({"input_tokens": 10, "cache_read_input_tokens": 5,
                                 "output_tokens": 1})
    later = usage_from_anthropic({"output_tokens": 30, "input_tokens": 12,
                                  "cache_creation_input_tokens": None}, base)
    assert later == Usage(input_tokens=12, cached_input_tokens=5, output_tokens=30)


def test_anthropic_non_stream():
    done = ANTHROPIC.parse_completion(load("anthropic", "message.json"))
    assert done.text == "The capital of France is Paris." and done.reasoning
    assert done.usage == Usage(input_tokens=21, cached_input_tokens=1500,
                               cache_write_tokens=188, output_tokens=57)


def test_gemini_prompt_includes_cache_and_thoughts_are_reasoning():
    assert usage_from_gemini(load("gemini", "generate.json")["usageMetadata"]) == Usage(
        input_tokens=1310 - 1024, cached_input_tokens=1024, output_tokens=8,
        reasoning_tokens=120)
    parser, deltas = replay(GEMINI, "gemini", "stream.sse")
    assert parser.usage == Usage(input_tokens=286, cached_input_tokens=1024,
                                 output_tokens=8, reasoning_tokens=120)
    assert deltas[0].reasoning and not deltas[1].reasoning


def test_gemini_tool_use_prompt_counts_as_input():
    assert usage_from_gemini({"promptTokenCount": 10, "toolUsePromptTokenCount": 5,
                              "candidatesTokenCount": 2}) == Usage(input_tokens=15,
                                                                   output_tokens=2)


def test_gemini_blocked_prompt_is_a_provider_error():
    with pytest.raises(ProviderError, match="refused the prompt: SAFETY"):
        GEMINI.parse_completion({"promptFeedback": {"blockReason": "SAFETY"},
                                 "usageMetadata": {"promptTokenCount": 8}})


def test_mistral_usage_and_thinking_chunks():
    done = MISTRAL.parse_completion(load("mistral", "completion.json"))
    assert done.text == "The capital of France is Paris."
    assert done.reasoning == "The user asks a simple fact."
    assert done.usage == Usage(input_tokens=12, output_tokens=28)
    parser, _ = replay(MISTRAL, "mistral", "stream.sse")
    assert parser.usage == Usage(input_tokens=476, cached_input_tokens=1024, output_tokens=9)
    assert usage_from_mistral({"prompt_tokens": 3, "completion_tokens": 1,
                               "total_tokens": 4}) == Usage(input_tokens=3, output_tokens=1)


def test_openai_compatible_call_building():
    conn = Connection("http://localhost:11434/v1/", api_key="")
    call = OPENAI.build_call(conn, "llama3.1:8b", {"messages": [{"role": "user",
                                                                  "content": "hi"}]}, True)
    assert call.url == "http://localhost:11434/v1/chat/completions"
    assert "authorization" not in {k.lower() for k in call.headers}
    assert call.json["model"] == "llama3.1:8b"


def test_estimates_are_character_based():
    assert tokens_for_text("") == 0 and tokens_for_text("abcd") == 1
    assert tokens_for_text("abcde") == 2
    msgs = [{"role": "user", "content": [{"type": "text", "text": "abcdefgh"},
                                         {"type": "image_url", "image_url": {"url": "x"}}]}]
    assert prompt_tokens(msgs) == 4 + 2 + 1000


def test_data_urls():
    inline = parse_data_url("data:image/PNG;base64,aGVsbG8=")
    assert inline is not None and inline.media_type == "image/png" and inline.size == 5
    assert parse_data_url("https://example.org/x.png") is None
    with pytest.raises(InvalidInputError, match="not a base64 data URL"):
        parse_data_url("data:text/plain,hello")
    with pytest.raises(InvalidInputError, match="not valid base64"):
        parse_data_url("data:image/png;base64,***")


def test_no_messages_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="no messages"):
        OPENAI.build_call(Connection("https://x"), "m", {"messages": []}, False)
