"""``pricing sync``: refresh from the installed genai-prices data, with a diff."""

from __future__ import annotations

from datetime import UTC, datetime

from cli_support import Run, count, run_fixture  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from openwebui_token_tracking.storage import prices
from openwebui_token_tracking.storage.prices import PriceInput

OLD = PriceInput(input_cost_credits=1, per_input_tokens=1_000_000, output_cost_credits=2,
                 per_output_tokens=1_000_000)


def test_dry_run_writes_nothing(engine: Engine, run: Run) -> None:
    result = run("pricing", "sync", "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = result.json()
    assert plan["dry_run"] is True and plan["added"] > 50
    assert {c["provider"] for c in plan["changes"]} == {"openai", "anthropic", "google_genai",
                                                         "mistral"}
    assert count(engine, "token_tracking_model_pricing") == 0
    text = run("pricing", "sync", "--dry-run").out
    assert "+ openai/gpt-4o: input 2,500/1M" in text
    assert "dry run: nothing written" in text


def test_sync_one_provider(engine: Engine, run: Run) -> None:
    result = run("pricing", "sync", "--provider", "mistral", "--json")
    assert result.code == 0, result.err
    listed = run("pricing", "list", "--json").json()
    assert listed and {p["provider"] for p in listed} == {"mistral"}
    assert {p["source"] for p in listed} == {"genai-prices"}
    assert len(listed) == result.json()["added"]
    assert run("pricing", "sync", "--provider", "mistral", "--json").json()["changes"] == []


def test_changed_price_applies_from_now_and_manual_is_kept(engine: Engine, run: Run) -> None:
    past = datetime(2025, 1, 1, tzinfo=UTC)
    with Session(engine) as s, s.begin():
        prices.set_price(s, provider="openai", model_id="gpt-4o", name="gpt 4o", price=OLD,
                         now=past, source="genai-prices")
        prices.set_price(s, provider="openai", model_id="gpt-4o-mini", name="mini", price=OLD,
                         now=past, source="manual")
    result = run("pricing", "sync", "--provider", "openai")
    assert result.code == 0, result.err
    assert "~ openai/gpt-4o: input 1/1M -> 2,500/1M, output 2/1M -> 10,000/1M" in result.out
    assert "! openai/gpt-4o-mini: set by hand, kept" in result.out
    gpt = run("pricing", "get", "gpt-4o", "--provider", "openai", "--json").json()[0]
    assert (gpt["input_cost_credits"], gpt["cached_input_cost_credits"]) == (2500, 1250)
    history = run("pricing", "history", "gpt-4o", "--provider", "openai", "--json").json()
    assert [h["input_cost_credits"] for h in history] == [1, 2500]
    assert history[0]["effective_from"].startswith("2025-01-01")
    mini = run("pricing", "get", "gpt-4o-mini", "--json").json()[0]
    assert (mini["input_cost_credits"], mini["source"]) == (1, "manual")


def test_deleted_model_is_not_added_back(engine: Engine, run: Run) -> None:
    assert run("pricing", "sync", "--provider", "anthropic").code == 0
    assert run("pricing", "delete", "claude-opus-4-1", "--provider", "anthropic").code == 0
    result = run("pricing", "sync", "--provider", "anthropic", "--json").json()
    assert [(c["action"], c["id"]) for c in result["changes"]] == [
        ("keep-deleted", "claude-opus-4-1")]
    assert run("pricing", "get", "claude-opus-4-1").code == 1


def test_sync_uses_credits_per_usd(engine: Engine, run: Run) -> None:
    assert run("settings", "set", "credits_per_usd", "2000").code == 0
    assert run("pricing", "sync", "--provider", "openai").code == 0
    gpt = run("pricing", "get", "gpt-4o", "--json").json()[0]
    assert (gpt["input_cost_credits"], gpt["per_input_tokens"]) == (5000, 1_000_000)


def test_unknown_provider(engine: Engine, run: Run) -> None:
    result = run("pricing", "sync", "--provider", "google")
    assert result.code == 1
    assert "no default prices for provider(s) google" in result.error
    assert "google_genai" in result.error
