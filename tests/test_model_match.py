"""genai-prices' match rules over its bundled data: which model a provider's id names."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import data_snapshot

from openwebui_token_tracking import model_match
from openwebui_token_tracking.model_match import Match, NoMatch, match_model, nearest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("provider", "model_id", "matched"), [
    ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
    ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("openai", "o4-mini-2025-04-16", "o4-mini"),
    ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
    ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0"),
    ("google_genai", "gemini-2.0-flash-001", "gemini-2.0-flash"),
    ("google_genai", "gemini-1.5-pro-002", "gemini-1.5-pro"),
    ("mistral", "mistral-large-2411", "mistral-large"),
])
def test_dated_ids_match_their_model(provider: str, model_id: str, matched: str) -> None:
    found = match_model(provider, model_id)
    assert isinstance(found, Match), found
    assert (found.provider, found.model_id, found.matched_id) == (provider, model_id, matched)


@pytest.mark.parametrize(("provider", "model_id", "reason"), [
    ("mistral", "mistral-small-2409", "matches no mistral model"),
    ("openai", "claude-3-5-haiku-20241022", "matches no openai model"),
    ("openai", "text-embedding-3-small", "not a chat model"),
    ("openai", "gpt-4o-realtime-preview-2024-12-17", "not a chat model"),
    ("google_genai", "claude-3-5-haiku@20241022", "not a chat model"),  # Vertex reseller
    ("google", "gemini-2.0-flash-001", "covers only the providers"),  # genai-prices' id
    ("openrouter", "openai/gpt-4o", "covers only the providers"),
])
def test_what_does_not_match(provider: str, model_id: str, reason: str) -> None:
    found = match_model(provider, model_id)
    assert isinstance(found, NoMatch)
    assert reason in found.reason


def test_price_steps_follow_genai_prices_history() -> None:
    found = match_model("openai", "o3-2025-04-16")
    assert isinstance(found, Match)
    steps = found.price_steps(Decimal(1000))
    assert [(start, p.input_cost_credits) for start, p in steps] == [
        (EPOCH, 10000), (datetime(2025, 6, 10, tzinfo=UTC), 2000)]
    assert found.price_steps(Decimal(2000))[-1][1].input_cost_credits == 4000


def test_nearest() -> None:
    ids = ["mistral-small-latest", "mistral-small-2603", "mistral-large-2512", "codestral"]
    assert nearest("mistral-small-2409", ids)[:2] == ["mistral-small-2603",
                                                      "mistral-small-latest"]
    assert nearest("zzz", ids) == []
    assert nearest("MISTRAL-LARGE-2512", ids)[0] == "mistral-large-2512"


def test_matching_is_bundled_data_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No socket is opened, and an auto-updated snapshot set in the process is ignored."""
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("genai-prices tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    model_match._snapshot.cache_clear()  # load the data again, under the patch
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(providers=[],
                                                                 from_auto_update=True))
    try:
        found = match_model("openai", "gpt-4o-2024-08-06")
        assert isinstance(found, Match) and found.matched_id == "gpt-4o"
        assert found.price_steps(Decimal(1000))[0][1].input_cost_credits == 2500
    finally:
        data_snapshot.set_custom_snapshot(None)
