"""OpenAI chat completions, and every server that speaks it (vLLM, Ollama's /v1, TGI,
OpenRouter, Azure OpenAI): those differ only in configuration (base URL, key, auth
header, query parameters), never in code.

Usage: ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens`` and
``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``; both
are split out so no token is billed twice. Streams ask for
``stream_options.include_usage`` and read the usage from the last chunk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ..accounting.usage import Usage
from ..errors import ProviderError
from .content import MB, check_size, parse_data_url, part_url, require_messages
from .errors import error_message
from .protocol import (
    Completion,
    Connection,
    Delta,
    HTTPCall,
    ModelPage,
    ServedModel,
    completion_usage,
    join_url,
    listed_models,
    loads_event,
    read_reported,
    token_count,
)
from .sse import SSEEvent

PASSTHROUGH = frozenset({
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "n",
    "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
    "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort",
    "user", "modalities", "prediction", "service_tier", "verbosity",
})
"""Body keys forwarded; Open WebUI's own keys (chat_id, features, ...) are dropped."""
MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})


def usage_from_openai(data: Mapping[str, Any] | None) -> Usage | None:
    """OpenAI's ``usage`` object as disjoint ``Usage``; None when absent."""
    if not isinstance(data, Mapping):
        return None
    prompt = token_count(data.get("prompt_tokens"))
    completion = token_count(data.get("completion_tokens"))
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    cached = min(token_count(prompt_details.get("cached_tokens")), prompt)
    reasoning = min(token_count(completion_details.get("reasoning_tokens")), completion)
    return Usage(input_tokens=prompt - cached, cached_input_tokens=cached,
                 output_tokens=completion - reasoning, reasoning_tokens=reasoning)


def openai_usage(usage: Usage) -> dict[str, Any]:
    """``Usage`` in OpenAI's shape (the inverse of :func:`usage_from_openai`)."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.response_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens,
                                  "cache_write_tokens": usage.cache_write_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _check_parts(content: Any, provider: str, limit: int, index: int) -> int:
    if not isinstance(content, list):
        return index
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "image_url":
            index += 1
            inline = parse_data_url(part_url(part))
            if inline is not None:
                check_size(inline, limit, provider, index)
    return index


def openai_messages(body: Mapping[str, Any], provider: str, limit: int
                    ) -> list[dict[str, Any]]:
    """Messages as sent: known keys only, images checked against the size limit."""
    messages, index = [], 0
    for message in require_messages(body):
        index = _check_parts(message.get("content"), provider, limit, index)
        messages.append({k: v for k, v in message.items() if k in MESSAGE_KEYS})
    return messages


def _delta_text(choice: Mapping[str, Any], key: str) -> list[Delta]:
    delta = choice.get(key) or {}
    out = []
    for name in ("reasoning_content", "reasoning"):
        thought = delta.get(name)
        if isinstance(thought, str) and thought:
            out.append(Delta(thought, reasoning=True))
            break
    text = delta.get("content")
    if isinstance(text, str) and text:
        out.append(Delta(text))
    return out


UsageReader = Callable[[Mapping[str, Any] | None], Usage | None]
DeltaReader = Callable[[Mapping[str, Any], str], list[Delta]]


class OpenAIStreamParser:
    """Chunks of ``chat.completion.chunk``; usage from whichever chunk carries it."""

    def __init__(self, provider: str = "openai", read_usage: UsageReader | None = None,
                 read_delta: DeltaReader | None = None) -> None:
        self.usage: Usage | None = None
        self.finished = False
        self.provider = provider
        self.read_usage = read_usage or usage_from_openai
        self.read_delta = read_delta or _delta_text

    def feed(self, event: SSEEvent) -> list[Delta]:
        if event.data.strip() == "[DONE]":
            self.finished = True
            return []
        chunk = loads_event(event.data, self.provider)
        if not isinstance(chunk, Mapping):
            return []
        if chunk.get("error"):
            raise ProviderError(f"{self.provider} failed mid-stream: "
                                f"{error_message(json.dumps(chunk))}")
        read_reported(self, lambda: self.read_usage(chunk.get("usage")), self.provider)
        deltas: list[Delta] = []
        for choice in chunk.get("choices") or []:
            if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                deltas.extend(self.read_delta(choice, "delta"))
        return deltas


class OpenAIChat:
    """The OpenAI chat-completions wire protocol."""

    name = "openai"
    default_base_url = "https://api.openai.com/v1"
    max_image_bytes = 20 * MB
    read_usage = staticmethod(usage_from_openai)
    read_delta = staticmethod(_delta_text)

    def headers(self, conn: Connection) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if conn.api_key:
            if conn.auth_header and conn.auth_header.lower() != "authorization":
                headers[conn.auth_header] = conn.api_key
            else:
                headers["Authorization"] = f"Bearer {conn.api_key}"
        return headers

    def payload(self, model_id: str, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {k: v for k, v in body.items() if k in PASSTHROUGH}
        payload["model"] = model_id
        payload["messages"] = openai_messages(body, self.name, self.max_image_bytes)
        payload["stream"] = stream
        if stream:
            payload["stream_options"] = {"include_usage": True}
        return payload

    def build_call(self, conn: Connection, model_id: str, body: Mapping[str, Any],
                   stream: bool) -> HTTPCall:
        return HTTPCall(join_url(conn.base_url, "chat/completions"), self.headers(conn),
                        self.payload(model_id, body, stream), dict(conn.query))

    def parse_completion(self, data: Mapping[str, Any]) -> Completion:
        choices = data.get("choices") or []
        first = choices[0] if choices and isinstance(choices[0], Mapping) else {}
        return Completion.of(self.read_delta(first, "message"), completion_usage(
            lambda: self.read_usage(data.get("usage")), self.name))

    def stream_parser(self) -> OpenAIStreamParser:
        return OpenAIStreamParser(self.name, self.read_usage, self.read_delta)

    def models_call(self, conn: Connection, page: str | None) -> HTTPCall:
        """``GET /models`` (OpenAI lists every model on one page)."""
        headers = {k: v for k, v in self.headers(conn).items() if k != "Content-Type"}
        return HTTPCall(join_url(conn.base_url, "models"), headers, {}, dict(conn.query),
                        method="GET")

    def serves_chat(self, entry: Mapping[str, Any]) -> bool:
        """OpenAI's list does not say; the pricing decides which ids are chat models."""
        return True

    def parse_models(self, data: Mapping[str, Any]) -> ModelPage:
        return ModelPage([ServedModel(str(m["id"])) for m in
                          listed_models(data, "data", self.name)
                          if isinstance(m.get("id"), str) and self.serves_chat(m)])


PROTOCOL = OpenAIChat()
