"""``pricing``: list/get/add/update/upsert/delete/import/export/history."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cli_support import Run, count, run_fixture, snapshot  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine

from openwebui_token_tracking.accountant import Accountant, utcnow
from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.errors import InvalidInputError
from openwebui_token_tracking.storage import prices
from openwebui_token_tracking.storage.reports import ledger_rows

SEED_MODELS = Path(__file__).parent / "fixtures" / "models_0_1_10.json"  # 0.1.10's file
ADD = ["pricing", "add", "--provider", "openai", "--id", "gpt-x", "--name", "GPT X",
       "--input-cost-credits", "3000", "--output-cost-credits", "12000"]


def write(tmp_path: Path, data: object, name: str = "prices.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def entry(model_id: str, provider: str = "openai", **overrides: object) -> dict[str, object]:
    return {"provider": provider, "id": model_id, "name": model_id.upper(),
            "input_cost_credits": 100, "per_input_tokens": 1_000_000,
            "output_cost_credits": 400, "per_output_tokens": 1_000_000, **overrides}


def test_add_list_get(engine: Engine, run: Run) -> None:
    result = run(*ADD, "--cached-input-cost-credits", "1500", "--per-cached-input-tokens",
                 "1000000")
    assert result.code == 0, result.err
    listed = run("pricing", "list", "--json").json()
    assert len(listed) == 1
    got = run("pricing", "get", "gpt-x", "--json").json()[0]
    assert got == {**listed[0], "provider": "openai", "id": "gpt-x", "name": "GPT X",
                   "input_cost_credits": 3000, "per_input_tokens": 1_000_000,
                   "output_cost_credits": 12000, "per_output_tokens": 1_000_000,
                   "cached_input_cost_credits": 1500, "per_cached_input_tokens": 1_000_000,
                   "source": "manual"}
    table = run("pricing", "list").out
    assert "gpt-x" in table and "3,000/1M" in table and "1,500/1M" in table


def test_add_free_model(engine: Engine, run: Run) -> None:
    result = run("pricing", "add", "--provider", "local", "--id", "llama", "--name", "Llama",
                 "--input-cost-credits", "0", "--output-cost-credits", "0")
    assert result.code == 0, result.err
    assert run("pricing", "get", "llama", "--json").json()[0]["input_cost_credits"] == 0


def test_add_duplicate_is_refused(engine: Engine, run: Run) -> None:
    assert run(*ADD).code == 0
    before = snapshot(engine)
    result = run(*ADD)
    assert result.code == 1
    assert "already has a price" in result.error
    assert snapshot(engine) == before


@pytest.mark.parametrize(("option", "value", "code", "message"), [
    ("--input-cost-credits", "-5", 1, "greater than or equal to 0"),
    ("--per-output-tokens", "0", 1, "greater than 0"),
    ("--output-cost-credits", "cheap", 2, "not a valid integer"),
])
def test_add_bad_numbers_write_nothing(engine: Engine, run: Run, option: str, value: str,
                                       code: int, message: str) -> None:
    args = [a for a in ADD]
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    result = run(*args)
    assert result.code == code
    assert message in result.err
    assert count(engine, "token_tracking_model_pricing") == 0


def test_add_needs_costs(engine: Engine, run: Run) -> None:
    result = run("pricing", "add", "--provider", "openai", "--id", "gpt-x")
    assert result.code == 2
    assert "--input-cost-credits" in result.err


def test_update_keeps_history(engine: Engine, run: Run) -> None:
    assert run(*ADD).code == 0
    result = run("pricing", "update", "gpt-x", "--provider", "openai",
                 "--output-cost-credits", "9000")
    assert result.code == 0, result.err
    got = run("pricing", "get", "gpt-x", "--json").json()[0]
    assert (got["input_cost_credits"], got["output_cost_credits"]) == (3000, 9000)
    history = run("pricing", "history", "gpt-x", "--provider", "openai", "--json").json()
    assert [h["output_cost_credits"] for h in history] == [12000, 9000]


def test_update_errors(engine: Engine, run: Run) -> None:
    missing = run("pricing", "update", "nope", "--provider", "openai", "--name", "x")
    assert missing.code == 1 and "no price for model 'nope'" in missing.error
    assert run(*ADD).code == 0
    nothing = run("pricing", "update", "gpt-x", "--provider", "openai")
    assert nothing.code == 2 and "nothing to update" in nothing.err
    half = run("pricing", "update", "gpt-x", "--provider", "openai",
               "--cache-write-cost-credits", "5")
    assert half.code == 1 and "per_cache_write_tokens" in half.error


def test_upsert_adds_then_changes(engine: Engine, run: Run) -> None:
    args = ["pricing", "upsert", "m1", "--provider", "mistral", "--input-cost-credits", "10",
            "--output-cost-credits", "20"]
    assert run(*args).code == 0
    assert "1 changed" in run(*args[:-1], "30").out
    assert run("pricing", "get", "m1", "--json").json()[0]["output_cost_credits"] == 30


def test_delete_only_the_given_provider(engine: Engine, run: Run) -> None:
    for provider in ("openai", "azure"):
        assert run("pricing", "add", "--provider", provider, "--id", "gpt-x",
                   "--input-cost-credits", "1", "--output-cost-credits", "2").code == 0
    ambiguous = run("pricing", "delete", "gpt-x")
    assert ambiguous.code == 1 and "give --provider" in ambiguous.error
    assert run("pricing", "delete", "gpt-x", "--provider", "azure").code == 0
    assert [p["provider"] for p in run("pricing", "get", "gpt-x", "--json").json()] == ["openai"]
    unknown = run("pricing", "delete", "gpt-x", "--provider", "azure")
    assert unknown.code == 1 and "no price" in unknown.error


def test_import_0_1_10_file_and_export_round_trip(engine: Engine, run: Run,
                                                  tmp_path: Path) -> None:
    result = run("pricing", "import", str(SEED_MODELS))
    assert result.code == 0, result.err
    seed = json.loads(SEED_MODELS.read_text())
    assert f"Imported {len(seed)} model price(s): {len(seed)} added" in result.out
    assert result.err == ""  # a short import needs no progress bar
    exported = run("pricing", "export")
    assert exported.code == 0
    by_key = {(m["provider"], m["id"]): m for m in exported.json()}
    assert by_key == {(m["provider"], m["id"]): m for m in seed}

    out = tmp_path / "out.json"
    assert run("pricing", "export", "--provider", "openai", "-o", str(out)).code == 0
    assert {m["provider"] for m in json.loads(out.read_text())} == {"openai"}
    again = run("pricing", "import", str(out))
    assert "0 added, 0 changed, 2 unchanged" in again.out


def test_long_import_shows_progress_on_stderr(engine: Engine, run: Run,
                                              tmp_path: Path) -> None:
    data = [entry(f"m{i:03}") for i in range(120)]
    result = run("pricing", "import", write(tmp_path, data))
    assert result.code == 0, result.err
    assert "Importing 120 prices" in result.err
    assert result.out.strip() == "Imported 120 model price(s): 120 added, 0 changed, 0 unchanged."
    exported = run("pricing", "export")
    assert "Exporting 120 prices" in exported.err and len(exported.json()) == 120


def test_import_with_cache_rates(engine: Engine, run: Run, tmp_path: Path) -> None:
    data = [entry("a", cached_input_cost_credits=10, per_cached_input_tokens=1_000_000,
                  cache_write_cost_credits=125, per_cache_write_tokens=1_000_000)]
    assert run("pricing", "import", write(tmp_path, data)).code == 0
    got = run("pricing", "get", "a", "--json").json()[0]
    assert got["cache_write_cost_credits"] == 125


@pytest.mark.parametrize(("content", "message"), [
    ("[{", "not valid JSON"),
    ({"provider": "openai"}, "expected a JSON list"),
    ([entry("a"), entry("b", input_cost_credits=-1)], "entry 2 (openai/b): input_cost_credits"),
    ([entry("a"), entry("b", output_cost_credits="12")], "entry 2 (openai/b)"),
    ([entry("a"), entry("b", output_cost_credits=1.5)], "entry 2 (openai/b)"),
    ([entry("a"), entry("a")], "entry 2 (openai/a) repeats a model"),
    ([entry("a", input_cost_credit=1)], "input_cost_credit"),
    ([entry("a", cached_input_cost_credits=5)], "per_cached_input_tokens"),
    ([{k: v for k, v in entry("a").items() if k != "per_output_tokens"}], "per_output_tokens"),
])
def test_import_validates_whole_file_first(engine: Engine, run: Run, tmp_path: Path,
                                           content: object, message: str) -> None:
    result = run("pricing", "import", write(tmp_path, content))
    assert result.code == 1
    assert message in result.error
    assert count(engine, "token_tracking_model_pricing") == 0
    assert count(engine, "token_tracking_price_history") == 0


def test_import_is_all_or_nothing_when_a_write_fails(engine: Engine, run: Run, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = prices.set_price
    calls = []

    def failing(*args: object, **kwargs: object) -> object:
        calls.append(kwargs["model_id"])
        if len(calls) == 3:
            raise InvalidInputError("simulated failure on the third model")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prices, "set_price", failing)
    result = run("pricing", "import", write(tmp_path, [entry(m) for m in "abcd"]))
    assert result.code == 1 and "simulated failure" in result.error
    assert calls == ["a", "b", "c"]
    assert count(engine, "token_tracking_model_pricing") == 0


def test_unknown_file_is_a_usage_error(engine: Engine, run: Run, tmp_path: Path) -> None:
    result = run("pricing", "import", str(tmp_path / "missing.json"))
    assert result.code == 2
    assert "No such file or directory" in result.err


def test_price_change_never_changes_charged_usage(engine: Engine, run: Run) -> None:
    assert run(*ADD).code == 0
    accountant = Accountant(engine)
    row_id = accountant.record(user_id="u-alice", provider="openai", model_id="gpt-x",
                               usage=Usage(input_tokens=1000, output_tokens=1000))
    assert row_id is not None
    assert run("pricing", "update", "gpt-x", "--provider", "openai",
               "--input-cost-credits", "999999").code == 0
    now = utcnow()
    rows = accountant.run(lambda s: ledger_rows(s, since=now - timedelta(days=1),
                                                until=now + timedelta(days=1)))
    assert [r.charged_micro for r in rows] == [15_000_000]  # 3 + 12 credits, unchanged
