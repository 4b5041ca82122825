"""A normal user chats through a real Open WebUI 0.12 with the tracked OpenAI pipe.

The pipe is installed as a Function over Open WebUI's REST API and talks to a local
OpenAI-compatible server; the ledger rows are read from Open WebUI's own database.
Prices (conftest.PRICE): 3 / 1 / 15 credits per 1000 fresh input / cached / output
tokens. The fake provider reports 42 prompt tokens of which 10 cached, 12 completion
tokens of which 4 reasoning, so every answer costs
32 * 0.003 + 10 * 0.001 + 12 * 0.015 = 0.286 credits = 286,000 micro-credits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from openwebui_token_tracking.storage import settings_store
from openwebui_token_tracking.storage.schema import Reservation, TokenUsageLog

from .deployment import PIPE_MODEL, PROVIDER, Deployment
from .fake_openai import ANSWER, API_KEY, MODEL
from .openwebui_api import Account, streamed_text

pytestmark = pytest.mark.e2e

CHARGE_MICRO = 286_000
LEDGER_TOKENS = {"input_tokens": 32, "cached_input_tokens": 10, "cache_write_tokens": 0,
                 "output_tokens": 8, "reasoning_tokens": 4}
OPENAI_USAGE = {"prompt_tokens": 42, "completion_tokens": 12, "total_tokens": 54}


def ledger_rows(d: Deployment, user: Account) -> list[TokenUsageLog]:
    return d.accountant.run(lambda s: list(s.scalars(
        sa.select(TokenUsageLog).where(TokenUsageLog.user_id == user.id)
        .order_by(TokenUsageLog.id))))


def open_reservations(d: Deployment, user: Account) -> int:
    return d.accountant.run(lambda s: len(list(s.scalars(
        sa.select(Reservation).where(Reservation.user_id == user.id)))))


def assert_charged_row(row: TokenUsageLog) -> None:
    assert (row.provider, row.model_id) == (PROVIDER, MODEL)
    assert {k: getattr(row, k) for k in LEDGER_TOKENS} == LEDGER_TOKENS
    assert row.charged_micro == CHARGE_MICRO
    assert row.status == "completed"
    assert row.task is None
    assert row.sponsored_allowance_id is None


def test_non_streamed_chat_is_charged_to_the_user(deployment: Deployment) -> None:
    user = deployment.new_user("Nora")
    sent_before = len(deployment.provider.recorder.chat_requests())

    response = deployment.api.chat(user, PIPE_MODEL, "Say hello, please.")

    assert response.status_code == 200, response.text
    body = response.json()
    assert "error" not in body, body
    assert body["choices"][0]["message"]["content"] == "".join(ANSWER)
    assert {k: body["usage"][k] for k in OPENAI_USAGE} == OPENAI_USAGE
    sent = deployment.provider.recorder.chat_requests()[sent_before:]
    assert len(sent) == 1
    assert sent[0]["model"] == MODEL and not sent[0].get("stream")
    assert deployment.provider.recorder.headers[sent_before]["authorization"] == (
        f"Bearer {API_KEY}")
    rows = ledger_rows(deployment, user)
    assert len(rows) == 1
    assert_charged_row(rows[0])
    assert open_reservations(deployment, user) == 0


def test_streamed_chat_is_charged_from_the_providers_usage(deployment: Deployment) -> None:
    user = deployment.new_user("Sami")
    sent_before = len(deployment.provider.recorder.chat_requests())

    response, events = deployment.api.chat_stream(user, PIPE_MODEL, "Stream a hello.")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert not [e for e in events if isinstance(e, dict) and "error" in e], events
    assert streamed_text(events) == "".join(ANSWER)
    assert events[-1] == "[DONE]"
    usages = [e["usage"] for e in events if isinstance(e, dict) and e.get("usage")]
    assert usages, "the pipe's final usage chunk must reach Open WebUI's client"
    assert {k: usages[-1][k] for k in OPENAI_USAGE} == OPENAI_USAGE
    sent = deployment.provider.recorder.chat_requests()[sent_before:]
    assert len(sent) == 1
    assert sent[0]["stream"] is True
    assert sent[0]["stream_options"]["include_usage"] is True
    rows = ledger_rows(deployment, user)
    assert len(rows) == 1
    assert_charged_row(rows[0])
    assert open_reservations(deployment, user) == 0


def _next_utc_midnight(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def _reset_texts(before: datetime, after: datetime, tz: ZoneInfo) -> set[str]:
    """The reset instant as the pipe shows it (a request at a day's edge may see either)."""
    return {f"{r.astimezone(tz):%Y-%m-%d %H:%M} {r.astimezone(tz).tzname()} ({tz.key})"
            for r in (_next_utc_midnight(before), _next_utc_midnight(after))}


def test_spent_allowance_refuses_the_next_request_with_the_reason(
        deployment: Deployment) -> None:
    user = deployment.new_user("Lena")
    tz = ZoneInfo("Europe/Berlin")
    deployment.api.set_timezone(user, tz.key)
    first = deployment.api.chat(user, PIPE_MODEL, "One answer I can afford.")
    assert first.status_code == 200 and "error" not in first.json(), first.text
    assert [r.charged_micro for r in ledger_rows(deployment, user)] == [CHARGE_MICRO]

    old = deployment.accountant.run(
        lambda s: settings_store.get_value(s, "base_credit_allowance"))
    deployment.accountant.run(
        lambda s: settings_store.set_value(s, "base_credit_allowance", "0.2"))
    try:
        sent_before = len(deployment.provider.recorder.chat_requests())
        before = datetime.now(UTC)
        refused = deployment.api.chat(user, PIPE_MODEL, "One more, please.")
        refused_stream, events = deployment.api.chat_stream(user, PIPE_MODEL, "And streamed?")
        after = datetime.now(UTC)
    finally:
        deployment.accountant.run(
            lambda s: settings_store.set_value(s, "base_credit_allowance", old))

    # Open WebUI 0.12 reports a pipe's exception as an error object (HTTP 200), streamed
    # or not; the text is the pipe's refusal.
    assert refused.status_code == 200 and refused_stream.status_code == 200
    stream_errors = [e["error"]["detail"] for e in events
                     if isinstance(e, dict) and "error" in e]
    assert len(stream_errors) == 1, events
    for message in (refused.json()["error"]["detail"], stream_errors[0]):
        assert "This request was refused: your credit allowance is used up" in message
        assert re.search(r"Credits left: 0(\.0+)? of 0\.20*\b", message), message
        assert any(f"Your credits reset at {text}." in message
                   for text in _reset_texts(before, after, tz)), message
        assert "Contact your administrator if you need more credits." in message
    # Refused before the provider: nothing sent, nothing charged, nothing held.
    assert len(deployment.provider.recorder.chat_requests()) == sent_before
    assert [r.charged_micro for r in ledger_rows(deployment, user)] == [CHARGE_MICRO]
    assert open_reservations(deployment, user) == 0
