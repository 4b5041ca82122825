"""Raw SSE with httpx: the event format, disconnects, provider failures."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
from gw_support import ALICE_KEY, ledger, messages, reservations, wait_for

from openwebui_token_tracking import Accountant
from openwebui_token_tracking.storage.async_admission import AsyncAdmissions


def post(url: str, body: dict, key: str = ALICE_KEY, **kw) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=30, **kw)


def events(text: str) -> list[str]:
    return [e.removeprefix("data: ") for e in text.split("\n\n") if e.strip()]


def test_sse_events_reasoning_usage_and_done(gateway_url, gw_engine):
    r = post(gateway_url, {"model": "claude-sonnet-4", "messages": messages(), "stream": True,
                           "stream_options": {"include_usage": True}})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    data = events(r.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({c["id"] for c in chunks}) == 1
    thinking = "".join(c["choices"][0]["delta"].get("reasoning_content", "")
                       for c in chunks if c["choices"])
    answer = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert thinking and "Paris" in answer and "<think>" not in answer
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    [row] = ledger(gw_engine)
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == \
        row.cached_input_tokens == 1500


def test_client_disconnect_mid_stream_is_charged_as_stopped(gateway_url, gw_engine, upstream):
    upstream[0].script.stall_after = 4  # the provider keeps the stream open, sends nothing
    body = {"model": "gpt-4o-mini", "messages": messages(), "stream": True}
    with httpx.Client(timeout=30) as client, client.stream(
            "POST", f"{gateway_url}/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {ALICE_KEY}"}) as r:
        got = ""
        for line in r.iter_lines():
            if line.startswith("data: {"):
                got += json.loads(line[6:])["choices"][0]["delta"].get("content", "")
            if got == "The capital of":
                break
    # the connection is closed here; the gateway must notice and charge what was used
    wait_for(lambda: len(ledger(gw_engine)) == 1)
    [row] = ledger(gw_engine)
    assert row.status == "stopped" and row.entry_point == "gateway"
    assert row.output_tokens == 4  # ceil(len("The capital of") / 4), an estimate
    assert row.charged_micro > 0
    wait_for(lambda: reservations(gw_engine) == 0)


def test_provider_error_mid_stream_ends_with_an_error_event(gateway_url, gw_engine, upstream):
    upstream[0].script.stream["openai"] = "stream_error_midway.sse"
    r = post(gateway_url, {"model": "gpt-4o-mini", "messages": messages(), "stream": True})
    data = events(r.text)
    last = json.loads(data[-1])
    assert "server_error" in last["error"]["message"] and "[DONE]" not in data
    [row] = ledger(gw_engine)
    assert row.status == "error" and row.output_tokens == 4
    assert reservations(gw_engine) == 0


@pytest.mark.parametrize(("status", "fixture", "expected"),
                         [(401, "error_401.json", 502), (429, "error_429.json", 429)])
@pytest.mark.parametrize("stream", [True, False])
def test_provider_refusal_before_any_token_charges_nothing(
        gateway_url, gw_engine, upstream, status, fixture, expected, stream):
    upstream[0].script.status = status
    upstream[0].script.body["openai"] = fixture
    r = post(gateway_url, {"model": "gpt-4o-mini", "messages": messages(), "stream": stream})
    assert r.status_code == expected
    assert r.json()["error"]["code"] == "upstream_error"
    assert f"HTTP {status}" in r.json()["error"]["message"]
    assert "upstream-secret" not in r.text
    assert ledger(gw_engine) == [] and reservations(gw_engine) == 0


def test_mistral_reasoning_chunks_non_stream(gateway_url, gw_engine):
    r = post(gateway_url, {"model": "mistral-small-latest", "messages": messages()})
    message = r.json()["choices"][0]["message"]
    assert message["content"] and message.get("reasoning_content")
    assert r.json()["usage"]["total_tokens"] > 0


def test_the_client_has_its_whole_answer_before_the_charge_is_written(
        gateway_url, gw_engine, monkeypatch):
    writing, release = threading.Event(), threading.Event()
    settle = Accountant.settle

    def slow_settle(self, *args, **kw):  # a database slow to commit the charge
        writing.set()
        release.wait(20)
        return settle(self, *args, **kw)
    monkeypatch.setattr(Accountant, "settle", slow_settle)
    settle_on_loop = AsyncAdmissions.settle  # PostgreSQL settles on the event loop

    async def slow_settle_on_loop(self, *args, **kw):  # type: ignore[no-untyped-def]
        writing.set()
        await asyncio.to_thread(release.wait, 20)
        return await settle_on_loop(self, *args, **kw)
    monkeypatch.setattr(AsyncAdmissions, "settle", slow_settle_on_loop)
    r = post(gateway_url, {"model": "gpt-4o-mini", "messages": messages(), "stream": True,
                           "stream_options": {"include_usage": True}})
    # The body ended (usage chunk and [DONE] included) while the charge is still written.
    data = events(r.text)
    assert data[-1] == "[DONE]"
    usage = json.loads(data[-2])["usage"]
    assert writing.wait(10)  # the charge is being written (it may start just after)
    assert reservations(gw_engine) == 1  # and is not written yet
    release.set()
    [row] = ledger(gw_engine)
    assert (row.status, row.entry_point) == ("completed", "gateway")
    assert row.input_tokens + row.cached_input_tokens == usage["prompt_tokens"]
    assert row.output_tokens == usage["completion_tokens"]
    assert reservations(gw_engine) == 0
