"""The HTTP client of the provider adapters: httpx on a lean HTTP/1.1 connection pool.

httpx's default transport reads through anyio (a cancel scope entered and left per
read) and parses with h11, a pure-Python state machine; relaying a stream, httpx's
transport was about half of the gateway's CPU per request (profiled). Here httpx keeps
its client API (requests, responses, timeouts, errors), and the transport is a
connection pool on asyncio's own transports, answers parsed by httptools
(``providers.http11``): HTTP/1.1, keep-alive, TLS, pool limits.

``async_client`` builds the client both entry points use (pipes and gateway). When a
proxy is configured in the environment (``HTTPS_PROXY`` and the like) it keeps httpx's
own transport, which honours it and ``NO_PROXY``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator

import httpx

from .http11 import Connection

__all__ = ["LIMITS", "AsyncioTransport", "async_client", "proxies_configured"]

LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=100)
"""Every stream holds its own connection (httpx's default cap of 100 made the 101st
concurrent request wait for a whole answer to finish before it could start); 100 are
kept alive."""

Origin = tuple[str, str, int]


class _Body(httpx.AsyncByteStream):
    """A response body; its connection goes back to the pool once read to the end."""

    def __init__(self, pool: AsyncioTransport, origin: Origin, conn: Connection,
                 timeout: float | None) -> None:
        self._pool, self._origin, self._conn, self._timeout = pool, origin, conn, timeout
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self._done:
            data = await self._conn.receive_body(self._timeout)
            if not data:
                self._release()
                return
            yield data

    async def aclose(self) -> None:
        if not self._done:
            self._conn.close()  # not read to its end: the connection cannot be reused
            self._release()

    def _release(self) -> None:
        if not self._done:
            self._done = True
            self._pool.release(self._origin, self._conn)


class AsyncioTransport(httpx.AsyncBaseTransport):
    """A pool of ``http11.Connection`` per origin (see the module's doc)."""

    def __init__(self, *, limits: httpx.Limits = LIMITS,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._max_connections = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._idle: dict[Origin, list[Connection]] = {}
        self._active = 0
        self._waiting: list[asyncio.Future[None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        timeout = request.extensions.get("timeout", {})
        origin = (url.scheme, url.raw_host.decode("ascii"), url.port or
                  (443 if url.scheme == "https" else 80))
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        method = request.method.encode("ascii")
        lines = [b"%s: %s\r\n" % pair for pair in request.headers.raw]
        if any(b"\r" in line[:-2] or b"\n" in line[:-2] for line in lines):
            raise httpx.LocalProtocolError("a request header contains a line break")
        head = b"".join([method, b" ", url.raw_path, b" HTTP/1.1\r\n", *lines, b"\r\n"])
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        conn = await self._acquire(origin, timeout)
        try:
            await conn.send(method, head, request.stream, chunked, timeout.get("write"))
            await conn.receive_head(timeout.get("read"))
        except BaseException:
            conn.close()
            self.release(origin, conn)
            raise
        return httpx.Response(status_code=conn.status, headers=conn.headers,
                              stream=_Body(self, origin, conn, timeout.get("read")),
                              extensions={"http_version": b"HTTP/1.1"})

    async def _acquire(self, origin: Origin, timeout: dict[str, float | None]) -> Connection:
        while self._max_connections is not None and self._active >= self._max_connections:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                async with asyncio.timeout(timeout.get("pool")):
                    await waiter
            except TimeoutError as exc:
                raise httpx.PoolTimeout("no connection free in the pool in time") from exc
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
        self._active += 1
        try:
            return self._idle_connection(origin) or await self._connect(origin, timeout)
        except BaseException:
            self._active -= 1
            self._wake_one()
            raise

    def _idle_connection(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.alive and (self._expiry is None or now - conn.idle_since < self._expiry):
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, timeout: dict[str, float | None]) -> Connection:
        scheme, host, port = origin
        tls = self._ssl if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout.get("connect")):
                _, conn = await asyncio.get_running_loop().create_connection(
                    Connection, host, port, ssl=tls, server_hostname=host if tls else None)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} in time") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return conn

    def release(self, origin: Origin, conn: Connection) -> None:
        """A request is done with ``conn``: keep it for the next if it can be reused."""
        self._active -= 1
        self._wake_one()
        if not conn.reusable:
            conn.close()
            return
        idle = self._idle.setdefault(origin, [])
        idle.append(conn)
        if self._max_idle is not None and sum(map(len, self._idle.values())) > self._max_idle:
            oldest = min((c for conns in self._idle.values() for c in conns),
                         key=lambda c: c.idle_since)
            self._idle[next(o for o, conns in self._idle.items() if oldest in conns)
                       ].remove(oldest)
            oldest.close()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


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
