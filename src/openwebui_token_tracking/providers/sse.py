"""One Server-Sent Events reader for every provider's stream.

Follows the WHATWG event-stream rules that matter for LLM APIs: ``data:`` lines of
one event are joined with newlines, a blank line ends an event, lines starting with
``:`` are comments (keep-alives), ``event:`` names the event. An event still pending
when the stream ends is delivered too (some servers omit the last blank line).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from ..errors import ProviderError

MAX_LINE_BYTES = 8 * 1024 * 1024
"""The longest line a stream may send (one event's data, such as an inline image);
a longer one is a broken or hostile server, refused before it fills the memory."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One event: its name (``message`` when unnamed) and its data text."""

    data: str
    event: str = "message"


async def aiter_sse(lines: AsyncIterable[str]) -> AsyncIterator[SSEEvent]:
    """Events from a stream of text lines (such as ``httpx.Response.aiter_lines()``)."""
    data: list[str] = []
    event = ""
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent("\n".join(data), event or "message")
            data, event = [], ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield SSEEvent("\n".join(data), event or "message")


def _decode(line: bytes, provider: str, number: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProviderError(
            f"{provider} sent a stream that is not valid UTF-8 (line {number}, byte "
            f"{exc.start}); the answer was cut off there") from exc


async def aiter_lines(chunks: AsyncIterable[bytes], provider: str,
                      max_line_bytes: int = MAX_LINE_BYTES) -> AsyncIterator[str]:
    """Text lines of a byte stream: UTF-8 strictly, each at most ``max_line_bytes``.

    Lines end at LF, CRLF or a lone CR, as the event-stream format allows. A line that
    is too long or not UTF-8 raises ``ProviderError`` saying so.
    """
    pending: list[bytes] = []
    pending_size = 0
    number = 0
    after_cr = False  # the previous chunk ended with CR: an LF starting this one is its pair
    async for chunk in chunks:
        if after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        after_cr = chunk.endswith(b"\r")
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            if pending:
                part = b"".join(pending) + part
                pending, pending_size = [], 0
            number += 1
            if len(part) > max_line_bytes:
                raise _too_long(provider, number, max_line_bytes)
            yield _decode(part, provider, number)
        tail = parts[-1]
        if tail:
            pending.append(tail)
            pending_size += len(tail)
            if pending_size > max_line_bytes:
                raise _too_long(provider, number + 1, max_line_bytes)
    if pending:
        yield _decode(b"".join(pending), provider, number + 1)


def _too_long(provider: str, number: int, limit: int) -> ProviderError:
    return ProviderError(f"{provider} sent a stream line longer than {limit // 2**20} MB "
                         f"(line {number}); the stream was stopped there")
