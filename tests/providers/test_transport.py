"""The providers' HTTP transport (``providers.transport``) against real local sockets:
a scripted HTTP/1.1 server in the test's own event loop, plain and over TLS."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest
import trustme
from local_http import SSE_HEAD, TIMEOUT, Runner, Server, chunked

from openwebui_token_tracking.errors import ProviderError
from openwebui_token_tracking.providers.errors import map_http_errors
from openwebui_token_tracking.providers.http11 import READ_BUFFER_LIMIT
from openwebui_token_tracking.providers.transport import AsyncioTransport, async_client

EVENTS = [b'data: {"n": %d}\n\n' % i for i in range(5)] + [b"data: [DONE]\n\n"]


def sse_server(keep_alive: bool = True) -> Server:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.head(reader)
            writer.write(SSE_HEAD)
            for event in EVENTS:
                writer.write(chunked([event])[:-5])  # one chunk, then the next
                await writer.drain()
                await asyncio.sleep(0.001)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            if not keep_alive:
                await asyncio.sleep(0.05)
                return  # closes the idle connection
    server = Server(handler)
    return server


async def read_stream(client: httpx.AsyncClient, url: str) -> bytes:
    async with client.stream("POST", url, json={"stream": True}) as response:
        assert response.status_code == 200
        return b"".join([part async for part in response.aiter_bytes()])


def test_the_client_streams_on_asyncio_sockets_and_reuses_its_connection(run: Runner) -> None:
    async def main() -> None:
        async with sse_server() as server:
            async with async_client(TIMEOUT) as client:
                assert isinstance(client._transport, AsyncioTransport)
                first = await read_stream(client, server.url + "/v1/chat")
                second = await read_stream(client, server.url + "/v1/chat")
        assert first == second == b"".join(EVENTS)
        assert server.connections == 1
        assert server.request_lines == ["POST /v1/chat HTTP/1.1"] * 2
    run(main())


def test_an_idle_connection_the_server_closed_is_replaced(run: Runner) -> None:
    async def main() -> None:
        async with sse_server(keep_alive=False) as server:
            async with async_client(TIMEOUT) as client:
                await read_stream(client, server.url + "/a")
                await asyncio.sleep(0.2)  # the server has closed it meanwhile
                assert await read_stream(client, server.url + "/b") == b"".join(EVENTS)
        assert server.connections == 2
    run(main())


def test_a_large_body_is_read_whole_while_the_socket_is_paused(run: Runner) -> None:
    size = 16 * 1024 * 1024
    body = bytes(range(256)) * (size // 256)
    backlog: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + body)
        await asyncio.sleep(0.3)
        assert writer.transport is not None
        backlog.append(writer.transport.get_write_buffer_size())
        await writer.drain()

    server = Server(handler)

    async def main() -> None:
        async with server, async_client(TIMEOUT) as client:
            async with client.stream("GET", server.url + "/big") as response:
                await asyncio.sleep(0.3)  # read nothing: the client stops reading
                got = b"".join([part async for part in response.aiter_raw()])
        assert got == body
        # The server could not hand everything over while the client was not reading.
        assert backlog and backlog[0] > READ_BUFFER_LIMIT
    run(main())


def test_a_stalled_answer_times_out_as_httpx_does(run: Runner) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(SSE_HEAD + chunked([EVENTS[0]])[:-5])
        await writer.drain()
        await asyncio.sleep(5)

    server = Server(handler)

    async def main() -> None:
        async with server, async_client(httpx.Timeout(5.0, read=0.2)) as client:
            with pytest.raises(ProviderError, match="did not answer in time"):
                with map_http_errors("openai"):
                    await read_stream(client, server.url + "/slow")
            with pytest.raises(httpx.ReadTimeout):
                await read_stream(client, server.url + "/slow")
    run(main())


def test_an_answer_cut_off_mid_body_is_a_protocol_error(run: Runner) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(SSE_HEAD + chunked([EVENTS[0]])[:-5])
        await writer.drain()  # then the connection closes, mid-answer

    server = Server(handler)

    async def main() -> None:
        async with server, async_client(TIMEOUT) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await read_stream(client, server.url + "/cut")
            with pytest.raises(ProviderError, match="could not be reached"):
                with map_http_errors("openai"):
                    await read_stream(client, server.url + "/cut")
    run(main())


def test_a_refused_connection_is_a_connect_error(run: Runner) -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        async with async_client(TIMEOUT) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")
    run(main())


def test_a_body_the_server_does_not_read_times_out_writing(run: Runner) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)  # never reads

    server = Server(handler)

    async def main() -> None:
        async with server, async_client(httpx.Timeout(5.0, write=0.3)) as client:
            with pytest.raises(httpx.WriteTimeout):
                await client.post(server.url + "/upload", content=b"x" * (64 * 1024 * 1024))
    run(main())


def test_a_cancelled_read_leaves_the_client_usable(run: Runner) -> None:
    async def main() -> None:
        async with sse_server() as server, async_client(TIMEOUT) as client:
            async def stalled() -> None:
                async with client.stream("GET", server.url + "/x") as response:
                    async for _ in response.aiter_bytes():
                        await asyncio.sleep(10)
            task = asyncio.create_task(stalled())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await read_stream(client, server.url + "/y") == b"".join(EVENTS)
    run(main())


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(ca: trustme.CA) -> Server:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret")
        await writer.drain()

    server = Server(handler, tls=context)
    return server


def test_tls_with_a_trusted_certificate(run: Runner, ca: trustme.CA) -> None:
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)

    async def main() -> None:
        async with tls_server(ca) as server:
            async with async_client(TIMEOUT, ssl_context=trusted) as client:
                response = await client.get(server.url + "/tls")
        assert (response.status_code, response.content) == (200, b"secret")
    run(main())


def test_tls_refuses_a_certificate_it_does_not_trust(run: Runner, ca: trustme.CA) -> None:
    async def main() -> None:
        async with tls_server(ca) as server, async_client(TIMEOUT) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(server.url + "/tls")
    run(main())


def test_a_proxy_in_the_environment_is_honoured(run: Runner,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await proxy.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nproxied")
        await writer.drain()

    proxy = Server(handler)

    async def main() -> None:
        async with proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            async with async_client(TIMEOUT) as client:
                response = await client.get("http://provider.invalid/v1/models")
        assert response.content == b"proxied"
        assert proxy.request_lines == ["GET http://provider.invalid/v1/models HTTP/1.1"]
    run(main())
