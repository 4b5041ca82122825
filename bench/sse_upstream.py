"""A local OpenAI-compatible upstream for load and fault tests: a real HTTP server.

``POST /v1/chat/completions`` answers in OpenAI's wire format, streamed (server-sent
events over chunked HTTP/1.1 with keep-alive) or not; a streamed answer ends with the
``usage`` chunk when the request sets ``stream_options.include_usage``. The answer is
``chunks`` pieces of ``piece`` sent ``interval_s`` apart after ``first_delay_s``.
Usage is exact and known in advance: ``prompt_tokens`` is the request's message
characters / 4 (rounded up), ``completion_tokens`` is ``chunks``. ``GET /stats`` returns
what the server reported in total, so a test can compare the ledger with it exactly.

Runs in a thread (``FakeUpstream``) or as a process (``python bench/sse_upstream.py``
prints its base URL on the first line and serves until killed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Answer:
    chunks: int = 20
    piece: str = "word "
    interval_s: float = 0.0
    first_delay_s: float = 0.0


@dataclass
class Stats:
    requests: int = 0
    completed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    open_streams: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def prompt_tokens_of(body: dict[str, Any]) -> int:
    chars = sum(len(m.get("content") or "") for m in body.get("messages") or []
                if isinstance(m, dict) and isinstance(m.get("content"), str))
    return -(-chars // 4) or 1


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
            "model": model, "choices": [{"index": 0, "delta": delta,
                                         "finish_reason": finish}]}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


class Server:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.stats = Stats()
        self.writers: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length") or 0))
        if method == "GET" and path.startswith("/stats"):
            await self._send(writer, 200, json.dumps(asdict(self.stats)).encode())
            return True
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            await self._send(writer, 404, b'{"error": {"message": "no such route"}}')
            return True
        request = json.loads(body or b"{}")
        self.stats.requests += 1
        if request.get("stream"):
            await self._stream(writer, request)
        else:
            await self._complete(writer, request)
        return True

    def _usage(self, request: dict[str, Any]) -> dict[str, int]:
        prompt, completion = prompt_tokens_of(request), self.answer.chunks
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def _count(self, usage: dict[str, int]) -> None:
        self.stats.completed += 1
        self.stats.prompt_tokens += usage["prompt_tokens"]
        self.stats.completion_tokens += usage["completion_tokens"]

    async def _send(self, writer: asyncio.StreamWriter, status: int, payload: bytes) -> None:
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        await writer.drain()

    async def _complete(self, writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        usage = self._usage(request)
        text = self.answer.piece * self.answer.chunks
        await asyncio.sleep(self.answer.first_delay_s)
        await self._send(writer, 200, json.dumps({
            "id": "chatcmpl-fake", "object": "chat.completion", "model": request.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage}).encode())
        self._count(usage)

    async def _stream(self, writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        model = str(request.get("model"))
        usage = self._usage(request)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")

        async def send(data: bytes) -> None:
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()

        self.stats.open_streams += 1
        try:
            await asyncio.sleep(self.answer.first_delay_s)
            await send(_chunk(model, {"role": "assistant", "content": ""}))
            for i in range(self.answer.chunks):
                if i and self.answer.interval_s:
                    await asyncio.sleep(self.answer.interval_s)
                await send(_chunk(model, {"content": self.answer.piece}))
            await send(_chunk(model, {}, "stop"))
            if (request.get("stream_options") or {}).get("include_usage"):
                await send(b"data: " + json.dumps({
                    "id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
                    "choices": [], "usage": usage}).encode() + b"\n\n")
            await send(b"data: [DONE]\n\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            self._count(usage)
        finally:
            self.stats.open_streams -= 1


class FakeUpstream:
    """The server on 127.0.0.1 (a free port) in a background thread, until ``close``."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.server = Server(answer or Answer())
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-upstream")
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._aserver = self._loop.run_until_complete(
            asyncio.start_server(self.server.handle, "127.0.0.1", 0))
        self.port = self._aserver.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def stats(self) -> Stats:
        return self.server.stats

    def close(self) -> None:
        async def stop() -> None:
            self._aserver.close()
            for writer in list(self.server.writers):
                writer.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()
        asyncio.run_coroutine_threadsafe(stop(), self._loop)
        self._thread.join(5)
        self._loop.close()


async def serve(answer: Answer, port: int) -> None:
    server = Server(answer)
    aserver = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=1024)
    print(f"http://127.0.0.1:{aserver.sockets[0].getsockname()[1]}/v1", flush=True)
    async with aserver:
        await aserver.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--chunks", type=int, default=Answer.chunks)
    ap.add_argument("--piece", default=Answer.piece)
    ap.add_argument("--interval", type=float, default=Answer.interval_s)
    ap.add_argument("--first-delay", type=float, default=Answer.first_delay_s)
    args = ap.parse_args()
    answer = Answer(args.chunks, args.piece, args.interval, args.first_delay)
    try:
        asyncio.run(serve(answer, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
