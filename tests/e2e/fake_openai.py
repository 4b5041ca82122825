"""A local OpenAI-compatible provider: ``POST /v1/chat/completions`` in the real wire format.

Non-streaming answers carry ``usage`` with ``prompt_tokens_details.cached_tokens`` and
``completion_tokens_details.reasoning_tokens``, as api.openai.com sends them. Streaming answers
are server-sent events; when the request sets ``stream_options.include_usage`` the last chunk
before ``[DONE]`` has empty ``choices`` and the ``usage``. Every request body is recorded so
tests can check what the pipe sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-gpt-e2e"
ANSWER = ["Hello", " from", " the", " fake", " provider", "."]
USAGE = {
    "prompt_tokens": 42,
    "completion_tokens": 12,
    "total_tokens": 54,
    "prompt_tokens_details": {"cached_tokens": 10, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 4,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
API_KEY = "sk-e2e-fake-key"


@dataclass
class Recorder:
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: dict[str, Any], headers: dict[str, str]) -> None:
        with self.lock:
            self.requests.append(body)
            self.headers.append(headers)

    def chat_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)


def _completion(model: str, created: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-e2e0001",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_e2e",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "".join(ANSWER), "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": USAGE,
        "service_tier": "default",
    }


def _chunk(model: str, created: int, delta: dict[str, Any], finish: str | None,
           ) -> dict[str, Any]:
    return {
        "id": "chatcmpl-e2e0002",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_e2e",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def stream_events(model: str, include_usage: bool) -> list[dict[str, Any]]:
    created = int(time.time())
    events = [_chunk(model, created, {"role": "assistant", "content": "", "refusal": None},
                     None)]
    events += [_chunk(model, created, {"content": piece}, None) for piece in ANSWER]
    events.append(_chunk(model, created, {}, "stop"))
    if include_usage:
        for event in events:
            event["usage"] = None
        last = _chunk(model, created, {}, None)
        last["choices"] = []
        last["usage"] = USAGE
        events.append(last)
    return events


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 0, "owned_by": "e2e"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        body = json.loads(raw or b"{}")
        self.server.recorder.add(body, {k.lower(): v for k, v in self.headers.items()})
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            self._json(401, {"error": {"message": "Incorrect API key provided.",
                                       "type": "invalid_request_error",
                                       "code": "invalid_api_key"}})
            return
        model = body.get("model", MODEL)
        if not body.get("stream"):
            self._json(200, _completion(model, int(time.time())))
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in stream_events(model, include_usage):
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.recorder = recorder


class FakeOpenAI:
    """Serves on 127.0.0.1 (a free port) in a background thread until ``close``."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self._server = _Server(self.recorder)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fake-openai")
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
