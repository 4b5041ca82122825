"""Local receivers for the alert tests: a real HTTP server and a real SMTP server
(aiosmtpd, STARTTLS with a throw-away CA from trustme), each on a free local port.

A plain module (tests import its fixtures by name), see ``tests/cli/cli_support.py``.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.alerts import deliverer
from openwebui_token_tracking.storage import prices, settings_store
from openwebui_token_tracking.storage.prices import PriceInput

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SECRET = "s3cret-for-tests"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next of ``statuses`` (then 200), recording it."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    delay: float = 0.0
    hold: threading.Event | None = None
    """When set, every answer waits for this event (a receiver that hangs)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, n: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} webhook requests, got {len(self.received)}")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.received.append(Received(dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            if receiver.hold is not None:
                receiver.hold.wait(30)
            time.sleep(receiver.delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass
    return Handler


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    if rec.hold is not None:
        rec.hold.set()
    deliverer.stop_all()
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpSink:
    host: str
    port: int
    client_tls: ssl.SSLContext
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content,
                                                                  policy=policy.default)))
        return "250 OK"

    def wait_for(self, n: int, timeout: float = 15.0) -> list[tuple[list[str], Message]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < n:
            time.sleep(0.02)
        assert len(self.messages) >= n, self.messages
        return self.messages


@pytest.fixture(name="smtp_sink")
def smtp_sink_fixture() -> Iterator[SmtpSink]:
    """An SMTP server that requires STARTTLS and a login (user ``alerts``, ``pw``)."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    sink = SmtpSink("127.0.0.1", free_port(), client_tls)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = auth_data.login == b"alerts" and auth_data.password == b"pw"
        if ok:
            sink.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)
    controller = Controller(sink, hostname=sink.host, port=sink.port, tls_context=server_tls,
                            require_starttls=True, authenticator=authenticate,
                            auth_require_tls=True)
    controller.start()
    yield sink
    deliverer.stop_all()
    controller.stop()


# -- a priced database --------------------------------------------------------------------

def out(n_credits: float) -> Usage:
    """Usage that costs ``n_credits`` at 1 credit per 1000 output tokens."""
    return Usage(output_tokens=int(n_credits * 1000))


def priced_accountant(engine: Any, **settings: str) -> Accountant:
    acct = Accountant(engine, clock=lambda: NOW)

    def setup(s: Any) -> None:
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", "10")
        for key, value in settings.items():
            settings_store.set_value(s, key, value)
        prices.set_price(s, provider="openai", model_id="gpt", name="GPT",
                         price=PriceInput(0, 1, 1000, 1_000_000), now=NOW - timedelta(days=1))
    acct.run(setup)
    return acct
