"""The HTTP client of the provider adapters: httpx over asyncio's own sockets.

httpx's default transport reads and writes through anyio: every read of a streamed
answer enters and leaves an anyio cancel scope for its timeout. Relaying a stream, that
was a quarter of the gateway's CPU per request (profiled). Here httpx keeps its
connection pool (httpcore: HTTP/1.1, keep-alive, TLS, pool limits), on a network backend
written against asyncio's transports: a read takes what arrived or waits on one future
with one timer.

``async_client`` builds the client both entry points use (pipes and gateway). When a
proxy is configured in the environment (``HTTPS_PROXY`` and the like) it keeps httpx's
own transport, which honours it and ``NO_PROXY``.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import httpcore
import httpx

LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=100)
"""Every stream holds its own connection (httpx's default cap of 100 made the 101st
concurrent request wait for a whole answer to finish before it could start); 100 are
kept alive."""
READ_BUFFER_LIMIT = 256 * 1024
"""Bytes received but not yet read at which the socket stops being read."""


class AsyncioStream(asyncio.Protocol, httpcore.AsyncNetworkStream):
    """One connection: asyncio delivers what arrives, ``read`` hands it to httpcore."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's: no subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > READ_BUFFER_LIMIT and not self._reading_paused:
            self._reading_paused = True
            assert self._transport is not None
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport: an HTTP client never writes after the end

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake()
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- httpcore.AsyncNetworkStream -----------------------------------------------------

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        while not self._buffer:
            if self._error is not None:
                raise httpcore.ReadError(f"connection lost: {self._error}")
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await _wait(self._waiter, timeout, httpcore.ReadTimeout)
        data = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        if self._reading_paused and len(self._buffer) <= READ_BUFFER_LIMIT // 2:
            self._reading_paused = False
            assert self._transport is not None
            self._transport.resume_reading()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        transport = self._transport
        if transport is None or transport.is_closing() or self._eof:
            raise httpcore.WriteError("the connection is closed")
        transport.write(buffer)
        if self._writing_paused:
            self._drained = asyncio.get_running_loop().create_future()
            await _wait(self._drained, timeout, httpcore.WriteTimeout)
            if self._error is not None or self._eof:
                raise httpcore.WriteError("the connection was closed while writing")

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(self._transport, self, ssl_context,
                                           server_hostname=server_hostname)
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if tls is None:  # pragma: no cover - only when the peer closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._transport = tls
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection with data or EOF is not reusable
            return bool(self._buffer) or self._eof
        transport = self._transport
        if transport is None:
            return None
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return transport.get_extra_info(info)
        return None


async def _wait(future: asyncio.Future[None], timeout: float | None,
                error: type[httpcore.TimeoutException]) -> None:
    """Await ``future``; ``error`` when ``timeout`` seconds pass first."""
    if timeout is None:
        await future
        return
    loop = asyncio.get_running_loop()
    timer = loop.call_later(timeout, _expire, future, error)
    try:
        await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[None], error: type[httpcore.TimeoutException]) -> None:
    if not future.done():
        future.set_exception(error("timed out"))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Connections as ``AsyncioStream`` on the running event loop."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = None if local_address is None else (local_address, 0)
        with _connect_errors(timeout):
            async with asyncio.timeout(timeout):
                transport, stream = await loop.create_connection(
                    AsyncioStream, host, port, local_addr=local)
        return _with_options(transport, stream, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@contextmanager
def _connect_errors(timeout: float | None) -> Iterator[None]:
    try:
        yield
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"no connection within {timeout} s") from exc
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from exc


def _with_options(transport: asyncio.BaseTransport, stream: AsyncioStream,
                  options: Iterable[Any] | None) -> AsyncioStream:
    sock = transport.get_extra_info("socket")
    for option in options or ():
        sock.setsockopt(*option)
    return stream


# httpcore's errors as httpx raises them (most specific first).
_ERRORS: list[tuple[type[Exception], type[httpx.HTTPError]]] = [
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
]

_HTTPCORE_ERRORS = tuple(source for source, _ in _ERRORS)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except _HTTPCORE_ERRORS as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        with _as_httpx_errors():
            await self._stream.aclose()


class AsyncioTransport(httpx.AsyncBaseTransport):
    """httpx's connection pool on ``AsyncioBackend`` (see the module's doc)."""

    def __init__(self, *, limits: httpx.Limits = LIMITS,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream,
            extensions=request.extensions)
        with _as_httpx_errors():
            response = await self._pool.handle_async_request(core)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(response.stream),
                              extensions=response.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


def proxies_configured() -> bool:
    """Whether the environment names a proxy (``NO_PROXY`` alone does not)."""
    return any(scheme != "no" for scheme in urllib.request.getproxies())


def async_client(timeout: httpx.Timeout, transport: httpx.AsyncBaseTransport | None = None,
                 *, limits: httpx.Limits = LIMITS,
                 ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The providers' client: on ``transport`` if given (tests), else on
    ``AsyncioTransport`` unless a proxy is configured in the environment. Loads the CA
    certificates: build it in a worker thread, never on a running event loop."""
    if transport is None and not proxies_configured():
        transport = AsyncioTransport(limits=limits, ssl_context=ssl_context)
    return httpx.AsyncClient(transport=transport, timeout=timeout, limits=limits)
