"""A chat completion request as the gateway accepts it, checked before any admission."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest

UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call")
"""Tool calls are not relayed yet: refused rather than silently dropped."""


MAX_BODY_BYTES = 32 * 2**20
"""The largest request body read (a chat with several base64 images stays well under
it); a bigger one is refused before it fills the memory."""


def too_large() -> BadRequest:
    return BadRequest(f"the request body is larger than {MAX_BODY_BYTES // 2**20} MiB; "
                      "send fewer or smaller attachments", code="request_too_large",
                      status=413)


async def read_body(declared_length: str | None, chunks: AsyncIterable[bytes],
                    limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or ``BadRequest`` (413) as soon as it is known to pass
    ``limit`` bytes (by its Content-Length, else while it arrives)."""
    if declared_length is not None and declared_length.isdigit() \
            and int(declared_length) > limit:
        raise too_large()
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise too_large()
    return bytes(body)


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    max_output_tokens: int | None


def _positive_int(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{name} must be a positive integer, got {value!r}", param=name)
    return value


def parse_chat(raw: bytes) -> ChatRequest:
    """The request in ``raw``, or ``BadRequest`` saying what is wrong."""
    if not raw.strip():
        raise BadRequest("the request body is empty; send a chat completion request as "
                         "JSON ({\"model\": ..., \"messages\": [...]})", code="invalid_json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON ({exc}); send a chat "
                         "completion request as JSON", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with model and messages",
                         code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("model is required: the id of a model from GET /v1/models",
                         param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise BadRequest("messages must be a non-empty list of objects with a role and "
                         "content", param="messages")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest(f"stream must be true or false, got {stream!r}", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise BadRequest("stream_options must be an object", param="stream_options")
    for name in UNSUPPORTED:
        if body.get(name):
            raise BadRequest(f"{name} is not supported by this metered endpoint (tool "
                             "calls are not relayed); send the request without it",
                             param=name, code="unsupported_parameter")
    if body.get("n") not in (None, 1):
        raise BadRequest("n must be 1: one answer per request", param="n",
                         code="unsupported_parameter")
    max_out = _positive_int(body, "max_completion_tokens") or _positive_int(body, "max_tokens")
    return ChatRequest(body, model.strip(), stream, bool(options.get("include_usage")),
                       max_out)
