"""What a pipe sends back to Open WebUI: OpenAI-format chunks, completions, statuses."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..accountant import BalanceReport
from ..accounting.money import format_credits, quantize_display
from ..accounting.usage import Usage
from ..providers.openai_chat import openai_usage


def _ids(model: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}


def usage_chunk(model: str, usage: Usage) -> dict[str, Any]:
    """The last stream chunk: finish reason and usage, as OpenAI sends it."""
    return {**_ids(model), "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": openai_usage(usage)}


def completion(model: str, text: str, usage: Usage, reasoning: str = "") -> dict[str, Any]:
    """A whole ``chat.completion`` for a non-streamed request."""
    content = f"<think>\n{reasoning}\n</think>\n\n{text}" if reasoning else text
    return {**_ids(model), "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": openai_usage(usage)}


class ThinkTags:
    """Wraps reasoning deltas in ``<think>`` tags, which Open WebUI folds away."""

    def __init__(self) -> None:
        self.open = False

    def wrap(self, text: str, reasoning: bool) -> str:
        if reasoning and not self.open:
            self.open = True
            return "<think>\n" + text
        if not reasoning and self.open:
            self.open = False
            return "\n</think>\n\n" + text
        return text

    def close(self) -> str:
        return self.wrap("", False) if self.open else ""


def status_line(usage: Usage, charged_micro: int, report: BalanceReport | None) -> str:
    parts = [f"{usage.prompt_tokens} tokens in, {usage.response_tokens} out",
             f"{format_credits(charged_micro)} credits"]
    if report is not None and report.remaining is not None:
        parts.append(f"{quantize_display(report.remaining)} credits left")
    return " · ".join(parts)
