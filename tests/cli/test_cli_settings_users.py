"""``settings`` and ``user find``."""

from __future__ import annotations

import pytest
from cli_support import Run, run_fixture, snapshot  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine


def test_settings_list_get_set(engine: Engine, run: Run) -> None:
    listed = {s["key"]: s for s in run("settings", "list", "--json").json()}
    assert listed["budget_period"] == {"key": "budget_period", "value": "day",
                                       "is_default": True,
                                       "description": listed["budget_period"]["description"]}
    result = run("settings", "set", "base_credit_allowance", "2500.5")
    assert result.code == 0, result.err
    assert result.out.strip() == "base_credit_allowance = 2500.5"
    assert run("settings", "get", "base_credit_allowance", "--json").json() == {
        "key": "base_credit_allowance", "value": "2500.5", "is_default": False}
    assert "2500.5" in run("settings", "list").out


@pytest.mark.parametrize(("key", "value", "message"), [
    ("base_credit_allowance", "-1", "must be positive"),
    ("base_credit_allowance", "lots", "must be a number"),
    ("budget_period", "year", "day, week or month"),
    ("budget_timezone", "Mars/Olympus", "IANA time zone"),
    ("credits_per_usd", "0", "must be positive"),
    ("no_such_key", "1", "unknown setting 'no_such_key'"),
])
def test_settings_set_rejects_bad_values(engine: Engine, run: Run, key: str, value: str,
                                         message: str) -> None:
    before = snapshot(engine)
    result = run("settings", "set", key, value)
    assert result.code == 1
    assert message in result.error
    assert snapshot(engine) == before


def test_settings_get_unknown(engine: Engine, run: Run) -> None:
    result = run("settings", "get", "nope")
    assert result.code == 1 and "known settings" in result.error


def test_user_find(engine: Engine, run: Run) -> None:
    found = run("user", "find", "--email", "alice@example.edu", "--json")
    assert found.code == 0
    assert found.json() == [{"id": "u-alice", "name": "Alice", "email": "alice@example.edu"}]
    assert "Ada Admin" in run("user", "find", "--id", "u-admin").out
    assert run("user", "find", "--name", "Bob", "--json").json()[0]["id"] == "u-bob"


def test_user_find_errors(engine: Engine, run: Run) -> None:
    none = run("user", "find", "--name", "Nobody")
    assert none.code == 1 and "no user matches" in none.error
    nothing = run("user", "find")
    assert nothing.code == 1 and "give a user id, name or email" in nothing.error
