"""``credit-group link/unlink/limits/openwebui-groups``, ``cap``, rate settings, ``balance``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cli_support import Run, run_fixture, snapshot  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine

from db_support import create_openwebui_groups
from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.accountant import utcnow
from openwebui_token_tracking.storage import prices, settings_store
from openwebui_token_tracking.storage.prices import PriceInput


@pytest.fixture
def owui(engine: Engine) -> Engine:
    create_openwebui_groups(engine, {"staff": None, "research": "staff"},
                            {"staff": ["u-alice"], "research": ["u-bob"]})
    return engine


def test_link_unlink_and_show(owui: Engine, run: Run) -> None:
    assert run("credit-group", "create", "Staff", "100").code == 0
    listed = run("credit-group", "openwebui-groups", "--json").json()
    assert listed == [{"id": "research", "name": "Research", "members": 1},
                      {"id": "staff", "name": "Staff", "members": 1}]
    done = run("credit-group", "link", "Staff", "--openwebui-group", "staff")
    assert done.code == 0 and "Linked credit group 'Staff' to Open WebUI group 'Staff'" \
        in done.out
    got = run("credit-group", "get", "Staff", "--json").json()
    assert got["openwebui_group"] == {"id": "staff", "name": "Staff", "exists": True,
                                      "members": 2}
    assert "Staff (2 members)" in run("credit-group", "list").out
    run("credit-group", "add-user", "u-alice", "Staff")
    members = run("credit-group", "list-users", "Staff", "--json").json()
    assert [(m["id"], m["via"]) for m in members] == [
        ("u-alice", ["direct", "Open WebUI group"]), ("u-bob", ["Open WebUI group"])]
    with owui.begin() as conn:
        conn.exec_driver_sql("""DELETE FROM "group" WHERE id = 'staff'""")
    assert "staff (DELETED in Open WebUI: grants nothing)" in run("credit-group", "list").out
    assert run("credit-group", "unlink", "Staff").code == 0
    assert run("credit-group", "get", "Staff", "--json").json()["openwebui_group"] is None


def test_link_errors_are_one_line_and_write_nothing(owui: Engine, run: Run) -> None:
    run("credit-group", "create", "Staff", "100")
    before = snapshot(owui)
    bad = run("credit-group", "link", "Staff", "--openwebui-group", "nope")
    assert bad.code == 1 and bad.error == "Error: no Open WebUI group with id or name 'nope'"
    assert run("credit-group", "link", "Nope", "--openwebui-group", "staff").code == 1
    missing = run("credit-group", "link", "Staff")
    assert missing.code == 2 and "--openwebui-group" in missing.err
    assert run("credit-group", "unlink", "Staff").error == \
        "Error: credit group 'Staff' is not linked to an Open WebUI group"
    assert snapshot(owui) == before


def test_link_without_openwebui_group_tables(engine: Engine, run: Run) -> None:
    run("credit-group", "create", "Staff", "100")
    bad = run("credit-group", "link", "Staff", "--openwebui-group", "staff")
    assert bad.code == 1 and "no Open WebUI group tables" in bad.error
    assert "No Open WebUI groups" in run("credit-group", "openwebui-groups").out


def test_group_limits(engine: Engine, run: Run) -> None:
    run("credit-group", "create", "Team", "10")
    done = run("credit-group", "limits", "Team", "--requests-per-minute", "30",
               "--total-budget", "500")
    assert done.code == 0
    assert done.out.strip() == ("Credit group 'Team': requests per minute 30, tokens per "
                                "minute default, team budget 500.")
    run("credit-group", "limits", "Team", "--tokens-per-minute", "9000",
        "--total-budget", "none")
    got = run("credit-group", "get", "Team", "--json").json()
    assert (got["requests_per_minute"], got["tokens_per_minute"],
            got["total_credit_limit"]) == (30, 9000, None)
    assert run("credit-group", "limits", "Team").error == (
        "Error: give at least one of: requests per minute, tokens per minute, total budget")
    assert "from 1 to 10^12" in run("credit-group", "limits", "Team",
                                    "--requests-per-minute", "0").error
    assert "must be from 0 to 10^12" in run("credit-group", "limits", "Team",
                                             "--total-budget", "-5").error
    assert run("credit-group", "limits", "Team", "--total-budget", "lots").code == 2


def test_caps(engine: Engine, run: Run) -> None:
    run("credit-group", "create", "Lab", "0")
    assert run("cap", "set", "200", "--model", "o1").code == 0
    done = run("cap", "set", "500", "--model", "o1", "--group", "Lab")
    assert done.out.strip() == ("Capped model 'o1' at 500 credits per window for credit "
                                "group 'Lab'.")
    run("cap", "set", "50", "--provider", "anthropic")
    assert run("cap", "list", "--json").json() == [
        {"group": None, "kind": "model", "target": "o1", "credit_limit": 200},
        {"group": None, "kind": "provider", "target": "anthropic", "credit_limit": 50},
        {"group": "Lab", "kind": "model", "target": "o1", "credit_limit": 500}]
    assert "(base)" in run("cap", "list").out
    assert [c["target"] for c in run("cap", "list", "--group", "Lab", "--json").json()] == \
        ["o1"]
    assert run("cap", "remove", "--model", "o1", "--group", "Lab").code == 0
    assert run("cap", "remove", "--model", "o1", "--group", "Lab").error == \
        "Error: credit group 'Lab' has no cap on model 'o1'"
    assert run("cap", "set", "5", "--model", "o1", "--provider", "x").code == 2
    assert run("cap", "set", "5").code == 2
    assert "from 0 to 10^12" in run("cap", "set", "-5", "--model", "o1").error
    assert run("cap", "list", "--group", "nope").code == 1


def test_rate_settings_and_balance_show_caps_and_rate(engine: Engine, run: Run) -> None:
    assert run("settings", "set", "requests_per_minute", "60").out.strip() == \
        "requests_per_minute = 60"
    assert "must be a whole number from 0" in run("settings", "set", "tokens_per_minute",
                                                  "-1").error
    now = utcnow()

    def setup(s):
        settings_store.ensure_defaults(s)
        prices.set_price(s, provider="openai", model_id="o1", name=None,
                         price=PriceInput(0, 1, 1000, 1_000_000), now=now - timedelta(days=1))
    acct = Accountant(engine)
    acct.run(setup)
    run("cap", "set", "200", "--model", "o1")
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="o1",
                     estimate=Usage(output_tokens=3000))
    acct.settle(adm.reservation_id, Usage(output_tokens=3000))
    got = run("balance", "u-alice", "--json").json()
    caps = [lim for lim in got["limits"] if lim["scope"] == "model_cap"]
    assert [(c["target"], c["limit"], c["spent"], c["remaining"]) for c in caps] == \
        [("o1", "200", "3", "197")]
    assert got["rate"]["requests_per_minute"] == 60
    text = run("balance", "u-alice").out
    assert "cap on model o1" in text
    assert "rate limits: " in text and "of 60 requests" in text
