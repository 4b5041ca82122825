"""A pipe request that crosses an alert threshold: the alert reaches a (slow) webhook
from a background thread, while the request and Open WebUI's event loop go on."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fakes import ALICE, FakeProvider, drain, fixture_text, make_pipe, messages, set_setting, sse
from sqlalchemy.orm import Session
from test_event_loop import max_tick_gap

from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.alerts import deliverer
from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe
from openwebui_token_tracking.storage import ledger

pytestmark = pytest.mark.anyio
RECEIVER_DELAY_S = 1.0


async def test_alert_is_delivered_off_the_request_and_off_the_loop(priced, db_url):
    bodies: list[bytes] = []

    class SlowReceiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(RECEIVER_DELAY_S)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        set_setting(priced, "alert_webhook_url",
                    f"http://127.0.0.1:{server.server_address[1]}/hook")
        with Session(priced) as s, s.begin():  # alice is 0.004 credits short of 80 %
            ledger.record_usage(s, user_id="u-alice", provider="openai",
                                model_id="gpt-4o-mini", usage=Usage(output_tokens=199_999),
                                now=datetime.now(UTC))
        pipe = make_pipe(OpenAITrackedPipe, db_url,
                         FakeProvider(sse(fixture_text("openai", "stream_usage.sse"))))

        async def work():
            await drain(await pipe.pipe({"model": "f.gpt-4o-mini", "messages": messages(),
                                         "stream": True}, __user__=ALICE))

        gap, elapsed = await max_tick_gap(work)
        assert elapsed < RECEIVER_DELAY_S  # the answer did not wait for the webhook
        assert gap < 0.1
        deadline = time.monotonic() + 15
        while not bodies and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(bodies) == 1 and b'"threshold_percent":80' in bodies[0]
    finally:
        deliverer.stop_all()
        server.shutdown()
        server.server_close()
