"""Local token estimates, for admission and for servers that report no usage.

The heuristic is deliberately simple and needs no download at run time: one token
per 4 characters (rounded up) of the text actually sent or streamed, the common rule
of thumb for English with BPE tokenizers, plus a flat ``IMAGE_TOKENS`` per image.
Rows charged from an estimate are stored with status ``estimated``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 1000
"""Flat estimate per image or file part (a 1024x1024 image is ~765-1600 tokens)."""
MESSAGE_OVERHEAD_TOKENS = 4
"""Role markers and separators per message, as OpenAI's chat format adds."""


def tokens_for_chars(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def tokens_for_text(text: str) -> int:
    return tokens_for_chars(len(text))


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return tokens_for_text(content)
    total = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text":
                total += tokens_for_text(str(part.get("text") or ""))
            else:
                total += IMAGE_TOKENS
    return total


def prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Estimated prompt tokens of OpenAI-style chat messages."""
    return sum(MESSAGE_OVERHEAD_TOKENS + _content_tokens(m.get("content"))
               for m in messages if isinstance(m, Mapping))
