"""``init`` and ``database``: migrate, defaults only where missing, idempotent."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import Run, count, run_fixture  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine

from openwebui_token_tracking.storage.engine import get_engine
from openwebui_token_tracking.storage.migrate import head_revision

SEED_MODELS = Path(__file__).parent / "fixtures" / "models_0_1_10.json"  # 0.1.10's file


def test_database_migrate_and_current(db_url: str, run: Run) -> None:
    before = run("database", "current", "--json")
    assert before.code == 0
    assert before.json() == {"current": None, "head": head_revision(), "up_to_date": False}

    first = run("database", "migrate")
    assert first.code == 0, first.err
    assert "Migrated" in first.out
    again = run("database", "migrate")
    assert "up to date" in again.out

    assert run("database", "current", "--json").json()["up_to_date"] is True
    assert head_revision() in run("database", "current").out


def test_database_migrate_takes_0_1_10_positional_url(db_url: str, run: Run) -> None:
    assert run("database", "migrate", db_url, url=None).code == 0
    assert run("database", "current", "--json").json()["current"] == head_revision()


def test_init_loads_defaults(db_url: str, run: Run) -> None:
    result = run("init")
    assert result.code == 0, result.err
    settings = {s["key"]: s for s in run("settings", "list", "--json").json()}
    assert settings["base_credit_allowance"]["value"] == "1000"
    assert settings["base_credit_allowance"]["is_default"] is False  # stored, not implied
    prices = {(p["provider"], p["id"]): p for p in run("pricing", "list", "--json").json()}
    assert {p for p, _ in prices} == {"openai", "anthropic", "google_genai", "mistral"}
    gpt = prices[("openai", "gpt-4o")]
    assert gpt["source"] == "genai-prices"
    assert gpt["cached_input_cost_credits"] is not None


def test_init_twice_keeps_admin_changes(db_url: str, run: Run) -> None:
    assert run("init").code == 0
    assert run("settings", "set", "base_credit_allowance", "42").code == 0
    assert run("settings", "set", "budget_timezone", "Europe/Berlin").code == 0
    assert run("pricing", "update", "gpt-4o", "--provider", "openai",
               "--input-cost-credits", "1").code == 0
    assert run("pricing", "delete", "gpt-4o-mini", "--provider", "openai").code == 0
    engine = get_engine(db_url)
    history_before = count(engine, "token_tracking_price_history")

    second = run("init")
    assert second.code == 0, second.err
    assert "Added 0 setting(s) and 0 model price(s)" in second.out
    assert run("settings", "get", "base_credit_allowance").out.strip() == "42"
    assert run("settings", "get", "budget_timezone").out.strip() == "Europe/Berlin"
    gpt = run("pricing", "get", "gpt-4o", "--provider", "openai", "--json").json()[0]
    assert gpt["input_cost_credits"] == 1 and gpt["source"] == "manual"
    assert run("pricing", "get", "gpt-4o-mini", "--provider", "openai").code == 1
    assert count(engine, "token_tracking_price_history") == history_before


def test_init_with_0_1_10_files(db_url: str, run: Run, tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps([{"setting_key": "base_credit_allowance",
                                          "setting_value": "250",
                                          "description": "Baseline credit allowance."}]))
    result = run("init", "--model-json", str(SEED_MODELS), "--settings-json", str(settings_file))
    assert result.code == 0, result.err
    listed = run("pricing", "list", "--json").json()
    assert len(listed) == len(json.loads(SEED_MODELS.read_text()))
    assert run("settings", "get", "base_credit_allowance").out.strip() == "250"
    assert run("settings", "get", "budget_period").out.strip() == "day"


def test_init_rejects_bad_settings_file_before_writing(db_url: str, run: Run,
                                                       tmp_path: Path) -> None:
    bad = tmp_path / "settings.json"
    bad.write_text(json.dumps([{"setting_key": "budget_period", "setting_value": "fortnight"}]))
    result = run("init", "--settings-json", str(bad))
    assert result.code == 1
    assert "budget_period must be day, week or month" in result.error
    assert run("database", "current", "--json").json()["current"] is None  # nothing ran


def test_init_on_a_migrated_database_with_users(engine: Engine, run: Run) -> None:
    assert run("init").code == 0
    assert count(engine, "token_tracking_model_pricing") > 100
