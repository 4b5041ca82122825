"""Admission with one limit: one atomic statement on PostgreSQL (``storage.at_once``),
one write transaction on SQLite; the same outcome either way."""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from storage_support import priced_accountant, state, warm

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import DailyTokenLimitExceededError
from openwebui_token_tracking.storage import at_once, ledger

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
FIVE = Usage(output_tokens=5000)  # 5 credits at 1 credit per 1000 output tokens


@pytest.fixture
def acct(engine):
    return priced_accountant(engine, NOW)


def admit(acct: Accountant, estimate: Usage = FIVE):
    return acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=estimate)


def watch(engine) -> tuple[list[str], list[int]]:
    statements: list[str] = []
    commits: list[int] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda _c, _cur, sql, *_: statements.append(sql))
    sa.event.listen(engine, "commit", lambda _c: commits.append(1))
    return statements, commits


def test_a_warm_admission_is_one_statement_on_postgresql_one_transaction_on_sqlite(
        acct, engine, backend):
    warm(acct)
    statements, commits = watch(engine)
    admitted = admit(acct)
    statements, commits = list(statements), list(commits)  # the admission's own
    assert admitted.estimate_micro == 5_000_000 and admitted.one_limit
    assert state(acct) == (5_000_000, 1)
    writes = [s for s in statements if s.lstrip().upper().startswith(("WITH", "INSERT",
                                                                      "UPDATE"))]
    if backend == "postgresql":
        # the terms (a read) and the admission itself, no transaction around them
        assert len(statements) == 2
        assert "INSERT INTO token_tracking_reservation" in statements[1]
        assert "UPDATE token_tracking_budget_counter" in statements[1]
        assert len(commits) == 0
    else:
        assert statements[0] == "BEGIN IMMEDIATE"
        assert any(s.startswith("INSERT INTO token_tracking_reservation") for s in writes)
        assert len(commits) == 1
        with pytest.raises(ValueError, match="PostgreSQL only"):
            acct.run(lambda s: None, autocommit=True)


def test_a_cold_window_and_a_refusal_take_the_transactional_path(acct):
    admitted = admit(acct)  # no counter yet: created in a transaction
    assert state(acct) == (5_000_000, 1)
    admit(acct)
    with pytest.raises(DailyTokenLimitExceededError, match="0 credits left of 10"):
        admit(acct)  # refused: nothing written
    assert state(acct) == (10_000_000, 2)
    acct.settle(admitted.reservation_id, Usage(output_tokens=1000))
    assert state(acct) == (5_000_000, 1)
    assert acct.balance("u-alice").remaining == Decimal(4)


def test_the_statement_writes_nothing_unless_it_holds_and_inserts(acct, backend):
    warm(acct)
    if backend != "postgresql":  # one write transaction (BEGIN IMMEDIATE) holds on SQLite
        with pytest.raises(ValueError):
            acct.run(lambda s: at_once.hold_at_once(s, ledger.plan(
                s, user_id="u-alice", provider="openai", model_id="gpt", estimate=FIVE,
                now=NOW)), autocommit=True)
        return

    def plan(s, estimate=FIVE, rid="r-1"):
        return ledger.plan(s, user_id="u-alice", provider="openai", model_id="gpt",
                           estimate=estimate, now=NOW, reservation_id=rid)

    def try_once(estimate=FIVE, rid="r-1"):
        return acct.run(lambda s: at_once.hold_at_once(s, plan(s, estimate, rid)),
                        autocommit=True)
    assert try_once() is not None
    assert try_once() is None  # the id is taken: an earlier try committed
    assert state(acct) == (5_000_000, 1)
    assert try_once(Usage(output_tokens=6000), "r-2") is None  # over the limit
    assert state(acct) == (5_000_000, 1)
    background = acct.run(lambda s: ledger.plan(
        s, user_id="u-alice", provider="openai", model_id="gpt", estimate=FIVE, now=NOW,
        enforce=False))
    assert background.one_hold is None  # a background task is never refused: transactional


def test_eight_threads_at_a_warm_limit_admit_only_what_fits(acct):
    warm(acct)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def request() -> None:
        barrier.wait(timeout=30)
        try:
            admit(acct)
            outcomes.append("admitted")
        except DailyTokenLimitExceededError:
            outcomes.append("refused")
    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["admitted"] * 2 + ["refused"] * 6
    assert state(acct) == (10_000_000, 2)


# -- settlement ---------------------------------------------------------------------------

def ledger_rows(acct):
    from openwebui_token_tracking.storage.schema import TokenUsageLog
    return acct.run(lambda s: [(r.charged_micro, r.output_tokens, r.status, r.chat_id)
                               for r in s.scalars(sa.select(TokenUsageLog)
                                                  .order_by(TokenUsageLog.id))])


def test_settling_a_warm_reservation_is_one_statement_on_postgresql(acct, engine, backend):
    warm(acct)
    admitted = admit(acct)
    statements, commits = watch(engine)
    row_id = acct.settle(admitted.reservation_id, Usage(output_tokens=2000), "stopped",
                         admitted.price)
    statements, commits = list(statements), list(commits)
    assert row_id is not None
    assert ledger_rows(acct)[-1] == (2_000_000, 2000, "stopped", None)
    assert state(acct) == (0, 0)
    assert acct.balance("u-alice").remaining == Decimal(8)
    if backend == "postgresql":
        assert len(statements) == 1 and len(commits) == 0
        assert "DELETE FROM token_tracking_reservation" in statements[0]
    else:
        assert len(commits) == 1
    assert acct.settle(admitted.reservation_id, Usage(output_tokens=2000)) is None  # once


def test_a_chat_message_charged_twice_is_dropped_and_its_hold_released(acct):
    warm(acct)
    first, second = (acct.admit(user_id="u-alice", provider="openai", model_id="gpt",
                                estimate=FIVE, chat_id="c1", message_id="m1")
                     for _ in range(2))
    assert acct.settle(first.reservation_id, Usage(output_tokens=1000), price=first.price)
    assert acct.settle(second.reservation_id, Usage(output_tokens=1000),
                       price=second.price) is None
    assert [r[0] for r in ledger_rows(acct)][-1:] == [1_000_000]
    assert len(ledger_rows(acct)) == 2  # the warm-up's and the message's
    assert state(acct) == (0, 0)
    assert acct.balance("u-alice").remaining == Decimal(9)


def test_a_reservation_holding_more_is_settled_in_a_transaction(acct, engine):
    from openwebui_token_tracking.storage import caps

    acct.run(lambda s: caps.set_cap(s, kind="model", target="gpt", credit_limit=6))
    warm(acct)
    admitted = admit(acct)
    assert not admitted.one_limit  # it holds the cap's counter too
    statements, commits = watch(engine)
    acct.settle(admitted.reservation_id, Usage(output_tokens=3000), price=admitted.price,
                one_limit=admitted.one_limit)  # as Bill does: no one-statement attempt
    assert len(commits) == 1 and len(statements) > 1
    assert not any("DELETE FROM token_tracking_reservation" in s and s.startswith("WITH")
                   for s in statements)
    report = acct.balance("u-alice")
    caps_left = [lim.remaining for lim in report.limits if lim.scope == "model_cap"]
    assert report.remaining == Decimal(7) and caps_left == [Decimal(3)]
