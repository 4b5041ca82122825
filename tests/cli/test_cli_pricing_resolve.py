"""``pricing resolve``, and resolved aliases in ``pricing list``, ``delete`` and ``sync``."""

from __future__ import annotations

import sqlalchemy as sa
from cli_support import Run, count, run_fixture  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine


def init(run: Run) -> None:
    result = run("init")
    assert result.code == 0, result.err


def test_resolve_explains_a_match_and_writes_nothing(engine: Engine, run: Run) -> None:
    init(run)
    before = count(engine, "token_tracking_model_pricing")
    result = run("pricing", "resolve", "gpt-4o-2024-08-06", "--provider", "openai")
    assert result.code == 0, result.err
    assert ("openai/gpt-4o-2024-08-06 has no price row; genai-prices matches it to gpt-4o, "
            "so the first request records it as an alias at its price in this database."
            ) in result.out
    assert "  price: input 2,500/1M, output 10,000/1M, cached input 1,250/1M" in result.out
    [res] = run("pricing", "resolve", "gpt-4o-2024-08-06", "--json").json()
    assert (res["provider"], res["outcome"], res["usable"], res["matched_model_id"],
            res["price_from"]) == ("openai", "match", True, "gpt-4o", "database")
    assert res["price"]["input_cost_credits"] == 2500
    gemini = run("pricing", "resolve", "gemini-2.0-flash-001", "--json").json()
    assert [(r["provider"], r["price_from"]) for r in gemini] == [
        ("google_genai", "genai-prices")]
    assert count(engine, "token_tracking_model_pricing") == before


def test_resolve_explicit_row_and_no_match(engine: Engine, run: Run) -> None:
    init(run)
    [res] = run("pricing", "resolve", "gpt-4o", "--json").json()
    assert (res["outcome"], res["source"]) == ("explicit", "genai-prices")
    result = run("pricing", "resolve", "mistral-small-2409", "--provider", "mistral")
    assert result.code == 0, result.err
    assert "genai-prices matches no mistral model to 'mistral-small-2409'" in result.out
    assert "nearest priced ids: mistral-small-" in result.out
    everywhere = run("pricing", "resolve", "mistral-small-2409", "--json").json()
    assert {r["provider"] for r in everywhere} == {"openai", "anthropic", "google_genai",
                                                    "mistral"}
    assert not any(r["usable"] for r in everywhere)
    assert run("pricing", "add", "--provider", "mistral", "--id", "mistral-small-2409",
               "--input-cost-credits", "200", "--output-cost-credits", "600").code == 0
    [res] = run("pricing", "resolve", "mistral-small-2409", "--json").json()
    assert (res["provider"], res["outcome"], res["source"]) == ("mistral", "explicit", "manual")


def test_apply_records_an_alias_that_list_shows(engine: Engine, run: Run) -> None:
    init(run)
    applied = run("pricing", "resolve", "claude-3-5-haiku-20241022", "--provider",
                  "anthropic", "--apply")
    assert applied.code == 0, applied.err
    assert "is a resolved alias of claude-3-5-haiku-latest" in applied.out
    [row] = run("pricing", "get", "claude-3-5-haiku-20241022", "--json").json()
    assert (row["source"], row["matched_model_id"]) == ("genai-prices",
                                                        "claude-3-5-haiku-latest")
    table = run("pricing", "list", "--provider", "anthropic").out
    line = next(x for x in table.splitlines() if x.startswith("anthropic  claude-3-5-haiku-2"))
    assert line.endswith("genai-prices  claude-3-5-haiku-latest")
    assert "matched" in table.splitlines()[0]


def test_deleted_alias_stays_deleted_until_applied_again(engine: Engine, run: Run) -> None:
    init(run)
    assert run("pricing", "resolve", "gpt-4o-2024-08-06", "--provider", "openai",
               "--apply").code == 0
    assert run("pricing", "delete", "gpt-4o-2024-08-06", "--provider", "openai").code == 0
    [res] = run("pricing", "resolve", "gpt-4o-2024-08-06", "--json").json()
    assert (res["outcome"], res["usable"]) == ("deleted", False)
    assert "an admin deleted its price" in res["explanation"]
    again = run("pricing", "resolve", "gpt-4o-2024-08-06", "--provider", "openai", "--apply")
    assert again.code == 0, again.err
    [res] = run("pricing", "resolve", "gpt-4o-2024-08-06", "--json").json()
    assert (res["outcome"], res["matched_model_id"]) == ("alias", "gpt-4o")


def test_deleting_a_model_reports_its_aliases(engine: Engine, run: Run) -> None:
    init(run)
    assert run("pricing", "resolve", "gpt-4o-2024-11-20", "--provider", "openai",
               "--apply").code == 0
    result = run("pricing", "delete", "gpt-4o", "--provider", "openai")
    assert result.out.strip() == ("Deleted the price of openai/gpt-4o and of its resolved "
                                  "aliases gpt-4o-2024-11-20.")
    [res] = run("pricing", "resolve", "gpt-4o-2024-08-06", "--json").json()
    assert res["outcome"] == "matched-deleted"


def test_resolve_errors(engine: Engine, run: Run) -> None:
    init(run)
    assert run("pricing", "resolve", "gpt-4o-2024-08-06", "--apply").code == 2
    refused = run("pricing", "resolve", "nope", "--provider", "openai", "--apply")
    assert refused.code == 1
    assert "model 'nope' of provider 'openai' has no price" in refused.error


def test_sync_shows_and_refreshes_resolved_aliases(engine: Engine, run: Run) -> None:
    init(run)
    for model, provider in (("gpt-4o-2024-08-06", "openai"),
                            ("gemini-2.0-flash-001", "google_genai")):
        assert run("pricing", "resolve", model, "--provider", provider, "--apply").code == 0
    with engine.begin() as conn:  # as if recorded from older genai-prices data
        conn.execute(sa.text("UPDATE token_tracking_model_pricing SET input_cost_credits = 1 "
                             "WHERE id = 'gemini-2.0-flash-001'"))
    result = run("pricing", "sync")
    assert result.code == 0, result.err
    assert "= openai/gpt-4o-2024-08-06: resolved alias of gpt-4o, unchanged" in result.out
    assert ("~ google_genai/gemini-2.0-flash-001 (alias of gemini-2.0-flash): "
            "input 1/1M -> 100/1M") in result.out
    assert "2 resolved alias(es) checked" in result.out
    [row] = run("pricing", "get", "gemini-2.0-flash-001", "--json").json()
    assert (row["input_cost_credits"], row["matched_model_id"]) == (100, "gemini-2.0-flash")
    again = run("pricing", "sync", "--json").json()
    assert again["resolved_aliases"] == 2
    assert {(c["action"], c["id"]) for c in again["changes"]} == {
        ("alias", "gpt-4o-2024-08-06"), ("alias", "gemini-2.0-flash-001")}
