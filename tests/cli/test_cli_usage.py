"""``usage`` summaries, ``usage export`` and ``balance``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cli_support import Run, run_fixture  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from openwebui_token_tracking.accountant import Accountant, utcnow
from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.storage import prices, sponsors
from openwebui_token_tracking.storage.prices import PriceInput

DAY1 = datetime(2026, 11, 27, 10, tzinfo=UTC)
DAY2 = datetime(2026, 11, 28, 9, tzinfo=UTC)
RANGE = ["--since", "2026-11-27", "--until", "2026-11-28"]  # both days, until inclusive


@pytest.fixture
def ledger(engine: Engine) -> Accountant:
    """alice 15 credits on day 1 and 1.5 on day 2 (sponsored), bob 3 on day 2."""
    with Session(engine) as s, s.begin():
        prices.set_price(s, provider="openai", model_id="gpt-x", name="GPT X",
                         price=PriceInput(3000, 1_000_000, 12000, 1_000_000),
                         now=datetime(2026, 1, 1, tzinfo=UTC))
        sponsors.create_allowance(s, name="Lab", sponsor_id="u-admin", models=["gpt-x"],
                                  total_credit_limit=100, daily_credit_limit=10,
                                  now=datetime(2026, 1, 1, tzinfo=UTC))
    acc = Accountant(engine)
    acc.record(user_id="u-alice", provider="openai", model_id="gpt-x", now=DAY1,
               usage=Usage(input_tokens=1000, output_tokens=1000), chat_id="c1",
               message_id="m1")
    acc.record(user_id="u-alice", provider="openai", model_id="gpt-x", now=DAY2,
               allowance_name="Lab", usage=Usage(input_tokens=100, output_tokens=100))
    acc.record(user_id="u-bob", provider="openai", model_id="gpt-x", now=DAY2,
               usage=Usage(input_tokens=1000))
    return acc


def test_usage_by_user_json(ledger: Accountant, run: Run) -> None:
    result = run("usage", *RANGE, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["since"] == "2026-11-27T00:00:00+00:00"
    assert data["until"] == "2026-11-29T00:00:00+00:00"
    assert [(r["key"], r["detail"], r["requests"], r["charged_micro"]) for r in data["rows"]] == [
        ("u-alice", "Alice", 2, 16_500_000), ("u-bob", "Bob", 1, 3_000_000)]
    assert data["total"]["charged_micro"] == 19_500_000


@pytest.mark.parametrize(("by", "keys"), [
    ("model", ["gpt-x"]),
    ("provider", ["openai"]),
    ("group", ["(no group)"]),
    ("allowance", ["(base allowance)", "Lab"]),
    ("day", ["2026-11-27", "2026-11-28"]),
])
def test_usage_by_dimension(ledger: Accountant, run: Run, by: str, keys: list[str]) -> None:
    rows = run("usage", *RANGE, "--by", by, "--json").json()["rows"]
    assert [r["key"] for r in rows] == keys


def test_usage_table_and_filters(ledger: Accountant, run: Run) -> None:
    table = run("usage", *RANGE, "--by", "model").out
    assert "gpt-x" in table and "19.5" in table and "total" in table
    only_bob = run("usage", *RANGE, "--user", "u-bob", "--json").json()
    assert [r["key"] for r in only_bob["rows"]] == ["u-bob"]
    day1 = run("usage", "--since", "2026-11-27", "--until", "2026-11-27T23:00:00Z", "--json")
    assert day1.json()["total"]["requests"] == 1
    empty = run("usage", "--since", "2020-01-01", "--until", "2020-01-02")
    assert "No usage in this range." in empty.out


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--since", "yesterday"], 2, "not a date"),
    (["--by", "colour"], 2, "Invalid value for '--by'"),
    (["--since", "2026-11-28", "--until", "2026-11-01"], 1, "the range is empty"),
])
def test_usage_bad_input(ledger: Accountant, run: Run, args: list[str], code: int,
                         message: str) -> None:
    result = run("usage", *args)
    assert result.code == code
    assert message in result.err


def test_usage_export_csv(ledger: Accountant, run: Run) -> None:
    result = run("usage", "export", *RANGE, "--format", "csv")
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [(r["user_id"], r["credits"], r["chat_id"]) for r in rows] == [
        ("u-alice", "15", "c1"), ("u-alice", "1.5", ""), ("u-bob", "3", "")]
    assert rows[0]["created_at"] == "2026-11-27T10:00:00+00:00"
    assert rows[1]["sponsored_allowance_id"] != ""
    assert result.err == ""  # three rows need no progress bar


def test_usage_export_json_to_file(ledger: Accountant, run: Run, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "ledger.json"
    result = run("usage", "export", *RANGE, "--user", "u-alice", "--format", "json",
                 "-o", str(out))
    assert result.code == 0, result.err
    import json
    rows = json.loads(out.read_text())
    assert [Decimal(r["credits"]) for r in rows] == [Decimal(15), Decimal("1.5")]
    assert rows[0]["input_tokens"] == 1000 and rows[0]["message_id"] == "m1"
    empty = run("usage", "export", "--since", "2020-01-01", "--until", "2020-01-02",
                "--format", "json")
    assert json.loads(empty.out) == []


def test_balance(engine: Engine, ledger: Accountant, run: Run) -> None:
    now = utcnow()
    ledger.record(user_id="u-alice", provider="openai", model_id="gpt-x", now=now,
                  usage=Usage(input_tokens=1000))  # 3 credits in today's window
    today = now.date()  # the fixture's fixed days may fall in today's (UTC day) window
    base_spent = Decimal(3) + (15 if DAY1.date() == today else 0)
    lab_spent_today = Decimal("1.5") if DAY2.date() == today else Decimal(0)

    result = run("balance", "u-alice", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["user"]["id"] == "u-alice"
    assert Decimal(data["remaining"]) == 1000 - base_spent
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC)
    assert data["reset_at"] == tomorrow.isoformat()
    [lab] = data["allowances"]
    assert lab["name"] == "Lab"
    scopes = {lim["scope"]: lim for lim in lab["limits"]}
    assert Decimal(scopes["sponsor_total"]["remaining"]) == Decimal("98.5")
    assert Decimal(scopes["sponsor_user"]["remaining"]) == 10 - lab_spent_today
    by_email = run("balance", "alice@example.edu")
    assert by_email.code == 0
    assert f"{(1000 - base_spent).normalize():f} credits left" in by_email.out
    assert "sponsored: Lab" in by_email.out


def test_balance_unknown_user(engine: Engine, run: Run) -> None:
    result = run("balance", "u-ghost")
    assert result.code == 1
    assert "no Open WebUI user with id or email 'u-ghost'" in result.error
