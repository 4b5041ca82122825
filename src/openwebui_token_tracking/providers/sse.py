"""One Server-Sent Events reader for every provider's stream.

Follows the WHATWG event-stream rules that matter for LLM APIs: ``data:`` lines of
one event are joined with newlines, a blank line ends an event, lines starting with
``:`` are comments (keep-alives), ``event:`` names the event. An event still pending
when the stream ends is delivered too (some servers omit the last blank line).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


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
