"""What the gateway sends: OpenAI chat-completion bodies, stream chunks and errors.

Streams follow OpenAI: a first chunk with the assistant role, one chunk per delta
(thinking text as ``delta.reasoning_content``, as vLLM and DeepSeek send it), a chunk
with ``finish_reason``, then, only when the request set
``stream_options.include_usage``, a chunk with empty ``choices`` and the ``usage`` that
was charged, and ``data: [DONE]``. A provider failing mid-stream ends the stream with
``data: {"error": {...}}``, as OpenAI does.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..accounting.usage import Usage
from ..providers.openai_chat import openai_usage
from ..providers.protocol import Completion, Delta

DONE = b"data: [DONE]\n\n"


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def error_body(message: str, kind: str, code: str | None = None,
               param: str | None = None, **extra: Any) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code,
                      **extra}}


@dataclass
class Chunks:
    """The chunks of one streamed answer (one id and creation time for all)."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))
    _frames: tuple[tuple[bytes, bytes], tuple[bytes, bytes]] | None = field(
        default=None, init=False, repr=False, compare=False)
    """A delta chunk's bytes before and after its text, for content and for reasoning."""

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return event({"id": self.id, "object": "chat.completion.chunk",
                      "created": self.created, "model": self.model, "choices": choices,
                      **extra})

    def role(self) -> bytes:
        return self._chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                             "finish_reason": None}])

    def delta(self, delta: Delta) -> bytes:
        """``_chunk`` of one delta, with only the text encoded per call (the rest of
        the chunk is the same for every delta of the answer)."""
        content, reasoning = self._delta_frames()
        head, tail = reasoning if delta.reasoning else content
        return head + json.dumps(delta.text).encode() + tail

    def _delta_frames(self) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
        frames = self._frames
        if frames is None:
            marker = "\x00text\x00"
            out = []
            for key in ("content", "reasoning_content"):
                whole = self._chunk([{"index": 0, "delta": {key: marker},
                                      "finish_reason": None}])
                head, _, tail = whole.partition(json.dumps(marker).encode())
                out.append((head, tail))
            frames = self._frames = (out[0], out[1])
        return frames

    def finish(self) -> bytes:
        return self._chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])

    def usage(self, usage: Usage) -> bytes:
        return self._chunk([], usage=openai_usage(usage))


def completion_body(model: str, answer: Completion, usage: Usage) -> dict[str, Any]:
    """A whole ``chat.completion`` with the usage that was charged."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": openai_usage(usage)}


def model_card(model_id: str, owned_by: str, name: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owned_by,
            "name": name}
