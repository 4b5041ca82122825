"""HTTP for every adapter: one non-streamed POST, or one SSE stream.

Everything here is async (httpx.AsyncClient): a pipe must never block Open WebUI's
event loop. Errors leave as ``ProviderError`` through :func:`.errors.map_http_errors`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..accounting.usage import Usage
from ..errors import InvalidInputError, ProviderError
from .errors import map_http_errors, raise_for_status
from .protocol import (
    Completion,
    Connection,
    Delta,
    HTTPCall,
    ServedModel,
    StreamParser,
    WireProtocol,
)
from .sse import aiter_lines, aiter_sse


@functools.lru_cache(maxsize=256)
def _url(url: str) -> httpx.URL:
    """An endpoint's URL parsed once (httpx parsed it twice per request: about 5% of the
    gateway's event-loop CPU per relayed request, profiled)."""
    return httpx.URL(url)


def _request(client: httpx.AsyncClient, call: HTTPCall, **options: Any) -> httpx.Request:
    try:
        return client.build_request(call.method, _url(call.url), headers=call.headers,
                                    params=call.params,
                                    json=call.json if call.method == "POST" else None,
                                    **options)
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"the request contains text that is not valid Unicode ({exc.reason} at "
            f"character {exc.start}); it cannot be sent") from exc
    except ValueError as exc:  # NaN or infinity, which JSON cannot carry
        raise InvalidInputError(f"the request cannot be sent as JSON: {exc}") from exc


MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest non-streamed answer read (a long answer is well under 1 MB; a bigger body
is a broken server, refused before it fills the memory)."""


async def _read_body(response: httpx.Response, provider: str) -> bytes:
    body = bytearray()
    with map_http_errors(provider):
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise ProviderError(f"{provider} answered with a body larger than "
                                    f"{MAX_BODY_BYTES // 2**20} MB; it was not read further")
    return bytes(body)


async def complete(client: httpx.AsyncClient, protocol: WireProtocol, call: HTTPCall,
                   provider: str) -> Completion:
    """Send a non-streamed request and parse the answer."""
    with map_http_errors(provider):
        response = await client.send(_request(client, call), stream=True)
    try:
        await raise_for_status(response, provider)
        raw = await _read_body(response, provider)
    finally:
        await response.aclose()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProviderError(f"{provider} answered with a body that is not valid UTF-8 "
                            f"(byte {exc.start})") from exc
    try:
        data: Any = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ProviderError(f"{provider} answered with a body that is not JSON: "
                            f"{text[:200]!r}") from exc
    if not isinstance(data, dict):
        raise ProviderError(f"{provider} answered with unexpected JSON: {str(data)[:200]}")
    return protocol.parse_completion(data)


MAX_MODEL_PAGES = 10


async def list_models(client: httpx.AsyncClient, protocol: WireProtocol, conn: Connection,
                      provider: str, timeout_s: float) -> list[ServedModel]:
    """The chat models the server lists, every page; ``ProviderError`` on any failure."""
    models: list[ServedModel] = []
    page: str | None = None
    for _ in range(MAX_MODEL_PAGES):
        call = protocol.models_call(conn, page)
        with map_http_errors(provider):
            response = await client.send(_request(client, call, timeout=timeout_s))
        await raise_for_status(response, provider)
        try:
            data: Any = response.json()
        except ValueError as exc:
            raise ProviderError(f"{provider} listed its models in a body that is not JSON: "
                                f"{response.text[:200]!r}") from exc
        if not isinstance(data, dict):
            raise ProviderError(f"{provider} listed its models as unexpected JSON: "
                                f"{str(data)[:200]}")
        listed = protocol.parse_models(data)
        models.extend(listed.models)
        page = listed.next_page
        if not page:
            break
    return models


class ProviderStream:
    """An open streamed response: iterate :meth:`deltas`, then read :attr:`usage`."""

    def __init__(self, response: httpx.Response, parser: StreamParser, provider: str) -> None:
        self.response = response
        self.parser = parser
        self.provider = provider

    @property
    def usage(self) -> Usage | None:
        """The usage the server reported so far (cumulative), None if none yet."""
        return self.parser.usage

    async def deltas(self) -> AsyncIterator[Delta]:
        """The stream's text; after the protocol's last event the rest of the body is
        read (and ignored), so the connection goes back to the pool for the next request."""
        with map_http_errors(self.provider):
            lines = aiter_lines(self.response.aiter_bytes(), self.provider)
            async for event in aiter_sse(lines):
                if not self.parser.finished:  # read on to the end: the connection is reused
                    for delta in self.parser.feed(event):
                        yield delta

    async def aclose(self) -> None:
        await self.response.aclose()


async def open_stream(client: httpx.AsyncClient, protocol: WireProtocol, call: HTTPCall,
                      provider: str) -> ProviderStream:
    """Send a streamed request; a refusal (4xx/5xx) raises before any event is read."""
    with map_http_errors(provider):
        response = await client.send(_request(client, call), stream=True)
    try:
        await raise_for_status(response, provider)
    except BaseException:
        await response.aclose()
        raise
    return ProviderStream(response, protocol.stream_parser(), provider)

