"""An SSE response that notices a client going away and always closes its generator.

Starlette's ``StreamingResponse`` (ASGI 2.4 servers) learns of a disconnect only when a
send fails, which a stalled provider may delay indefinitely, and leaves the body
generator to the garbage collector. Here a disconnect cancels the stream at once and
the generator is closed before the response returns, so ``metering.relay`` charges a
stopped stream while the request is still being handled.

A generator may yield ``EndOfBody(last_bytes)`` once its answer is complete: the body
ends with those bytes (the client has its whole answer, in the same write) and the rest
of the generator, the charge, runs to its end shielded from cancellation, before the
request's handling ends.
"""

from __future__ import annotations

from contextlib import suppress

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EndOfBody:
    """The answer is complete: end the response body with ``data`` (see the module's
    doc)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes = b"") -> None:
        self.data = data


class EventStream(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, content: object) -> None:
        super().__init__(content, headers=HEADERS)  # type: ignore[arg-type]

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            if isinstance(chunk, EndOfBody):
                await send({"type": "http.response.body", "body": chunk.data,
                            "more_body": False})
                with anyio.CancelScope(shield=True):  # the bookkeeping after the answer
                    async for _ in self.body_iterator:
                        pass
                return
            if not isinstance(chunk, bytes | memoryview):
                chunk = chunk.encode(self.charset)  # type: ignore[union-attr]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tasks:
                async def stream() -> None:
                    with suppress(OSError):  # the client went away mid-send
                        await self.stream_response(send)
                    tasks.cancel_scope.cancel()

                tasks.start_soon(stream)
                await self.listen_for_disconnect(receive)
                tasks.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
