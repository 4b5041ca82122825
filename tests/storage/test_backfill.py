"""Counters of the current windows are built at upgrade, so the 0.1.10 API's reads after
upgrading read counters: a user's window at most, never an allowance's whole history."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from legacy_0_1_10 import LAB_ID, build
from sqlalchemy.orm import Session

from openwebui_token_tracking import TokenTracker
from openwebui_token_tracking.accountant import Accountant
from openwebui_token_tracking.storage import migrate, settings_store, sponsors
from openwebui_token_tracking.storage.counters import MissingCounterError
from openwebui_token_tracking.storage.engine import get_engine
from openwebui_token_tracking.storage.openwebui_groups import group_tables
from openwebui_token_tracking.storage.schema import BudgetCounter

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = int(datetime(2026, 11, 28, tzinfo=UTC).timestamp())
LAB = str(LAB_ID)


def counter_rows(engine) -> dict[tuple[str, str, int], int]:
    with Session(engine) as s:
        return {(c.scope, c.subject, c.window_start): c.spent_micro
                for c in s.scalars(sa.select(BudgetCounter))}


@pytest.fixture
def upgraded(db_url):
    from db_support import create_openwebui_users

    raw = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    create_openwebui_users(raw)
    build(raw)
    raw.dispose()
    engine = get_engine(db_url)
    migrate.upgrade(engine, now=NOW)
    return engine


def test_upgrade_builds_the_counters_of_the_current_windows(upgraded):
    # gpt-4o: 3750 / 15000 credits per 1M tokens; claude-3-5-haiku: 1000 / 5000.
    alice_today = 1000 * 3750 + 1000 * 15000 + 2000 * 1000 + 400 * 5000  # 09:00 and 10:30
    lab_total = 20000 * 3750 + 4000 * 15000 + 4000 * 3750 + 2000 * 15000  # bob, alice
    assert counter_rows(upgraded) == {
        ("user", "u-alice", DAY): alice_today,
        ("user", "u-bob", DAY): 10 * 3750 + 10 * 15000,
        ("sponsor_total", LAB, 0): lab_total,
        ("sponsor_user", f"{LAB}:u-alice", DAY): 4000 * 3750 + 2000 * 15000,
    }


def test_reads_after_upgrade_are_counter_reads(upgraded, db_url):
    tracker = TokenTracker(db_url)
    tracker.accountant.clock = lambda: NOW
    with Session(upgraded) as s:  # once per engine, not per read: are Open WebUI's groups here?
        group_tables(s)
    statements: list[str] = []
    sa.event.listen(upgraded, "before_cursor_execute",
                    lambda _c, _cur, sql, *_: statements.append(sql))
    own, _ = tracker.remaining_credits({"id": "u-alice"})
    sponsored = tracker.remaining_credits({"id": "u-alice"}, "lab")
    assert own == Decimal(150) - Decimal("22.75")  # 50 + Staff's 100, minus today's
    assert sponsored == (Decimal(100) - Decimal("45"), Decimal(1000) - Decimal("180"))
    # One round trip each: the user's own balance (settings, groups, counters) and the
    # sponsored one (allowance, settings, both counters); the upgrade built the counters.
    assert len(statements) == 2, "\n\n".join(statements)
    assert all("token_tracking_budget_counter" in s for s in statements)


def test_missing_sponsored_total_is_refused_not_summed_and_init_rebuilds_it(upgraded, db_url):
    acct = Accountant(upgraded, clock=lambda: NOW)
    acct.run(lambda s: s.execute(sa.delete(BudgetCounter)))
    with pytest.raises(MissingCounterError, match="database migrate"):
        acct.balance("u-alice", allowance_name="lab")
    # A user's own window without a counter is read from that user's rows of the window.
    assert acct.balance("u-alice").limits[0].spent == Decimal("22.75")
    migrate.upgrade(upgraded, now=NOW)  # init / database migrate, at any later start
    assert acct.balance("u-alice", allowance_name="lab").remaining == Decimal(55)


def test_per_user_sponsored_counter_of_an_older_window_falls_back_to_this_windows_rows(
        upgraded, db_url):
    acct = Accountant(upgraded, clock=lambda: NOW)
    # The user's latest per-user counter is yesterday's (no charge yet today through it).
    acct.run(lambda s: s.execute(
        sa.update(BudgetCounter).where(BudgetCounter.scope == "sponsor_user")
        .values(window_start=DAY - 86400, spent_micro=999_000_000)))
    statements: list[str] = []
    sa.event.listen(upgraded, "before_cursor_execute",
                    lambda _c, _cur, sql, *_: statements.append(sql))
    report = acct.balance("u-alice", allowance_name="lab")
    assert [lim.remaining for lim in report.limits] == [Decimal(820), Decimal(55)]
    # Yesterday's 999 credits are not today's; today's come from the user's rows of today,
    # in the same statement.
    assert len(statements) == 1 and "token_tracking_usage_log" in statements[0]


def test_sponsored_read_after_the_budget_period_changed(upgraded, db_url):
    acct = Accountant(upgraded, clock=lambda: NOW)
    assert acct.balance("u-alice", allowance_name="lab").limits[1].remaining == Decimal(55)
    # The day's counter says 999 spent; the window becomes the month, which has no
    # counter yet: the read, planned for the day's window, must not use the day's.
    acct.run(lambda s: s.execute(
        sa.update(BudgetCounter).where(BudgetCounter.scope == "sponsor_user")
        .values(spent_micro=999_000_000)))
    acct.run(lambda s: settings_store.set_value(s, "budget_period", "month"))
    statements: list[str] = []
    sa.event.listen(upgraded, "before_cursor_execute",
                    lambda _c, _cur, sql, *_: statements.append(sql))
    per_user = acct.balance("u-alice", allowance_name="lab").limits[1]
    assert per_user.remaining == Decimal(55)  # November's rows of alice on lab: 45 credits
    assert per_user.reset_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert len(statements) > 1  # the settings changed: the month's state took another trip
    statements.clear()
    assert acct.balance("u-alice", allowance_name="lab").limits[1].remaining == Decimal(55)
    assert len(statements) == 1  # and the next read plans for the month


def test_a_new_allowance_has_its_total_counter_from_the_start(engine):
    acct = Accountant(engine, clock=lambda: NOW)
    allowance = acct.run(lambda s: sponsors.create_allowance(
        s, name="new", sponsor_id=None, models=["gpt"], total_credit_limit=5,
        daily_credit_limit=None, now=NOW))
    assert counter_rows(engine) == {("sponsor_total", str(allowance.id), 0): 0}
