"""Google Gemini's ``generateContent`` and ``streamGenerateContent?alt=sse``.

Usage (``usageMetadata``): ``promptTokenCount`` *includes*
``cachedContentTokenCount``; ``candidatesTokenCount`` is the visible answer and
``thoughtsTokenCount`` the thinking (billed as output); ``toolUsePromptTokenCount``
is prompt too. Every stream chunk carries the cumulative counts so far; the last wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..accounting.usage import Usage
from ..errors import InvalidInputError, ProviderError
from .content import MB, parse_data_url, part_url, require_messages, split_system
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

MAX_INLINE_BYTES = 20 * MB
"""Gemini refuses requests whose inline data exceed 20 MB in total."""


def usage_from_gemini(data: Mapping[str, Any] | None) -> Usage | None:
    if not isinstance(data, Mapping):
        return None
    prompt = token_count(data.get("promptTokenCount")) + token_count(
        data.get("toolUsePromptTokenCount"))
    cached = min(token_count(data.get("cachedContentTokenCount")), prompt)
    return Usage(input_tokens=prompt - cached, cached_input_tokens=cached,
                 output_tokens=token_count(data.get("candidatesTokenCount")),
                 reasoning_tokens=token_count(data.get("thoughtsTokenCount")))


class _Parts:
    """OpenAI-style content to Gemini ``parts``, with the request-wide inline limit."""

    def __init__(self) -> None:
        self.inline_bytes = 0
        self.index = 0

    def part(self, part: Mapping[str, Any]) -> dict[str, Any] | None:
        if part.get("type") == "text":
            return {"text": str(part.get("text") or "")}
        if part.get("type") != "image_url":
            return None
        self.index += 1
        inline = parse_data_url(part_url(part))
        if inline is None:
            raise InvalidInputError(
                f"attachment {self.index} is a link; Gemini cannot fetch links to files: "
                "upload the file itself")
        self.inline_bytes += inline.size
        if self.inline_bytes > MAX_INLINE_BYTES:
            raise InvalidInputError(
                f"attachments add up to {self.inline_bytes / MB:.1f} MB; Gemini accepts at "
                f"most {MAX_INLINE_BYTES // MB} MB of files per request: send fewer or "
                "smaller files")
        return {"inlineData": {"mimeType": inline.media_type, "data": inline.data_b64}}

    def parts(self, content: Any) -> list[dict[str, Any]]:
        if isinstance(content, str):
            return [{"text": content}]
        out = [self.part(p) for p in content or [] if isinstance(p, Mapping)]
        return [p for p in out if p is not None]


def _generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    names = {"temperature": "temperature", "top_p": "topP", "top_k": "topK",
             "seed": "seed", "max_tokens": "maxOutputTokens",
             "max_completion_tokens": "maxOutputTokens"}
    for key, name in names.items():
        if body.get(key) is not None:
            config[name] = body[key]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _deltas(data: Mapping[str, Any]) -> list[Delta]:
    candidates = data.get("candidates") or []
    if not candidates:
        feedback = data.get("promptFeedback") or {}
        if feedback.get("blockReason"):
            raise ProviderError(f"gemini refused the prompt: {feedback['blockReason']}")
        return []
    content = (candidates[0] or {}).get("content") or {}
    return [Delta(str(p["text"]), reasoning=bool(p.get("thought")))
            for p in content.get("parts") or []
            if isinstance(p, Mapping) and isinstance(p.get("text"), str) and p["text"]]


class GeminiStreamParser:
    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finished = False

    def feed(self, event: SSEEvent) -> list[Delta]:
        data = loads_event(event.data, "gemini")
        if not isinstance(data, Mapping):
            return []
        if data.get("error"):
            raise ProviderError(f"gemini failed mid-stream: {error_message(json.dumps(data))}")
        read_reported(self, lambda: usage_from_gemini(data.get("usageMetadata")), "gemini")
        return _deltas(data)


class Gemini:
    """The Gemini generateContent wire protocol."""

    name = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    max_image_bytes = MAX_INLINE_BYTES

    def payload(self, body: Mapping[str, Any]) -> dict[str, Any]:
        system, messages = split_system(require_messages(body))
        parts = _Parts()
        payload: dict[str, Any] = {"contents": [
            {"role": "model" if m.get("role") == "assistant" else "user",
             "parts": parts.parts(m.get("content"))} for m in messages]}
        if system:
            payload["systemInstruction"] = {"parts": [{"text": system}]}
        config = _generation_config(body)
        if config:
            payload["generationConfig"] = config
        return payload

    def build_call(self, conn: Connection, model_id: str, body: Mapping[str, Any],
                   stream: bool) -> HTTPCall:
        method = "streamGenerateContent" if stream else "generateContent"
        url = join_url(conn.base_url, "models", f"{quote(model_id, safe='')}:{method}")
        params = dict(conn.query)
        if stream:
            params["alt"] = "sse"
        headers = {"Content-Type": "application/json"}
        if conn.api_key:
            headers[conn.auth_header or "x-goog-api-key"] = conn.api_key
        return HTTPCall(url, headers, self.payload(body), params)

    def parse_completion(self, data: Mapping[str, Any]) -> Completion:
        return Completion.of(_deltas(data), completion_usage(
            lambda: usage_from_gemini(data.get("usageMetadata")), "gemini"))

    def stream_parser(self) -> GeminiStreamParser:
        return GeminiStreamParser()

    def models_call(self, conn: Connection, page: str | None) -> HTTPCall:
        """``GET models``, paged by ``pageToken``."""
        headers = {}
        if conn.api_key:
            headers[conn.auth_header or "x-goog-api-key"] = conn.api_key
        params = {**conn.query, "pageSize": "1000"}
        if page:
            params["pageToken"] = page
        return HTTPCall(join_url(conn.base_url, "models"), headers, {}, params, method="GET")

    def parse_models(self, data: Mapping[str, Any]) -> ModelPage:
        """Models that answer ``generateContent``; ``models/gemini-2.0-flash-001`` is
        listed as ``gemini-2.0-flash-001``, the id requests use."""
        models = [ServedModel(str(m["name"]).removeprefix("models/"),
                              m.get("displayName") or None)
                  for m in listed_models(data, "models", self.name)
                  if isinstance(m.get("name"), str)
                  and "generateContent" in (m.get("supportedGenerationMethods") or [])]
        token = data.get("nextPageToken")
        return ModelPage(models, str(token) if token else None)


PROTOCOL = Gemini()
