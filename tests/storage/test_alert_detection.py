"""Budget alerts detected where the money is written (SQLite and PostgreSQL)."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from storage_support import priced_accountant

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.accounting.alerts import (
    crossed_thresholds,
    parse_thresholds,
    threshold_micro,
)
from openwebui_token_tracking.accounting.budget import window_for
from openwebui_token_tracking.errors import DailyTokenLimitExceededError, InvalidInputError
from openwebui_token_tracking.storage import (
    alerts,
    caps,
    counters,
    group_limits,
    groups,
    ledger,
    settings_store,
    sponsors,
)
from openwebui_token_tracking.storage.schema import AlertDelivery, AlertEvent

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def acct(engine):
    return priced_accountant(engine, NOW, priced_since=NOW - timedelta(days=1))


def out(n_credits: float) -> Usage:
    return Usage(output_tokens=int(n_credits * 1000))


def charge(acct, credits, user="u-alice", allowance=None, now=NOW):
    adm = acct.admit(user_id=user, provider="openai", model_id="gpt", estimate=out(credits),
                     allowance_name=allowance, now=now)
    return acct.settle(adm.reservation_id, out(credits))


def events(acct):
    return acct.run(lambda s: list(s.scalars(sa.select(AlertEvent).order_by(AlertEvent.id))))


# -- the pure rule ------------------------------------------------------------------------

def test_thresholds_parse_and_refuse_nonsense():
    assert parse_thresholds(" 100, 80%,80 ") == (80, 100)
    assert parse_thresholds("") == ()
    for bad in ("0", "abc", "1001", "-5", "80.5"):
        with pytest.raises(ValueError, match="whole percentage"):
            parse_thresholds(bad)


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, 10**9),
       st.lists(st.integers(1, 1000), unique=True, max_size=5))
def test_a_threshold_is_crossed_by_exactly_one_charge_of_a_sequence(a, b, limit, pcts):
    thresholds = tuple(sorted(pcts))
    before, after = sorted((a, b))
    crossed = crossed_thresholds(before, after, limit, thresholds)
    for p in thresholds:
        assert (p in crossed) == (before < threshold_micro(limit, p) <= after)
    # split the same spend into two charges: each threshold fires in exactly one of them
    mid = (before + after) // 2
    parts = crossed_thresholds(before, mid, limit, thresholds) + \
        crossed_thresholds(mid, after, limit, thresholds)
    assert sorted(parts) == crossed


# -- the user's window --------------------------------------------------------------------

def test_user_window_fires_80_and_100_once_each_with_names_and_exact_amounts(acct):
    charge(acct, 7)
    assert events(acct) == []
    charge(acct, 1.5)
    [e80] = events(acct)
    assert (e80.scope, e80.subject, e80.threshold, e80.spent_micro, e80.limit_micro) == \
        ("user", "u-alice", 80, 8_500_000, 10_000_000)
    body = json.loads(e80.payload)
    assert body["type"] == "budget.threshold_crossed"
    assert body["id"] == e80.event_key
    assert body["subject"] == {"user_id": "u-alice", "user_name": "Alice",
                               "user_email": "alice@example.edu"}
    assert (body["limit"], body["spent"], body["remaining"], body["threshold"]) == \
        ("10", "8.5", "1.5", "8")
    assert body["window"] == {"start": "2026-11-28T00:00:00+00:00",
                              "end": "2026-11-29T00:00:00+00:00"}
    assert body["instant"] == NOW.isoformat()
    charge(acct, 0.5)  # 9.0: nothing new
    charge(acct, 1)  # exactly 10: 100 %
    assert [e.threshold for e in events(acct)] == [80, 100]
    with pytest.raises(DailyTokenLimitExceededError):
        charge(acct, 1)
    assert len(events(acct)) == 2


def test_one_charge_crossing_two_thresholds_fires_both(acct):
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(5))
    acct.settle(adm.reservation_id, out(12))  # the model spoke more than estimated
    assert [(e.threshold, e.spent_micro) for e in events(acct)] == \
        [(80, 12_000_000), (100, 12_000_000)]


def test_once_per_window_even_when_the_limit_changes(acct):
    charge(acct, 8)
    acct.run(lambda s: groups.create_group(s, "lab", 10, None))
    acct.run(lambda s: groups.add_member(s, "lab", "u-alice"))  # limit now 20: 40 % spent
    charge(acct, 9)  # 17 = 85 % of 20: 80 % already fired in this window
    assert [e.threshold for e in events(acct)] == [80]
    tomorrow = NOW + timedelta(days=1)
    charge(acct, 16, now=tomorrow)
    assert [(e.threshold, e.window_start) for e in events(acct)] == \
        [(80, int(datetime(2026, 11, 28, tzinfo=UTC).timestamp())),
         (80, int(datetime(2026, 11, 29, tzinfo=UTC).timestamp()))]


def test_unreserved_charges_alert_too(acct):
    acct.record(user_id="u-bob", provider="openai", model_id="gpt", usage=out(11))
    assert [(e.subject, e.threshold) for e in events(acct)] == [("u-bob", 80), ("u-bob", 100)]


def test_thresholds_come_from_settings_and_empty_means_off(acct):
    acct.run(lambda s: settings_store.set_value(s, "alert_thresholds", "50"))
    charge(acct, 6)
    assert [e.threshold for e in events(acct)] == [50]
    acct.run(lambda s: settings_store.set_value(s, "alert_thresholds", ""))
    charge(acct, 4, user="u-bob")
    assert len(events(acct)) == 1
    with pytest.raises(InvalidInputError, match="whole percentage"):
        acct.run(lambda s: settings_store.set_value(s, "alert_thresholds", "eighty"))


def test_the_alert_rolls_back_with_its_charge(acct, engine):
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(9))

    def fail_after_settle(s):
        ledger.settle(s, adm.reservation_id, out(9), now=NOW)
        assert s.scalar(sa.select(sa.func.count()).select_from(AlertEvent)) == 1
        raise RuntimeError("crash before commit")
    with pytest.raises(RuntimeError):
        acct.run(fail_after_settle)
    assert events(acct) == []


def test_a_charge_crossing_nothing_adds_no_statement(acct, engine, backend):
    charge(acct, 1)
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(1))
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper())
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        acct.settle(adm.reservation_id, out(1), price=adm.price)  # as the pipes do
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    # take the reservation, write the ledger row, update the counter (which also returns
    # the limit and the thresholds); SQLite's BEGIN IMMEDIATE goes through the cursor too;
    # PostgreSQL does the three in one statement (storage.at_once)
    expected = ["WITH"] if backend == "postgresql" else ["DELETE", "INSERT", "UPDATE"]
    assert [s for s in statements if s != "BEGIN"] == expected


# -- outbox -------------------------------------------------------------------------------

def test_outbox_rows_only_for_configured_channels_in_the_same_transaction(acct):
    charge(acct, 8)
    assert acct.run(lambda s: s.scalar(sa.select(sa.func.count()).select_from(AlertDelivery))) \
        == 0

    def configure(s):
        settings_store.set_value(s, "alert_webhook_url", "http://127.0.0.1:9/hook")
        settings_store.set_value(s, "alert_smtp_host", "127.0.0.1")
    acct.run(configure)
    seen = {}

    def settle_and_look(s):
        adm = ledger.reserve(s, user_id="u-bob", provider="openai", model_id="gpt",
                             estimate=out(9), now=NOW)
        ledger.settle(s, adm.reservation_id, out(9), now=NOW)
        seen["pending"] = s.info.pop(alerts.PENDING, None)  # (and so deliver nothing now)
    acct.run(settle_and_look)
    assert seen["pending"] is True
    rows = acct.run(lambda s: s.execute(sa.select(AlertDelivery.channel, AlertDelivery.status,
                                                  AlertDelivery.next_attempt_at)).all())
    assert sorted(rows) == [("email", "pending", NOW), ("webhook", "pending", NOW)]


# -- sponsored allowances and other capped scopes -----------------------------------------

def test_sponsored_total_and_per_user_limits_alert_with_allowance_and_sponsor(acct):
    acct.run(lambda s: sponsors.create_allowance(
        s, name="Course", sponsor_id="u-bob", models=["gpt"], total_credit_limit=20,
        daily_credit_limit=5, now=NOW))
    charge(acct, 4, allowance="Course")  # 80 % of the per-user 5
    charge(acct, 4, user="u-admin", allowance="Course")
    charge(acct, 5, user="u-bob", allowance="Course")  # total 13 then ...
    charge(acct, 4, user="u-bob", allowance="Course", now=NOW + timedelta(days=1))  # 17: 85 %
    got = [(e.scope, e.subject.split(":")[-1], e.threshold) for e in events(acct)]
    assert got == [("sponsor_user", "u-alice", 80), ("sponsor_user", "u-admin", 80),
                   ("sponsor_user", "u-bob", 80), ("sponsor_user", "u-bob", 100),
                   ("sponsor_total", events(acct)[4].subject, 80),
                   ("sponsor_user", "u-bob", 80)]
    total = events(acct)[4]
    body = json.loads(total.payload)
    assert body["window"] is None and body["spent"] == "17" and body["limit"] == "20"
    assert body["subject"]["allowance_name"] == "Course"
    assert body["subject"]["sponsor_email"] == "bob@example.edu"
    assert total.user_id is None and total.sponsored_allowance_id is not None


def test_any_capped_scope_alerts_for_example_a_group_total(acct):
    """A group's total budget (added by the group-budget work) alerts with no code of its
    own: it reserves against a capped counter, and settling that counter detects."""
    group = acct.run(lambda s: groups.create_group(s, "Physics", 5, None))
    window = window_for(NOW, "day", UTC)
    limit = counters.Limit(counters.CounterKey("group_total", str(group.id), window.key),
                           50_000_000, window, DailyTokenLimitExceededError)

    def spend(s, amount):
        counters.reserve_one(s, limit, amount, enforce=True)
        counters.apply_spend(s, limit.key, window, amount, amount, at=NOW)
    acct.run(lambda s: spend(s, 39_000_000))
    assert events(acct) == []
    acct.run(lambda s: spend(s, 2_000_000))
    [event] = events(acct)
    assert (event.scope, event.threshold, event.spent_micro) == ("group_total", 80, 41_000_000)
    assert json.loads(event.payload)["subject"] == {"group_id": str(group.id),
                                                    "group_name": "Physics"}


def test_team_budget_and_spend_cap_alert_through_admission(acct):
    """A team budget (group_total) and a spend cap (model_cap) set through their own
    storage functions alert when real charges cross their thresholds."""
    def setup(s):
        settings_store.set_value(s, "base_credit_allowance", "1000")
        groups.create_group(s, "Physics", 0)
        groups.add_member(s, "Physics", "u-alice")
        groups.add_member(s, "Physics", "u-bob")
        group_limits.set_group_limits(s, "Physics", total_credit_limit=10)
        caps.set_cap(s, kind="model", target="gpt", credit_limit=5)
    acct.run(setup)
    charge(acct, 3, user="u-bob")
    assert events(acct) == []  # team 3/10, bob's cap 3/5
    charge(acct, 5)  # alice: team 8/10 crosses 80 %, her cap 5/5 crosses 80 and 100 %
    got = {(e.scope, e.threshold): e for e in events(acct)}
    assert set(got) == {("group_total", 80), ("model_cap", 80), ("model_cap", 100)}
    team = json.loads(got["group_total", 80].payload)
    assert team["subject"]["group_name"] == "Physics" and team["spent"] == "8"
    cap = got["model_cap", 100]
    assert cap.user_id == "u-alice" and json.loads(cap.payload)["subject"]["model"] == "gpt"
    mine = acct.run(lambda s: alerts.list_alerts(s, viewer="u-alice"))
    assert {(a.scope, a.threshold) for a in mine} == {("model_cap", 80), ("model_cap", 100)}


def test_concurrent_charges_crossing_together_fire_once(acct, engine):
    """8 threads each charge 1.25 credits of a 10-credit window at the same moment."""
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def one(i):
        try:
            a = Accountant(engine, clock=lambda: NOW)
            adm = a.admit(user_id="u-alice", provider="openai", model_id="gpt",
                          estimate=out(1.25))
            barrier.wait(timeout=30)
            a.settle(adm.reservation_id, out(1.25))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [], [repr(e) for e in errors]
    assert [e.threshold for e in events(acct)] == [80, 100]
    assert [e.spent_micro for e in events(acct)] == [8_750_000, 10_000_000]


def test_a_failing_alert_never_takes_the_charge_with_it(acct, engine, caplog):
    with engine.begin() as conn:
        conn.exec_driver_sql('DROP TABLE "user"')  # describing the subject now fails
    charge(acct, 9)
    assert events(acct) == []
    assert acct.balance("u-alice").limits[0].spent == 9
    assert "could not record the budget alert of user u-alice" in caplog.text
