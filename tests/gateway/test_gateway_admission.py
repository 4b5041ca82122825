"""Admission through the gateway: refusals, unpriced models, auth failures, bad bodies."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
import sqlalchemy as sa
from gw_support import ALICE_KEY, jwt_for, ledger, messages, reservations
from sqlalchemy.orm import Session

from openwebui_token_tracking.storage import settings_store
from openwebui_token_tracking.storage.openwebui_access import api_key_table, config_table
from openwebui_token_tracking.storage.openwebui_tables import user_table


def post(url: str, content: bytes | str, key: str = ALICE_KEY) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", content=content, timeout=30,
                      headers={"Authorization": f"Bearer {key}",
                               "Content-Type": "application/json"})


def set_setting(engine, key: str, value: str) -> None:
    with Session(engine) as s, s.begin():
        settings_store.set_value(s, key, value)


@pytest.mark.parametrize("stream", [True, False])
def test_limit_refusal_is_429_with_reset_time_in_the_users_zone(oai, gateway_url, gw_engine,
                                                                 stream):
    set_setting(gw_engine, "base_credit_allowance", "0")
    set_setting(gw_engine, "limit_contact_text", "Ask the AI team for more.")
    with gw_engine.begin() as conn:
        conn.execute(sa.update(user_table).where(user_table.c.id == "u-alice")
                     .values(timezone="Europe/Berlin"))
    with pytest.raises(openai.RateLimitError) as info:
        oai().chat.completions.create(model="gpt-4o-mini", messages=messages(),
                                                    stream=stream)
    err = info.value
    assert err.status_code == 429 and err.code == "credit_limit_exceeded"
    assert err.response.headers["x-should-retry"] == "false"
    message = err.body["message"]
    assert "your credit allowance is used up" in message
    assert "Your credits reset at" in message and "(Europe/Berlin)" in message
    assert "Ask the AI team for more." in message
    assert "free model Llama (free)" in message
    assert err.body["reset_at"].endswith("+00:00") and err.body["reason"] == "user_limit"
    assert ledger(gw_engine) == [] and reservations(gw_engine) == 0
    # a free model still works
    answer = oai().chat.completions.create(model="llama-free",
                                                         messages=messages())
    assert answer.choices[0].message.content


def test_unpriced_or_unserved_models_are_404(oai, gateway_url, gw_engine):
    for model in ("no-such-model", "unserved-model"):
        with pytest.raises(openai.NotFoundError) as info:
            oai().chat.completions.create(model=model, messages=messages())
        assert info.value.code == "model_not_found"
        assert "GET /v1/models" in info.value.body["message"]
    assert ledger(gw_engine) == []


def test_provider_prefix_selects_the_upstream(oai, gateway_url, gw_engine):
    oai().chat.completions.create(model="openai/gpt-4o-mini",
                                                messages=messages())
    [row] = ledger(gw_engine)
    assert (row.provider, row.model_id) == ("openai", "gpt-4o-mini")


def test_session_jwt_is_accepted_and_records_no_key(oai, gateway_url, gw_engine):
    oai(jwt_for("u-bob")).chat.completions.create(model="gpt-4o-mini",
                                                                  messages=messages())
    [row] = ledger(gw_engine)
    assert row.user_id == "u-bob" and row.api_key_id is None


def _expire_alice_key(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(api_key_table).where(api_key_table.c.user_id == "u-alice")
                     .values(expires_at=int(time.time()) - 10))


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, "Authorization: Bearer"),
    ({"Authorization": "Basic abc"}, "Authorization: Bearer"),
    ({"Authorization": "Bearer sk-not-a-real-key"}, "not an Open WebUI API key"),
    ({"Authorization": "Bearer " + jwt_for("u-alice", exp=1)}, "expired"),
    ({"Authorization": "Bearer " + jwt_for("u-nobody")}, "not in Open WebUI's user table"),
])
def test_auth_failures_are_401_in_openai_shape(gateway_url, gw_engine, headers, expected):
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
        r = httpx.request(method, gateway_url + path, headers=headers, timeout=30,
                          json={"model": "gpt-4o-mini", "messages": messages()})
        assert r.status_code == 401, r.text
        error = r.json()["error"]
        assert error["type"] == "authentication_error" and error["code"] == "invalid_api_key"
        assert expected in error["message"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert ledger(gw_engine) == []


def test_expired_key_and_disabled_keys(oai, gateway_url, gw_engine):
    access = gw_engine
    _expire_alice_key(access)
    with pytest.raises(openai.AuthenticationError, match="expired"):
        oai().models.list()
    with access.begin() as conn:
        conn.execute(sa.insert(config_table).values(key="auth.enable_api_keys", value=False))
    with pytest.raises(openai.PermissionDeniedError, match="turned off"):
        oai("sk-bob00000000000000000000000002").models.list()


def test_static_admin_token_cannot_be_charged(oai, gateway_url):
    with pytest.raises(openai.PermissionDeniedError, match="not a user"):
        oai("static-admin").chat.completions.create(
            model="gpt-4o-mini", messages=messages())


@pytest.mark.parametrize(("content", "param", "expected"), [
    (b"{not json", None, "not valid JSON"),
    (b"", None, "body is empty"),
    (b"[1, 2]", None, "must be a JSON object"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "model", "model is required"),
    (b'{"model": "gpt-4o-mini"}', "messages", "messages must be a non-empty list"),
    (b'{"model": "gpt-4o-mini", "messages": [], "stream": false}', "messages", "non-empty"),
    (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
     b'"stream": "yes"}', "stream", "stream must be true or false"),
    (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
     b'"max_tokens": -3}', "max_tokens", "positive integer"),
    (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
     b'"tools": [{"type": "function"}]}', "tools", "not supported"),
    (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "n": 2}',
     "n", "n must be 1"),
])
def test_bad_bodies_are_400_with_a_clear_message(gateway_url, gw_engine, content, param,
                                                 expected):
    r = post(gateway_url, content)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert expected in error["message"]
    assert ledger(gw_engine) == [] and reservations(gw_engine) == 0


def test_a_body_over_the_limit_is_413_declared_or_streamed(gateway_url, gw_engine):
    from openwebui_token_tracking.gateway.requests import MAX_BODY_BYTES
    body = json.dumps({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "x" * (MAX_BODY_BYTES + 1)}]}).encode()
    declared = post(gateway_url, body)

    def pieces():  # no Content-Length: chunked, counted while it arrives
        for start in range(0, len(body), 2**20):
            yield body[start:start + 2**20]
    streamed = httpx.post(f"{gateway_url}/v1/chat/completions", content=pieces(),
                          timeout=30, headers={"Authorization": f"Bearer {ALICE_KEY}"})
    for r in (declared, streamed):
        assert r.status_code == 413, r.text
        error = r.json()["error"]
        assert error["code"] == "request_too_large" and "32 MiB" in error["message"]
    assert ledger(gw_engine) == [] and reservations(gw_engine) == 0


def test_bad_attachment_is_400_before_admission(gateway_url, gw_engine):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}]}]}
    r = httpx.post(f"{gateway_url}/v1/chat/completions", json=body, timeout=30,
                   headers={"Authorization": f"Bearer {ALICE_KEY}"})
    assert r.status_code == 400 and "base64" in r.json()["error"]["message"]
    assert reservations(gw_engine) == 0
