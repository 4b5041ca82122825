"""``keys list / set-budget / clear-budget`` and ``serve``'s gateway configuration check."""

from __future__ import annotations

import time

import sqlalchemy as sa
from cli_support import Run, run_fixture  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine

from openwebui_token_tracking.storage.key_budgets import key_id
from openwebui_token_tracking.storage.openwebui_access import access_metadata, api_key_table

KEY = "sk-alice-cli-test-key-000000000001"


def _open_webui_key(engine: Engine) -> None:
    access_metadata.create_all(engine, tables=[api_key_table])
    now = int(time.time())
    with engine.begin() as conn:
        conn.execute(sa.insert(api_key_table).values(id="key_u-alice", user_id="u-alice",
                                                     key=KEY, created_at=now, updated_at=now))


def test_keys_list_set_and_clear_budget(engine: Engine, run: Run) -> None:
    _open_webui_key(engine)
    kid = key_id(KEY)
    [row] = run("keys", "list", "--json").json()
    assert row["key_id"] == kid and row["user_id"] == "u-alice" and row["current"]
    assert row["limit"] is None and KEY not in run("keys", "list").out
    result = run("keys", "set-budget", kid, "12.5")
    assert result.code == 0, result.err
    assert "may spend 12.5 credits per window" in result.out
    [row] = run("keys", "list", "--user", "u-alice", "--json").json()
    assert row["limit"] == "12.5" and row["set_by"] == "cli" and row["spent"] == "0"
    assert run("keys", "list", "--user", "u-bob", "--json").json() == []
    assert run("keys", "clear-budget", kid).code == 0
    assert run("keys", "list", "--json").json()[0]["limit"] is None


def test_keys_errors_are_one_line(engine: Engine, run: Run) -> None:
    _open_webui_key(engine)
    kid = key_id(KEY)
    assert "is not a key id" in run("keys", "set-budget", "sk-secret", "1").error
    assert "no API key key-0000000000000000 is known" in run(
        "keys", "set-budget", "key-0000000000000000", "1").error
    assert "cannot be negative" in run("keys", "set-budget", kid, "-1").error
    assert "at most 6 decimals" in run("keys", "set-budget", kid, "0.0000001").error
    assert "has no budget" in run("keys", "clear-budget", kid).error


def test_serve_refuses_a_bad_gateway_config_in_one_line(engine: Engine, run: Run,
                                                        tmp_path) -> None:
    bad = tmp_path / "gateway.toml"
    bad.write_text('[upstreams.openai]\nprotocol = "grpc"\n')
    result = run("serve", "--gateway-config", str(bad))
    assert result.code == 1
    assert "protocol must be one of openai, anthropic, gemini, mistral" in result.error
