"""The one boundary where httpx and HTTP status errors become ``ProviderError``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from ..errors import ProviderError

MAX_MESSAGE_CHARS = 500


def error_message(body: bytes | str) -> str:
    """The human message in a provider's error body, whatever its shape.

    OpenAI/Mistral: ``{"error": {"message": ...}}``; Anthropic:
    ``{"type": "error", "error": {"type": ..., "message": ...}}``; Gemini:
    ``{"error": {"code": ..., "message": ..., "status": ...}}``; others: ``message``
    or ``detail`` at the top level. Falls back to the raw text.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data: Any = json.loads(text)
    except ValueError:
        return text.strip()[:MAX_MESSAGE_CHARS] or "(empty response body)"
    if isinstance(data, list) and data:  # Gemini sometimes wraps errors in a list
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, str):
            return err[:MAX_MESSAGE_CHARS]
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or data.get("detail")
            kind = err.get("type") or err.get("status") or err.get("code")
            if message:
                prefix = f"{kind}: " if isinstance(kind, str) and kind else ""
                return f"{prefix}{message}"[:MAX_MESSAGE_CHARS]
    return text.strip()[:MAX_MESSAGE_CHARS]


@contextmanager
def map_http_errors(provider: str) -> Iterator[None]:
    """Translate httpx's exceptions into ``ProviderError`` (``raise ... from exc``).

    An ``HTTPStatusError`` must carry a response whose body was already read.
    """
    try:
        yield
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        detail = error_message(exc.response.content)
        raise ProviderError(f"{provider} returned HTTP {status}: {detail}",
                            status_code=status) from exc
    except httpx.TimeoutException as exc:
        raise ProviderError(
            f"{provider} did not answer in time ({type(exc).__name__}); try again later"
        ) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(
            f"{provider} could not be reached: {type(exc).__name__}: {exc}") from exc


async def raise_for_status(response: httpx.Response, provider: str) -> None:
    """Raise ``ProviderError`` with the provider's message for a 4xx/5xx response."""
    if not response.is_error:
        return
    with map_http_errors(provider):
        await response.aread()
        response.raise_for_status()
