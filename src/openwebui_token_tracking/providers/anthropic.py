"""Anthropic's Messages API.

Usage: ``message_start`` carries ``input_tokens`` (uncached prompt),
``cache_creation_input_tokens`` (written to the cache) and ``cache_read_input_tokens``
(read from it) — three disjoint counts; ``message_delta`` carries the *cumulative*
``output_tokens`` (thinking included: Anthropic bills thinking as output and does not
report it apart). Non-streamed answers carry the same fields in ``usage``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..accounting.usage import Usage
from ..errors import ProviderError
from .content import (
    MB,
    check_size,
    check_types,
    parse_data_url,
    part_url,
    require_messages,
    split_system,
)
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

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; used when the request sets none."""
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
DOCUMENT_TYPES = ("application/pdf",)
MAX_DOCUMENT_BYTES = 32 * MB


def usage_from_anthropic(data: Mapping[str, Any] | None, base: Usage | None = None
                         ) -> Usage | None:
    """Anthropic ``usage`` as ``Usage``; fields absent from ``data`` keep ``base``'s."""
    if not isinstance(data, Mapping):
        return base
    base = base or Usage()

    def pick(key: str, current: int) -> int:
        return token_count(data[key]) if data.get(key) is not None else current

    return Usage(
        input_tokens=pick("input_tokens", base.input_tokens),
        cached_input_tokens=pick("cache_read_input_tokens", base.cached_input_tokens),
        cache_write_tokens=pick("cache_creation_input_tokens", base.cache_write_tokens),
        output_tokens=pick("output_tokens", base.output_tokens),
    )


class _Converter:
    """OpenAI-style content parts to Anthropic content blocks, numbering attachments."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.index = 0

    def block(self, part: Mapping[str, Any]) -> dict[str, Any] | None:
        kind = part.get("type")
        if kind == "text":
            return {"type": "text", "text": str(part.get("text") or "")}
        if kind != "image_url":
            return None
        self.index += 1
        url = part_url(part)
        inline = parse_data_url(url)
        if inline is None:
            return {"type": "image", "source": {"type": "url", "url": url}}
        if inline.media_type in DOCUMENT_TYPES:
            check_size(inline, MAX_DOCUMENT_BYTES, "anthropic", self.index)
            return {"type": "document", "source": {
                "type": "base64", "media_type": inline.media_type, "data": inline.data_b64}}
        check_types(inline, IMAGE_TYPES + DOCUMENT_TYPES, "anthropic", self.index)
        check_size(inline, self.limit, "anthropic", self.index)
        return {"type": "image", "source": {
            "type": "base64", "media_type": inline.media_type, "data": inline.data_b64}}

    def content(self, content: Any) -> str | list[dict[str, Any]]:
        if isinstance(content, str):
            return content
        blocks = [self.block(p) for p in content or [] if isinstance(p, Mapping)]
        return [b for b in blocks if b is not None]


class AnthropicStreamParser:
    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finished = False

    def feed(self, event: SSEEvent) -> list[Delta]:
        data = loads_event(event.data, "anthropic")
        if not isinstance(data, Mapping):
            return []
        kind = data.get("type") or event.event
        if kind == "error":
            raise ProviderError(f"anthropic failed mid-stream: {error_message(json.dumps(data))}")
        if kind == "message_start":
            message = data.get("message") or {}
            read_reported(self, lambda: usage_from_anthropic(message.get("usage"), self.usage),
                          "anthropic")
        elif kind == "message_delta":
            read_reported(self, lambda: usage_from_anthropic(data.get("usage"), self.usage),
                          "anthropic")
        elif kind == "message_stop":
            self.finished = True
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [Delta(str(delta["text"]))]
            if delta.get("type") == "thinking_delta" and delta.get("thinking"):
                return [Delta(str(delta["thinking"]), reasoning=True)]
        return []


class Anthropic:
    """The Anthropic Messages wire protocol."""

    name = "anthropic"
    default_base_url = "https://api.anthropic.com/v1"
    max_image_bytes = 5 * MB

    def payload(self, model_id: str, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        system, messages = split_system(require_messages(body))
        convert = _Converter(self.max_image_bytes)
        payload: dict[str, Any] = {
            "model": model_id,
            "max_tokens": int(body.get("max_tokens") or body.get("max_completion_tokens")
                              or DEFAULT_MAX_TOKENS),
            "messages": [{"role": "assistant" if m.get("role") == "assistant" else "user",
                          "content": convert.content(m.get("content"))} for m in messages],
            "stream": stream,
        }
        if system:
            payload["system"] = system
        for key in ("temperature", "top_p", "top_k", "thinking", "metadata_user"):
            if body.get(key) is not None:
                payload[key] = body[key]
        stop = body.get("stop")
        if stop:
            payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        return payload

    def build_call(self, conn: Connection, model_id: str, body: Mapping[str, Any],
                   stream: bool) -> HTTPCall:
        headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION}
        if conn.api_key:
            headers[conn.auth_header or "x-api-key"] = conn.api_key
        return HTTPCall(join_url(conn.base_url, "messages"), headers,
                        self.payload(model_id, body, stream), dict(conn.query))

    def parse_completion(self, data: Mapping[str, Any]) -> Completion:
        blocks = [b for b in data.get("content") or [] if isinstance(b, Mapping)]
        return Completion(
            text="".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text"),
            usage=completion_usage(lambda: usage_from_anthropic(data.get("usage")),
                                   "anthropic"),
            reasoning="".join(str(b.get("thinking") or "") for b in blocks
                              if b.get("type") == "thinking"),
        )

    def stream_parser(self) -> AnthropicStreamParser:
        return AnthropicStreamParser()

    def models_call(self, conn: Connection, page: str | None) -> HTTPCall:
        """``GET /v1/models``, paged by ``after_id``."""
        headers = {"anthropic-version": API_VERSION}
        if conn.api_key:
            headers[conn.auth_header or "x-api-key"] = conn.api_key
        params = {**conn.query, "limit": "1000"}
        if page:
            params["after_id"] = page
        return HTTPCall(join_url(conn.base_url, "models"), headers, {}, params, method="GET")

    def parse_models(self, data: Mapping[str, Any]) -> ModelPage:
        models = [ServedModel(str(m["id"]), m.get("display_name") or None)
                  for m in listed_models(data, "data", self.name)
                  if isinstance(m.get("id"), str)]
        last = data.get("last_id")
        return ModelPage(models, str(last) if data.get("has_more") and last else None)


PROTOCOL = Anthropic()
