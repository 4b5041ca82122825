"""Default prices from the bundled genai-prices data: exact conversion, selection, offline."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from genai_prices import data_snapshot
from hypothesis import given
from hypothesis import strategies as st

from openwebui_token_tracking import price_data
from openwebui_token_tracking.errors import InvalidInputError
from openwebui_token_tracking.price_data import (
    ADD,
    CHANGE,
    KEEP_DELETED,
    KEEP_MANUAL,
    CurrentPrice,
    default_catalogue,
    plan_sync,
    to_rate,
)
from openwebui_token_tracking.storage.prices import PriceInput

AT = datetime(2026, 11, 28, tzinfo=UTC)
RATE = Decimal(1000)


def catalogue(at: datetime = AT, rate: Decimal = RATE, providers: list[str] | None = None
              ) -> dict[tuple[str, str], price_data.CatalogueEntry]:
    entries = default_catalogue(credits_per_usd=rate, at=at, providers=providers)
    return {(e.provider, e.model_id): e for e in entries}


@pytest.mark.parametrize(("usd", "rate", "expected"), [
    ("2.5", "1000", (2500, 1_000_000)),
    ("0.075", "1000", (75, 1_000_000)),
    ("0.01875", "1000", (1875, 100_000_000)),
    ("0.0375", "1000", (375, 10_000_000)),
    ("0", "1000", (0, 1_000_000)),
    ("0.039", "1.5", (585, 10_000_000_000)),
    ("3", "0.001", (3, 1_000_000_000)),
])
def test_to_rate_examples(usd: str, rate: str, expected: tuple[int, int]) -> None:
    assert to_rate(Decimal(usd), Decimal(rate)) == expected


@given(usd=st.decimals(min_value=0, max_value=1000, places=6),
       rate=st.sampled_from([Decimal(1), Decimal(1000), Decimal("1.5"), Decimal("0.25"),
                             Decimal(7)]))
def test_to_rate_is_exact_and_minimal(usd: Decimal, rate: Decimal) -> None:
    cost, per = to_rate(usd, rate)
    assert Fraction(cost, per) * 1_000_000 == Fraction(usd) * Fraction(rate)
    assert per >= 1_000_000 and str(per).rstrip("0") == "1"
    if per > 1_000_000:  # one power of ten less would not be a whole number of credits
        assert (Fraction(usd) * Fraction(rate) * (per // 10) / 1_000_000).denominator != 1


@pytest.mark.parametrize(("usd", "rate"), [("-1", "1000"), ("1", "0"), ("NaN", "1")])
def test_to_rate_rejects(usd: str, rate: str) -> None:
    with pytest.raises(InvalidInputError):
        to_rate(Decimal(usd), Decimal(rate))


def test_catalogue_providers_and_known_prices() -> None:
    entries = catalogue()
    assert {p for p, _ in entries} == {"openai", "anthropic", "google_genai", "mistral"}
    gpt = entries[("openai", "gpt-4o")].price
    assert (gpt.input_cost_credits, gpt.output_cost_credits, gpt.cached_input_cost_credits) == (
        2500, 10000, 1250)
    assert gpt.cache_write_cost_credits is None
    haiku = entries[("anthropic", "claude-haiku-4-5")].price
    assert (haiku.cached_input_cost_credits, haiku.cache_write_cost_credits) == (100, 1250)
    flash = entries[("google_genai", "gemini-1.5-flash")]
    assert (flash.price.per_cached_input_tokens, flash.price.cached_input_cost_credits) == (
        100_000_000, 1875)
    assert flash.tiered is True and entries[("openai", "gpt-4o")].tiered is False
    assert ("mistral", "mistral-large-2512") in entries
    assert all(e.name for e in entries.values())


@pytest.mark.parametrize("key", [
    ("openai", "text-embedding-3-small"), ("openai", "tts-1"), ("openai", "gpt-image-1"),
    ("openai", "gpt-realtime"), ("openai", "whisper-1"), ("google_genai", "claude-3-5-sonnet"),
    ("google_genai", "gemini-embedding-001"), ("google_genai", "gemini-2.0-flash"),
    ("mistral", "mistral-embed"), ("mistral", "codestral-embed-2505"), ("anthropic", "claude-2"),
])
def test_catalogue_leaves_out_non_chat_and_deprecated(key: tuple[str, str]) -> None:
    assert key not in catalogue()


def test_catalogue_picks_the_price_in_force() -> None:
    before_cut = catalogue(at=datetime(2025, 6, 9, 23, tzinfo=UTC))[("openai", "o3")].price
    after_cut = catalogue()[("openai", "o3")].price
    assert (before_cut.input_cost_credits, after_cut.input_cost_credits) == (10000, 2000)


def test_catalogue_filters_providers_and_rate() -> None:
    only = catalogue(providers=["mistral"], rate=Decimal(2000))
    assert {p for p, _ in only} == {"mistral"}
    with pytest.raises(InvalidInputError, match="google"):
        default_catalogue(credits_per_usd=RATE, at=AT, providers=["google"])


def test_catalogue_is_bundled_data_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network, and an auto-updated snapshot set elsewhere in the process is ignored."""
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("genai-prices tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(providers=[],
                                                                 from_auto_update=True))
    try:
        assert len(default_catalogue(credits_per_usd=RATE, at=AT)) > 100
    finally:
        data_snapshot.set_custom_snapshot(None)


def _entry(model: str, inp: int) -> price_data.CatalogueEntry:
    return price_data.CatalogueEntry("openai", model, model, PriceInput(inp, 10**6, 1, 10**6))


def test_plan_sync() -> None:
    current = {
        ("openai", "same"): CurrentPrice(PriceInput(1, 10**6, 1, 10**6), "genai-prices"),
        ("openai", "moved"): CurrentPrice(PriceInput(1, 10**6, 1, 10**6), "genai-prices"),
        ("openai", "manual"): CurrentPrice(PriceInput(1, 10**6, 1, 10**6), "manual"),
    }
    wanted = [_entry(m, i) for m, i in
              (("same", 1), ("moved", 2), ("manual", 2), ("new", 3), ("gone", 4))]
    plan = plan_sync(current, wanted, deleted={("openai", "gone")})
    assert [(c.action, c.entry.model_id) for c in plan] == [
        (CHANGE, "moved"), (KEEP_MANUAL, "manual"), (ADD, "new"), (KEEP_DELETED, "gone")]
    assert [c.applies for c in plan] == [True, False, True, False]
    assert plan[0].old == current[("openai", "moved")].price
    only_new = plan_sync(current, wanted, deleted={("openai", "gone")}, only_new=True)
    assert [(c.action, c.entry.model_id) for c in only_new] == [(ADD, "new")]


def test_data_version() -> None:
    from importlib.metadata import version

    assert price_data.data_version() == version("genai-prices")
