"""``alerts list/deliver/test``, secret settings masked, ``serve`` delivering in the
background (SQLite and PostgreSQL)."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from alert_support import (  # noqa: F401  (fixture)
    NOW,
    SECRET,
    free_port,
    out,
    priced_accountant,
    receiver_fixture,
)

from openwebui_token_tracking.accountant import transaction
from openwebui_token_tracking.alerts import deliverer
from openwebui_token_tracking.cli import main
from openwebui_token_tracking.storage import ledger


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(name="run")
def run_fixture(db_url, capsys):
    def _run(*args: str) -> Result:
        capsys.readouterr()
        code = main(["--database-url", db_url, *args])
        got = capsys.readouterr()
        return Result(code, got.out, got.err)
    return _run


def queue_alert(db_url, credits=9.0):
    with transaction(db_url) as s:
        ledger.record_usage(s, user_id="u-alice", provider="openai", model_id="gpt",
                            usage=out(credits), now=NOW)


def test_secrets_are_never_printed(engine, run):
    priced_accountant(engine)
    for key in ("alert_webhook_secret", "alert_smtp_password"):
        got = run("settings", "set", key, "hunter2-very-secret")
        assert (got.code, got.out.strip()) == (0, f"{key} = ********")
        assert run("settings", "get", key).out.strip() == "********"
    listing = run("settings", "list", "--json")
    assert "hunter2" not in listing.out + run("settings", "list").out
    values = {i["key"]: i["value"] for i in json.loads(listing.out)}
    assert values["alert_webhook_secret"] == values["alert_smtp_password"] == "********"
    assert values["alert_thresholds"] == "80,100"
    assert run("settings", "get", "alert_webhook_url").out.strip() == ""  # not a secret


@pytest.mark.parametrize(("key", "value", "message"), [
    ("alert_thresholds", "80,abc", "whole percentage"),
    ("alert_webhook_url", "ftp://x", "http:// or https:// URL"),
    ("alert_smtp_port", "0", "port number"),
    ("alert_smtp_starttls", "yes", "true or false"),
    ("alert_email_to", "admins, bob", "'bob' is not an e-mail address"),
])
def test_bad_alert_settings_are_one_line_errors(engine, run, key, value, message):
    priced_accountant(engine)
    got = run("settings", "set", key, value)
    assert got.code == 1 and message in got.err and got.err.count("\n") == 1


def test_alerts_list_and_deliver(engine, db_url, run, receiver):
    priced_accountant(engine, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
    assert run("alerts", "list").out.strip() == "(no alerts)"
    queue_alert(db_url, 11)
    listing = run("alerts", "list")
    assert "Alice" in listing.out and "webhook: pending" in listing.out
    receiver.statuses = [500]
    got = run("alerts", "deliver")
    assert got.code == 1
    assert got.out.strip() == "delivered 1, failed 1 (will retry), gave up 0"
    assert "HTTP 500" in got.err
    [first, second] = json.loads(run("alerts", "list", "--json").out)
    assert (first["threshold_percent"], second["threshold_percent"]) in ((100, 80), (80, 100))
    assert {first["spent"], first["limit"]} == {"11", "10"}
    assert sorted(d["status"] for d in (first["deliveries"] + second["deliveries"])) == \
        ["delivered", "pending"]
    assert run("alerts", "list", "--scope", "sponsor_total").out.strip() == "(no alerts)"


def test_alerts_test_command(engine, run, receiver):
    priced_accountant(engine)
    got = run("alerts", "test")
    assert got.code == 1 and "no alert channel is configured" in got.err
    run("settings", "set", "alert_webhook_url", receiver.url)
    got = run("alerts", "test")
    assert (got.code, got.out.strip()) == (0, "webhook: delivered")
    assert receiver.wait_for(1)[0].json()["type"] == "budget.test"
    got = run("alerts", "test", "--channel", "email")
    assert got.code == 1 and "email: failed: channel email is not configured" in got.out


def test_alerts_commands_need_our_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    assert main(["--database-url", url, "alerts", "deliver"]) == 1


def test_serve_delivers_queued_alerts_in_the_background(engine, db_url, receiver):
    priced_accountant(engine, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
    queue_alert(db_url)
    env = {**os.environ, "DATABASE_URL": db_url, "TOKEN_TRACKING_ADMIN_TOKEN": "t" * 20}
    proc = subprocess.Popen([sys.executable, "-m", "openwebui_token_tracking.cli", "serve",
                             "--port", str(free_port())], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        [req] = receiver.wait_for(1, timeout=60)
        assert req.json()["subject"]["user_id"] == "u-alice"
    finally:
        proc.terminate()
        proc.wait(30)
    deliverer.stop_all()
