"""The HTTP/1.1 connection and pool under httpx (``providers.http11``, ``transport``):
the ways a server may frame, end and refuse an answer, on real local sockets."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import httpx
import pytest
from local_http import TIMEOUT, Runner, Server

from openwebui_token_tracking.providers.transport import async_client


def answering(*responses: bytes, close_after: bool = False) -> Server:
    """A server that answers the requests of one connection with ``responses`` in turn."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            await server.head(reader)
            writer.write(response)
            await writer.drain()
        if not close_after:
            await reader.read()  # keep the connection until the client closes it
    server = Server(handler)
    return server


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"


def test_a_body_by_content_length_is_read_and_the_connection_reused(run: Runner) -> None:
    async def main() -> None:
        async with answering(OK, OK) as server, async_client(TIMEOUT) as client:
            first = await client.get(server.url + "/a")
            second = await client.get(server.url + "/b")
        assert (first.status_code, first.content, second.content) == (200, b"hello", b"hello")
        assert server.connections == 1
    run(main())


def test_a_body_that_ends_with_the_connection_is_read_whole(run: Runner) -> None:
    until_close = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it"

    async def main() -> None:
        async with answering(until_close, close_after=True) as server, \
                async_client(TIMEOUT) as client:
            first = await client.get(server.url + "/a")
            second = await client.get(server.url + "/b")  # a new connection
        assert first.content == second.content == b"all of it"
        assert server.connections == 2
    run(main())


def test_connection_close_is_honoured(run: Runner) -> None:
    closing = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"

    async def main() -> None:
        async with answering(closing, closing) as server, async_client(TIMEOUT) as client:
            await client.get(server.url + "/a")
            await client.get(server.url + "/b")
        assert server.connections == 2
    run(main())


def test_an_answer_closed_before_its_end_does_not_reuse_the_connection(run: Runner) -> None:
    long = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 100000

    async def main() -> None:
        async with answering(long, long) as server, async_client(TIMEOUT) as client:
            async with client.stream("GET", server.url + "/a") as response:
                async for _ in response.aiter_raw():
                    break  # the rest of the body would be read as the next answer's head
            again = await client.get(server.url + "/b")
        assert len(again.content) == 100000
        assert server.connections == 2
    run(main())


def test_an_informational_answer_before_the_answer_is_skipped(run: Runner) -> None:
    hints = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"

    async def main() -> None:
        async with answering(hints + OK, OK) as server, async_client(TIMEOUT) as client:
            first = await client.get(server.url + "/a")
            second = await client.get(server.url + "/b")
        assert (first.status_code, first.content, "link" in first.headers) == \
            (200, b"hello", False)
        assert second.content == b"hello"
        assert server.connections == 1
    run(main())


def test_headers_keep_their_order_and_repeats(run: Runner) -> None:
    answer = (b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\nx-a: 1\r\nx-a: 2\r\n"
              b"content-length: 0\r\n\r\n")

    async def main() -> None:
        async with answering(answer) as server, async_client(TIMEOUT) as client:
            response = await client.get(server.url + "/a")
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert response.headers.get_list("x-a") == ["1", "2"]
    run(main())


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 abc OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    b"<html>not HTTP</html>\r\n\r\n",
])
def test_a_malformed_answer_is_a_protocol_error(run: Runner, answer: bytes) -> None:
    async def main() -> None:
        async with answering(answer) as server, async_client(TIMEOUT) as client:
            with pytest.raises(httpx.RemoteProtocolError, match="malformed HTTP response"):
                response = await client.get(server.url + "/a")
                await response.aread()
    run(main())


def test_a_server_that_closes_without_answering_is_a_protocol_error(run: Runner) -> None:
    async def main() -> None:
        async with answering(b"", close_after=True) as server, \
                async_client(TIMEOUT) as client:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await client.get(server.url + "/a")
    run(main())


def test_a_body_of_unknown_length_is_sent_chunked(run: Runner) -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
        received.append(body)
        writer.write(OK)
        await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        for part in (b'{"a": ', b"", b'"b"}'):
            yield part

    async def main() -> None:
        async with Server(handler) as server, async_client(TIMEOUT) as client:
            response = await client.post(server.url + "/upload", content=parts())
        assert (response.content, received) == (b"hello", [b'{"a": "b"}'])
    run(main())


def test_a_head_request_does_not_wait_for_a_body(run: Runner) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"

    async def main() -> None:
        async with answering(head) as server, async_client(TIMEOUT) as client:
            response = await client.head(server.url + "/a")
        assert (response.status_code, response.content) == (200, b"")
    run(main())


def test_a_full_pool_waits_for_a_free_connection_then_times_out(run: Runner) -> None:
    async def main() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with answering(OK, OK, OK) as server, \
                async_client(httpx.Timeout(5.0, pool=0.2), limits=limits) as client:
            async with client.stream("GET", server.url + "/held"):
                with pytest.raises(httpx.PoolTimeout):
                    await client.get(server.url + "/waits")
                waiting = asyncio.create_task(client.get(server.url + "/waits"))
                await asyncio.sleep(0.05)
                assert not waiting.done()
            assert (await waiting).content == b"hello"  # the connection came free
    run(main())


def test_an_idle_connection_past_its_expiry_is_not_reused(run: Runner) -> None:
    async def main() -> None:
        limits = httpx.Limits(max_keepalive_connections=1, keepalive_expiry=0.1)
        async with answering(OK, OK) as server, answering(OK) as other, \
                async_client(TIMEOUT, limits=limits) as client:
            await client.get(server.url + "/a")
            await asyncio.sleep(0.2)
            await client.get(server.url + "/b")  # expired: a second connection
            assert server.connections == 2
            await client.get(other.url + "/c")  # one kept: the server's is closed
            await client.get(server.url + "/d")
        assert (server.connections, other.connections) == (3, 1)
    run(main())


def test_a_reset_ends_a_body_delimited_by_the_connection_as_an_error(run: Runner) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart of it")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, not FIN: the body did not end, it was cut off

    server = Server(handler)

    async def main() -> None:
        async with server, async_client(TIMEOUT) as client:
            with pytest.raises(httpx.ReadError, match="connection lost"):
                await client.get(server.url + "/a")
    run(main())


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(run: Runner) -> None:
    async def main() -> None:
        async with answering(OK) as server, async_client(TIMEOUT) as client:
            with pytest.raises(httpx.LocalProtocolError, match="line break"):
                await client.get(server.url + "/a",
                                 headers={"Authorization": "Bearer sk-1\r\nX-Injected: 1"})
        assert server.connections == 0
    run(main())


def test_without_a_keep_alive_cap_connections_are_kept(run: Runner) -> None:
    async def main() -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with answering(OK, OK) as server, async_client(TIMEOUT, limits=limits) as client:
            await client.get(server.url + "/a")
            await client.get(server.url + "/b")
        assert server.connections == 1
    run(main())

