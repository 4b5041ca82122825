"""Message content shared by the adapters: text, system prompts, inline files.

Open WebUI sends OpenAI-style messages: ``content`` is a string or a list of parts
(``{"type": "text"}`` and ``{"type": "image_url", "image_url": {"url": ...}}`` where
the URL is usually a ``data:`` URL). Each adapter converts parts to its own format;
this module parses data URLs and enforces size limits with one clear error.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError

MB = 1024 * 1024


@dataclass(frozen=True)
class InlineFile:
    """A ``data:`` URL's contents: its media type and base64 payload."""

    media_type: str
    data_b64: str

    @property
    def size(self) -> int:
        """Decoded size in bytes (computed from the base64 length)."""
        n = len(self.data_b64)
        return n * 3 // 4 - self.data_b64[-2:].count("=") if n else 0


def parse_data_url(url: str) -> InlineFile | None:
    """``data:<type>;base64,<payload>`` as an ``InlineFile``; None for other URLs."""
    if not url.startswith("data:"):
        return None
    header, sep, payload = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidInputError(
            "an attached file is not a base64 data URL; attach it again as an upload")
    payload = payload.strip()
    try:
        base64.b64decode(payload[:64] + "=" * (-len(payload[:64]) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError("an attached file's data is not valid base64") from exc
    media_type = header.removesuffix(";base64").split(";")[0] or "application/octet-stream"
    return InlineFile(media_type.lower(), payload)


def part_url(part: Mapping[str, Any]) -> str:
    """The URL of an ``image_url`` part (object or bare-string form)."""
    value = part.get("image_url")
    if isinstance(value, Mapping):
        value = value.get("url")
    if not isinstance(value, str) or not value:
        raise InvalidInputError("an image part has no URL")
    return value


def check_size(file: InlineFile, limit: int, provider: str, index: int) -> None:
    if file.size > limit:
        raise InvalidInputError(
            f"attachment {index} ({file.media_type}) is {file.size / MB:.1f} MB; {provider} "
            f"accepts at most {limit / MB:.0f} MB per file: send a smaller or compressed file"
        )


def check_types(file: InlineFile, allowed: Iterable[str], provider: str, index: int) -> None:
    allowed = tuple(allowed)
    if file.media_type not in allowed:
        raise InvalidInputError(
            f"attachment {index} is {file.media_type}, which {provider} does not accept "
            f"here; accepted: {', '.join(allowed)}"
        )


def text_of(content: Any) -> str:
    """The text of a message's content (string, or the text parts of a list)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text") or "") for p in content
                         if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def split_system(messages: Iterable[Mapping[str, Any]]
                 ) -> tuple[str, list[Mapping[str, Any]]]:
    """System messages joined into one prompt, and the other messages in order."""
    system, rest = [], []
    for message in messages:
        if message.get("role") == "system":
            text = text_of(message.get("content"))
            if text:
                system.append(text)
        else:
            rest.append(message)
    return "\n\n".join(system), rest


def require_messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInputError("the request has no messages to send")
    return [m for m in messages if isinstance(m, Mapping)]
