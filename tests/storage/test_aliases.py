"""Model ids without a price row, priced through genai-prices' matching (SQLite and PG)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from db_support import BACKENDS
from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking import model_match as model_match_module
from openwebui_token_tracking.accounting.pricing import charge
from openwebui_token_tracking.errors import UnknownModelError
from openwebui_token_tracking.price_data import default_catalogue
from openwebui_token_tracking.storage import aliases, prices, settings_store
from openwebui_token_tracking.storage.prices import PriceInput
from openwebui_token_tracking.storage.schema import ModelPricing, PriceHistory

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PAST = datetime(2025, 1, 1, tzinfo=UTC)
EST = Usage(input_tokens=1000, output_tokens=500)
ADMIN_PRICE = PriceInput(input_cost_credits=7, per_input_tokens=1000,
                         output_cost_credits=9, per_output_tokens=1000)


@pytest.fixture
def acct(engine) -> Accountant:
    """``init``'s situation: default settings and genai-prices' default prices."""
    acct = Accountant(engine, clock=lambda: NOW)

    def setup(s):
        settings_store.ensure_defaults(s)
        for e in default_catalogue(credits_per_usd=settings_store.credits_per_usd(s), at=PAST):
            prices.set_price(s, provider=e.provider, model_id=e.model_id, name=e.name,
                             price=e.price, now=PAST, source="genai-prices")
    acct.run(setup)
    return acct


def row(acct: Accountant, provider: str, model_id: str) -> ModelPricing | None:
    return acct.run(lambda s: s.get(ModelPricing, (provider, model_id)))


def history(acct: Accountant, provider: str, model_id: str) -> list[tuple[datetime, int]]:
    return acct.run(lambda s: [(h.effective_from, h.input_cost_credits) for h in s.scalars(
        sa.select(PriceHistory).where(PriceHistory.provider == provider,
                                      PriceHistory.model_id == model_id)
        .order_by(PriceHistory.effective_from))])


def price_of(acct: Accountant, provider: str, model_id: str):
    return acct.run(lambda s: prices.price_at(s, provider, model_id, NOW))


def admit(acct: Accountant, provider: str, model_id: str, **kw):
    return acct.admit(user_id="u-alice", provider=provider, model_id=model_id, estimate=EST,
                      **kw)


@pytest.mark.parametrize(("provider", "dated", "canonical"), [
    ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
    ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
    ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0"),
])
def test_dated_id_gets_the_matched_models_price_recorded_once(acct, provider, dated,
                                                              canonical):
    assert row(acct, provider, dated) is None
    admitted = admit(acct, provider, dated)
    canonical_price = price_of(acct, provider, canonical)
    assert admitted.price == canonical_price
    assert admitted.estimate_micro == charge(EST, canonical_price).micro_credits > 0
    alias = row(acct, provider, dated)
    assert alias is not None
    assert (alias.source, alias.matched_model_id) == ("genai-prices", canonical)
    assert alias.name.endswith(f"({dated})")
    assert history(acct, provider, dated) == history(acct, provider, canonical)
    admit(acct, provider, dated)  # the second request finds the row: nothing new written
    assert len(history(acct, provider, dated)) == len(history(acct, provider, canonical))


def test_gemini_snapshot_of_a_model_not_priced_here_uses_genai_prices(acct):
    """gemini-2.0-flash is deprecated, so init does not price it; its -001 still bills."""
    assert row(acct, "google_genai", "gemini-2.0-flash") is None
    admitted = admit(acct, "google_genai", "gemini-2.0-flash-001")
    assert (admitted.price.input.cost_credits, admitted.price.output.cost_credits) == (100, 400)
    alias = row(acct, "google_genai", "gemini-2.0-flash-001")
    assert (alias.matched_model_id, alias.source) == ("gemini-2.0-flash", "genai-prices")
    assert history(acct, "google_genai", "gemini-2.0-flash-001") == [
        (datetime(1970, 1, 1, tzinfo=UTC), 100)]


def test_0_1_10_api_prices_dated_ids(acct, engine):
    from openwebui_token_tracking import TokenTracker

    url = engine.url.render_as_string(hide_password=False)
    tracker = TokenTracker(url)
    assert tracker.is_paid("gpt-4o-2024-08-06")
    [model] = tracker.get_models(provider="anthropic", id="claude-3-5-haiku-20241022")
    assert model.input_cost_credits == 800
    user = {"id": "u-alice"}
    assert tracker.log_token_usage("openai", "gpt-4o-2024-08-06", user, 1000, 1000) \
        is not None
    remaining, _ = tracker.remaining_credits(user)
    assert remaining == Decimal("987.5")  # 1000 - 2.5 input - 10 output credits
    with pytest.raises(UnknownModelError, match="nearest priced ids"):
        tracker.is_paid("mistral-small-2409")


def test_explicit_price_wins_over_a_match(acct):
    def admin_price(s):
        prices.set_price(s, provider="openai", model_id="gpt-4o-2024-08-06", name="pinned",
                         price=ADMIN_PRICE, now=PAST)
    acct.run(admin_price)
    assert admit(acct, "openai", "gpt-4o-2024-08-06").price == ADMIN_PRICE.to_price(PAST)
    assert row(acct, "openai", "gpt-4o-2024-08-06").matched_model_id is None


def test_admin_override_of_a_recorded_alias_stops_it_following(acct):
    admit(acct, "openai", "gpt-4o-mini-2024-07-18")

    def override(s):
        prices.set_price(s, provider="openai", model_id="gpt-4o-mini-2024-07-18", name=None,
                         price=ADMIN_PRICE, now=NOW)
    acct.run(override)
    alias = row(acct, "openai", "gpt-4o-mini-2024-07-18")
    assert (alias.source, alias.matched_model_id) == ("manual", None)

    def canonical_moves(s):
        prices.set_price(s, provider="openai", model_id="gpt-4o-mini", name=None,
                         price=PriceInput(1, 1, 1, 1), now=NOW + timedelta(hours=1))
    acct.run(canonical_moves)
    assert row(acct, "openai", "gpt-4o-mini-2024-07-18").input_cost_credits == 7


def test_alias_follows_an_admin_price_of_the_matched_model(acct):
    def admin_prices_canonical(s):
        prices.set_price(s, provider="openai", model_id="gpt-4o", name=None,
                         price=ADMIN_PRICE, now=PAST + timedelta(days=1))
    acct.run(admin_prices_canonical)
    assert admit(acct, "openai", "gpt-4o-2024-08-06").price.input.cost_credits == 7
    later = NOW + timedelta(days=1)

    def admin_changes_it(s):
        prices.set_price(s, provider="openai", model_id="gpt-4o", name=None,
                         price=PriceInput(3, 1000, 4, 1000), now=later)
    acct.run(admin_changes_it)
    alias = row(acct, "openai", "gpt-4o-2024-08-06")
    assert (alias.input_cost_credits, alias.source) == (3, "genai-prices")
    assert history(acct, "openai", "gpt-4o-2024-08-06")[-2:] == [
        (PAST + timedelta(days=1), 7), (later, 3)]
    assert price_of(acct, "openai", "gpt-4o-2024-08-06").input.cost_credits == 7  # at NOW


def test_unmatched_id_is_refused_with_the_nearest_ids(acct):
    with pytest.raises(UnknownModelError) as err:
        admit(acct, "openai", "gpt-4o-2024-08-06x")
    message = str(err.value)
    assert "has no price, so it cannot be used" in message
    assert "genai-prices matches no openai model to 'gpt-4o-2024-08-06x'" in message
    assert "nearest priced ids: gpt-4o" in message
    with pytest.raises(UnknownModelError, match="not a chat model"):
        admit(acct, "openai", "text-embedding-3-small")
    with pytest.raises(UnknownModelError, match="covers only the providers"):
        admit(acct, "openrouter", "openai/gpt-4o")
    assert row(acct, "openai", "gpt-4o-2024-08-06x") is None


def test_mistral_dated_id_needs_an_admin_price(acct):
    with pytest.raises(UnknownModelError) as err:
        admit(acct, "mistral", "mistral-small-2409")
    assert "nearest priced ids: mistral-small-" in str(err.value)

    def admin_price(s):
        prices.set_price(s, provider="mistral", model_id="mistral-small-2409",
                         name="Mistral Small", price=PriceInput(200, 10**6, 600, 10**6),
                         now=NOW)
    acct.run(admin_price)
    assert admit(acct, "mistral", "mistral-small-2409").estimate_micro == 500_000


def test_deleted_alias_is_not_recreated(acct):
    admit(acct, "openai", "gpt-4o-2024-08-06")
    acct.run(lambda s: prices.delete_price(s, provider="openai", model_id="gpt-4o-2024-08-06"))
    with pytest.raises(UnknownModelError, match="an admin deleted its price"):
        admit(acct, "openai", "gpt-4o-2024-08-06", now=NOW + timedelta(hours=1))
    assert row(acct, "openai", "gpt-4o-2024-08-06") is None


def test_deleting_a_model_deletes_its_aliases_and_refuses_new_ones(acct):
    admit(acct, "openai", "gpt-4o-2024-08-06")
    gone = acct.run(lambda s: prices.delete_price(s, provider="openai", model_id="gpt-4o"))
    assert gone == ["gpt-4o-2024-08-06"]
    assert row(acct, "openai", "gpt-4o-2024-05-13") is not None  # its own default price
    with pytest.raises(UnknownModelError, match="it is 'gpt-4o', whose price an admin"):
        admit(acct, "openai", "gpt-4o-2024-11-20")


def test_a_miss_is_remembered_for_a_minute(acct, monkeypatch):
    calls: list[str] = []
    real = model_match_module.match_model

    def counting(provider: str, model_id: str):
        calls.append(model_id)
        return real(provider, model_id)
    monkeypatch.setattr(aliases, "match_model", counting)
    for seconds in (0, 1, 59):
        with pytest.raises(UnknownModelError, match="nearest"):
            admit(acct, "openai", "nope-1", now=NOW + timedelta(seconds=seconds))
    assert calls == ["nope-1"]
    with pytest.raises(UnknownModelError):
        admit(acct, "openai", "nope-1", now=NOW + timedelta(seconds=61))
    assert calls == ["nope-1", "nope-1"]

    def admin_price(s):  # an admin's price is seen at once, remembered refusal or not
        prices.set_price(s, provider="openai", model_id="nope-1", name=None,
                         price=ADMIN_PRICE, now=NOW)
    acct.run(admin_price)
    admit(acct, "openai", "nope-1", now=NOW + timedelta(seconds=62))


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_resolution_committed_while_one_is_read_is_not_taken_for_a_deletion(acct, engine):
    """The interleaving behind a rare refusal of concurrent first requests, made certain:
    another process records the alias after this admission read one of the two (the
    price rows or the price history ids) and before it reads the other. PostgreSQL only:
    on SQLite an admission holds the write lock from its first read (BEGIN IMMEDIATE),
    so no other admission commits in between."""
    url = engine.url.render_as_string(hide_password=False)
    fired: list[str] = []

    def other_request() -> None:
        fired.append(repr(admit(Accountant(url, clock=lambda: NOW), "anthropic",
                                "claude-opus-4-1-20250805").price))

    def between_the_reads(conn, cursor, statement, params, context, executemany):
        loads_a_provider = ("DISTINCT token_tracking_price_history.model_id" in statement
                            or "WHERE token_tracking_model_pricing.provider =" in statement)
        if loads_a_provider and not fired:
            fired.append("reading")
            thread = threading.Thread(target=other_request)
            thread.start()
            thread.join(timeout=60)

    sa.event.listen(engine, "after_cursor_execute", between_the_reads)
    try:
        price = admit(acct, "anthropic", "claude-opus-4-1-20250805").price
    finally:
        sa.event.remove(engine, "after_cursor_execute", between_the_reads)
    assert fired == ["reading", repr(price)]
    assert price == price_of(acct, "anthropic", "claude-opus-4-1")


def test_concurrent_first_requests_for_a_new_id_all_pass(acct, engine):
    url = engine.url.render_as_string(hide_password=False)
    barrier = threading.Barrier(6)
    results: list[object] = []

    def first_request() -> None:
        mine = Accountant(url, clock=lambda: NOW)
        barrier.wait(timeout=60)
        try:
            results.append(admit(mine, "anthropic", "claude-opus-4-1-20250805").price)
        except Exception as exc:  # any failure is reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    expected = price_of(acct, "anthropic", "claude-opus-4-1")
    assert results == [expected] * 6
    assert len(history(acct, "anthropic", "claude-opus-4-1-20250805")) == len(
        history(acct, "anthropic", "claude-opus-4-1"))
