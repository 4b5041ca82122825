"""One HTTP/1.1 client connection on an asyncio transport, answers parsed by httptools.

What arrives is fed straight to httptools' parser (llhttp, the parser of Node.js and of
uvicorn's server side) from ``data_received``; the response head and the decoded body
chunks (chunked, by Content-Length, or up to the connection's end) wait in the connection
until read. One request at a time; the pool (``transport``) decides reuse by
``reusable``.

Errors are httpx's own: a refused or timed-out connect is ``ConnectError`` /
``ConnectTimeout`` (raised by the pool), a stalled answer ``ReadTimeout``, a peer that
does not read ``WriteTimeout``, a malformed or cut-off answer ``RemoteProtocolError``,
a lost connection ``ReadError`` / ``WriteError``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterable
from typing import cast

import httptools
import httpx

READ_BUFFER_LIMIT = 256 * 1024
"""Body bytes received but not yet read at which the socket stops being read."""


class Connection(asyncio.Protocol):
    """One connection: asyncio delivers what arrives, the parser splits it into the
    response's head and body chunks, ``receive_head`` and ``receive_body`` hand them on."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._reading_paused = False
        self._lost: BaseException | None = None
        self._eof = False
        self._broken: httpx.HTTPError | None = None
        self.idle_since = time.monotonic()
        self._reset(head_only=False)

    def _reset(self, *, head_only: bool) -> None:
        self._head_only = head_only
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._head_done = False
        self._complete = False
        self._until_close = False
        self._keep_alive = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: no subclass

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self._complete:
            self._eof = True  # bytes nobody asked for: the connection is not reusable
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._broken = httpx.RemoteProtocolError(f"malformed HTTP response: {exc}")
        if self._buffered > READ_BUFFER_LIMIT and not self._reading_paused:
            self._reading_paused = True
            self._transport().pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        if self._until_close and self._head_done:
            self._complete = True  # a body delimited by the end of the connection
        self._wake()
        return False  # close the transport: an HTTP client never writes after the end

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc
        if exc is None:
            self.eof_received()
        else:  # reset: a body delimited by the connection's end is cut off, not ended
            self._eof = True
            self._wake()
        _resolve(self._drained)
        self._drained = None

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _resolve(self._drained)
        self._drained = None

    # -- httptools' callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # informational (103 Early Hints): the answer follows
            self.headers = []
            return
        self.status = status
        self._head_done = True
        names = {name.lower(): value for name, value in self.headers}
        self._until_close = (status not in (204, 304) and b"content-length" not in names
                             and b"transfer-encoding" not in names)
        if self._head_only:
            self._complete = True

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)

    def on_message_complete(self) -> None:
        if self._head_done:
            assert self._parser is not None
            self._keep_alive = self._parser.should_keep_alive()  # only valid here
            self._complete = True

    # -- the client's side ---------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Idle, whole answer read, keep-alive, nothing unexpected since."""
        return (self._complete and self._keep_alive and not self._chunks and not self._eof
                and self._broken is None and self.transport is not None
                and not self.transport.is_closing())

    @property
    def alive(self) -> bool:
        """An idle connection the server has not closed (nor written to)."""
        return not self._eof and self.transport is not None and not self.transport.is_closing()

    async def send(self, method: bytes, head: bytes, body: AsyncIterable[bytes],
                   chunked: bool, timeout: float | None) -> None:
        """Write the request (``head`` ends with the blank line) and its body."""
        self._reset(head_only=method == b"HEAD")
        self._parser = httptools.HttpResponseParser(self)
        pending, size = [head], len(head)
        async for part in body:
            if chunked:
                part = b"%x\r\n%s\r\n" % (len(part), part) if part else b""
            pending.append(part)
            size += len(part)
            if size >= 65536:
                await self._write(b"".join(pending), timeout)
                pending, size = [], 0
        if chunked:
            pending.append(b"0\r\n\r\n")
        await self._write(b"".join(pending), timeout)

    async def _write(self, data: bytes, timeout: float | None) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or self._lost is not None:
            raise httpx.WriteError("the connection is closed")
        transport.write(data)
        if self._writing_paused:
            self._drained = asyncio.get_running_loop().create_future()
            await _wait(self._drained, timeout, httpx.WriteTimeout)
            if self._lost is not None or transport.is_closing():
                raise httpx.WriteError("the connection was closed while writing")

    async def receive_head(self, timeout: float | None) -> None:
        while not self._head_done:
            self._check()
            if self._eof:
                raise httpx.RemoteProtocolError("the server closed the connection without "
                                                "sending a response")
            await self._wait_for_data(timeout)

    async def receive_body(self, timeout: float | None) -> bytes:
        """The next part of the body, b"" at its end."""
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._reading_paused and self._buffered <= READ_BUFFER_LIMIT // 2:
                    self._reading_paused = False
                    self._transport().resume_reading()
                return data
            if self._complete:
                self.idle_since = time.monotonic()
                return b""
            self._check()
            if self._eof:
                raise httpx.RemoteProtocolError("the server closed the connection before "
                                                "the end of the response body")
            await self._wait_for_data(timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self._eof = True

    def _check(self) -> None:
        if self._broken is not None:
            raise self._broken
        if self._lost is not None:
            raise httpx.ReadError(f"connection lost: {self._lost}")

    async def _wait_for_data(self, timeout: float | None) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        await _wait(self._waiter, timeout, httpx.ReadTimeout)

    def _wake(self) -> None:
        _resolve(self._waiter)
        self._waiter = None

    def _transport(self) -> asyncio.Transport:
        assert self.transport is not None
        return self.transport


def _resolve(future: asyncio.Future[None] | None) -> None:
    """Wake whoever awaits ``future`` (if anyone still does)."""
    if future is not None and not future.done():
        future.set_result(None)


async def _wait(future: asyncio.Future[None], timeout: float | None,
                error: type[httpx.TimeoutException]) -> None:
    """Await ``future``; ``error`` when ``timeout`` seconds pass first."""
    if timeout is None:
        await future
        return
    timer = asyncio.get_running_loop().call_later(timeout, _expire, future, error)
    try:
        await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[None], error: type[httpx.TimeoutException]) -> None:
    if not future.done():
        future.set_exception(error("timed out"))
