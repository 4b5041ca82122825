"""A local fake provider over HTTP replaying the recorded fixtures (tests/fixtures/).

One ASGI app serves all four wire protocols under a prefix each, so an upstream's
base URL is ``{url}/openai/v1``, ``{url}/anthropic/v1``, ``{url}/gemini/v1beta`` or
``{url}/mistral/v1``. ``script`` sets what the next requests get (fixture names, pacing
between stream events, a stall); every request body is recorded. Used by the gateway
tests and by ``bench/gateway_bench.py``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

FIXTURES = Path(__file__).parents[1] / "fixtures"
STREAM = {"openai": "stream_usage.sse", "anthropic": "stream.sse", "gemini": "stream.sse",
          "mistral": "stream.sse"}
BODY = {"openai": "completion_reasoning.json", "anthropic": "message.json",
        "gemini": "generate.json", "mistral": "completion.json"}


@dataclass
class Script:
    stream: dict[str, str] = field(default_factory=lambda: dict(STREAM))
    body: dict[str, str] = field(default_factory=lambda: dict(BODY))
    status: int = 200
    event_delay: float = 0.0
    """Seconds before each stream event (a model generating tokens)."""
    first_delay: float = 0.0
    """Seconds before the response starts (a model reading the prompt)."""
    stall_after: int | None = None
    """Stop sending after this many events, until the client goes away."""


class FakeUpstream:
    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self._cache: dict[str, str] = {}

    def text(self, protocol: str, name: str) -> str:
        key = f"{protocol}/{name}"
        if key not in self._cache:
            self._cache[key] = (FIXTURES / protocol / name).read_text()
        return self._cache[key]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                await send({"type": kind + ".complete"})
                if kind == "lifespan.shutdown":
                    return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        protocol = path.strip("/").split("/")[0]
        if protocol not in STREAM:
            await self._send(send, 404, "text/plain", [b"no such protocol"])
            return
        body = json.loads(raw or b"{}")
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append((path, body, headers))
        script = self.script
        if script.first_delay:
            await asyncio.sleep(script.first_delay)
        streamed = body.get("stream") is True or path.endswith(":streamGenerateContent")
        if script.status != 200:
            await self._send(send, script.status, "application/json",
                             [self.text(protocol, script.body[protocol]).encode()])
        elif streamed:
            await self._send(send, 200, "text/event-stream",
                             self._events(self.text(protocol, script.stream[protocol]),
                                          script))
        else:
            await self._send(send, 200, "application/json",
                             [self.text(protocol, script.body[protocol]).encode()])

    async def _events(self, text: str, script: Script) -> AsyncIterator[bytes]:
        for i, event in enumerate(e for e in text.split("\n\n") if e.strip()):
            if script.stall_after is not None and i >= script.stall_after:
                await asyncio.sleep(3600)
            if script.event_delay:
                await asyncio.sleep(script.event_delay)
            yield (event + "\n\n").encode()

    async def _send(self, send: Any, status: int, kind: str, parts: Any) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind.encode())]})
        if isinstance(parts, list):
            for part in parts:
                await send({"type": "http.response.body", "body": part, "more_body": True})
        else:
            async for part in parts:
                await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any, port: int | None = None) -> Iterator[str]:
    """``app`` served by uvicorn in a thread; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
