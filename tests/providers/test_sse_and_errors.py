"""The shared SSE reader and the one boundary error mapper."""

from __future__ import annotations

import httpx
import pytest

from openwebui_token_tracking.errors import ProviderError
from openwebui_token_tracking.providers.errors import error_message, map_http_errors
from openwebui_token_tracking.providers.sse import SSEEvent, aiter_sse

pytestmark = pytest.mark.anyio


async def events(text: str) -> list[SSEEvent]:
    async def lines():
        for line in text.split("\n"):
            yield line

    return [e async for e in aiter_sse(lines())]


async def test_sse_names_joins_multiline_data_and_skips_comments():
    text = (": keep-alive\n\nevent: message_start\ndata: {\"a\":\n"
            "data: 1}\n\ndata: plain\r\n\r\n\n\ndata:no-space\n")
    assert await events(text) == [SSEEvent('{"a":\n1}', "message_start"),
                                  SSEEvent("plain"), SSEEvent("no-space")]


async def test_sse_event_without_data_is_not_delivered():
    assert await events("event: ping\n\n") == []


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"error": {"message": "bad key", "type": "invalid_request_error"}}',
     "invalid_request_error: bad key"),
    (b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
     "overloaded_error: Overloaded"),
    (b'[{"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}]',
     "RESOURCE_EXHAUSTED: Quota"),
    (b'{"detail": "Unauthorized"}', "Unauthorized"),
    (b'{"error": "model not found"}', "model not found"),
    (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    (b"", "(empty response body)"),
])
def test_error_message_shapes(raw, expected):
    assert error_message(raw) == expected


def test_status_errors_become_provider_errors_with_the_cause():
    request = httpx.Request("POST", "https://api.example/v1/chat/completions")
    response = httpx.Response(503, content=b'{"error": {"message": "down"}}', request=request)
    with pytest.raises(ProviderError, match="acme returned HTTP 503: down") as info:
        with map_http_errors("acme"):
            response.raise_for_status()
    assert info.value.status_code == 503
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)


@pytest.mark.parametrize(("exc", "match"), [
    (httpx.ReadTimeout("slow"), "did not answer in time"),
    (httpx.ConnectError("refused"), "could not be reached: ConnectError: refused"),
    (httpx.RemoteProtocolError("peer closed"), "could not be reached: RemoteProtocolError"),
])
def test_transport_errors_become_provider_errors(exc, match):
    with pytest.raises(ProviderError, match=match) as info:
        with map_http_errors("acme"):
            raise exc
    assert info.value.__cause__ is exc


def test_other_exceptions_pass_through():
    with pytest.raises(KeyError), map_http_errors("acme"):
        raise KeyError("not ours to translate")
