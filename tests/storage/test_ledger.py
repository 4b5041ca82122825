"""The ledger and atomic admission on a real database (SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import (
    AllowanceExpiredError,
    DailyTokenLimitExceededError,
    ModelNotCoveredError,
    TotalTokenLimitExceededError,
    UnknownModelError,
)
from openwebui_token_tracking.storage import groups, prices, settings_store, sponsors
from openwebui_token_tracking.storage.prices import PriceInput
from openwebui_token_tracking.storage.schema import BudgetCounter, Reservation, TokenUsageLog

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ONE_CREDIT_PER_1K_OUT = PriceInput(0, 1, 1000, 1_000_000)  # 1 credit per 1000 output tokens


@pytest.fixture
def acct(engine):
    a = Accountant(engine, clock=lambda: NOW)

    def setup(s):
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", "10")
        prices.set_price(s, provider="openai", model_id="gpt", name="GPT",
                         price=ONE_CREDIT_PER_1K_OUT, now=NOW - timedelta(days=40))
        prices.set_price(s, provider="openai", model_id="mini", name="Mini",
                         price=PriceInput(0, 1, 0, 1), now=NOW - timedelta(days=40))
    a.run(setup)
    return a


def out(n_credits: float) -> Usage:
    return Usage(output_tokens=int(n_credits * 1000))


def rows(acct):
    return acct.run(lambda s: list(s.scalars(sa.select(TokenUsageLog).order_by(TokenUsageLog.id))))


def test_admit_settle_charges_actual_and_frees_reservation(acct):
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(4))
    assert adm.estimate_micro == 4_000_000
    state = acct.balance("u-alice").limits[0]
    assert (state.reserved, state.remaining) == (Decimal(4), Decimal(6))
    row_id = acct.settle(adm.reservation_id, out(2.5))
    assert row_id is not None
    state = acct.balance("u-alice").limits[0]
    assert (state.spent, state.reserved, state.remaining) == (Decimal("2.5"), 0, Decimal("7.5"))
    [row] = rows(acct)
    assert (row.charged_micro, row.output_tokens, row.status) == (2_500_000, 2500, "completed")
    assert row.created_at == NOW
    assert acct.run(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Reservation))) == 0


def test_refusal_carries_numbers_and_charges_nothing(acct):
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(9))
    with pytest.raises(DailyTokenLimitExceededError) as err:
        acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(2))
    assert err.value.remaining == Decimal(1)
    assert err.value.limit == Decimal(10)
    assert err.value.reset_at == datetime(2026, 11, 29, tzinfo=UTC)
    assert len(rows(acct)) == 1
    assert acct.balance("u-alice").limits[0].reserved == 0


def test_free_model_is_allowed_when_allowance_is_spent(acct):
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(15))
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="mini", estimate=out(100))
    assert adm.free
    acct.settle(adm.reservation_id, Usage(input_tokens=10, output_tokens=100_000))
    assert rows(acct)[-1].charged_micro == 0


def test_unpriced_model_is_refused_and_never_free(acct):
    with pytest.raises(UnknownModelError, match="has no price"):
        acct.admit(user_id="u-alice", provider="openai", model_id="mystery", estimate=out(1))
    with pytest.raises(UnknownModelError):
        acct.record(user_id="u-alice", provider="openai", model_id="mystery", usage=out(1))
    assert rows(acct) == []


def test_group_allowances_add_to_the_base(acct):
    def setup(s):
        groups.create_group(s, "staff", 20, "Staff")
        groups.create_group(s, "lab", 5)
        groups.add_member(s, "staff", "u-alice")
        groups.add_member(s, "lab", "u-alice")
    acct.run(setup)
    assert acct.balance("u-alice").limits[0].limit == Decimal(35)
    assert acct.balance("u-bob").limits[0].limit == Decimal(10)


def test_task_calls_are_charged_but_never_blocked(acct):
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(10))
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(1),
                     enforce=False, task="title_generation")
    acct.settle(adm.reservation_id, out(1))
    assert rows(acct)[-1].task == "title_generation"
    assert acct.balance("u-alice").limits[0].remaining == Decimal(-1)


def test_release_charges_nothing(acct):
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(5))
    assert acct.release(adm.reservation_id)
    assert not acct.release(adm.reservation_id)
    assert acct.balance("u-alice").limits[0].remaining == Decimal(10)
    assert rows(acct) == []


def test_same_chat_message_is_charged_once(acct):
    for _ in range(2):
        adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(1),
                         chat_id="c1", message_id="m1")
        acct.settle(adm.reservation_id, out(1))
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(1),
                chat_id="c1", message_id="m1")
    assert len(rows(acct)) == 1
    state = acct.balance("u-alice").limits[0]
    assert (state.spent, state.reserved) == (Decimal(1), 0)


def test_price_change_applies_from_then_on_and_never_reprices(acct):
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(2))
    acct.run(lambda s: prices.set_price(
        s, provider="openai", model_id="gpt", name=None, now=NOW,
        price=PriceInput(0, 1, 3000, 1_000_000)))
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(2),
                now=NOW + timedelta(minutes=1))
    assert [r.charged_micro for r in rows(acct)] == [2_000_000, 6_000_000]
    assert acct.balance("u-alice").limits[0].spent == Decimal(8)


def test_window_follows_timezone_and_resets(acct):
    acct.run(lambda s: settings_store.set_value(s, "budget_timezone", "America/New_York"))
    late = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # 23:00 on the 28th in New York
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(10), now=late)
    with pytest.raises(DailyTokenLimitExceededError) as err:
        acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(1),
                   now=late)
    assert err.value.reset_at == datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
    after = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
    acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(1), now=after)


def test_month_period_counts_the_whole_month(acct):
    acct.run(lambda s: settings_store.set_value(s, "budget_period", "month"))
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(6),
                now=datetime(2026, 11, 2, tzinfo=UTC))
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(3),
                now=datetime(2026, 10, 31, tzinfo=UTC))
    state = acct.balance("u-alice").limits[0]
    assert state.spent == Decimal(6)
    assert state.reset_at == datetime(2026, 12, 1, tzinfo=UTC)


def test_usage_without_counter_is_counted_from_the_ledger(acct):
    """Rows written before counters existed (a migrated 0.1.10 log) still count."""
    acct.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(7))
    acct.run(lambda s: s.execute(sa.delete(BudgetCounter)))
    assert acct.balance("u-alice").limits[0].spent == Decimal(7)
    with pytest.raises(DailyTokenLimitExceededError):
        acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(4))
    acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(3))


@pytest.fixture
def lab(acct):
    acct.run(lambda s: sponsors.create_allowance(
        s, name="lab", sponsor_id="dean", models=["gpt"], total_credit_limit=5,
        daily_credit_limit=3, now=NOW - timedelta(days=3)))
    return acct


def test_sponsored_usage_counts_against_the_allowance_not_the_user(lab):
    adm = lab.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(2),
                    allowance_name="lab")
    lab.settle(adm.reservation_id, out(2))
    assert lab.balance("u-alice").limits[0].spent == 0
    report = lab.balance("u-alice", allowance_name="lab")
    by_scope = {s.scope: s.remaining for s in report.limits}
    assert by_scope == {"sponsor_total": Decimal(3), "sponsor_user": Decimal(1)}


def test_sponsored_per_user_limit(lab):
    lab.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(3),
               allowance_name="lab")
    with pytest.raises(DailyTokenLimitExceededError):
        lab.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(1),
                  allowance_name="lab")
    lab.admit(user_id="u-bob", provider="openai", model_id="gpt", estimate=out(1),
              allowance_name="lab")


def test_sponsored_total_binds_on_later_days(lab):
    """0.1.10 only counted usage up to the creation day; the total must bind forever."""
    for day, user in [(0, "u-alice"), (1, "u-bob"), (2, "u-admin")]:
        lab.record(user_id=user, provider="openai", model_id="gpt", usage=out(1.5),
                   allowance_name="lab", now=NOW - timedelta(days=2 - day))
    with pytest.raises(TotalTokenLimitExceededError) as err:
        lab.admit(user_id="u-bob", provider="openai", model_id="gpt", estimate=out(1),
                  allowance_name="lab", now=NOW + timedelta(days=5))
    assert err.value.remaining == Decimal("0.5")


def test_sponsored_allowance_covers_only_its_models(lab):
    with pytest.raises(ModelNotCoveredError, match="does not cover"):
        lab.admit(user_id="u-alice", provider="openai", model_id="mini", estimate=out(1),
                  allowance_name="lab")


def test_sponsored_allowance_expires(lab):
    lab.run(lambda s: sponsors.update_allowance(
        s, sponsors.get_allowance(s, name="lab"), expires_at=NOW))
    with pytest.raises(AllowanceExpiredError):
        lab.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(1),
                  allowance_name="lab")


def test_expired_reservation_is_settled_at_its_estimate(acct):
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(4))
    later = NOW + timedelta(hours=2)  # past the one-hour default time-to-live
    acct.admit(user_id="u-bob", provider="openai", model_id="gpt", estimate=out(1), now=later)
    [row] = rows(acct)
    assert (row.status, row.charged_micro, row.user_id) == ("estimated", 4_000_000, "u-alice")
    state = acct.balance("u-alice").limits[0]
    assert (state.spent, state.reserved) == (Decimal(4), 0)
    assert acct.settle(adm.reservation_id, out(1)) is None  # the dead process came back
    assert len(rows(acct)) == 1


def test_model_deleted_mid_request_is_still_charged(acct):
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(1))
    acct.run(lambda s: prices.delete_price(s, provider="openai", model_id="gpt"))
    acct.settle(adm.reservation_id, out(2), status="stopped")
    [row] = rows(acct)
    assert (row.charged_micro, row.status) == (2_000_000, "stopped")


def test_missing_setting_falls_back_to_default_with_one_warning(acct, caplog):
    from openwebui_token_tracking.storage.schema import BaseSetting
    settings_store._warned.clear()
    acct.run(lambda s: s.execute(sa.delete(BaseSetting).where(
        BaseSetting.setting_key == "base_credit_allowance")))
    with caplog.at_level("WARNING"):
        for _ in range(3):
            assert acct.balance("u-alice").limits[0].limit == Decimal(1000)
    warnings = [r for r in caplog.records if "base_credit_allowance" in r.getMessage()]
    assert len(warnings) == 1


def test_refusals_are_counted_by_reason_and_roll_back_nothing_else(lab):
    from openwebui_token_tracking.storage.refusals import refusal_totals
    lab.record(user_id="u-alice", provider="openai", model_id="gpt", usage=out(10))
    for _ in range(2):
        with pytest.raises(DailyTokenLimitExceededError):
            lab.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(1))
    with pytest.raises(ModelNotCoveredError):
        lab.admit(user_id="u-alice", provider="openai", model_id="mini", estimate=out(1),
                  allowance_name="lab")
    with pytest.raises(TotalTokenLimitExceededError):
        lab.admit(user_id="u-bob", provider="openai", model_id="gpt", estimate=out(6),
                  allowance_name="lab")
    totals = {(t.reason, t.model_id): t.count for t in lab.run(refusal_totals)}
    assert totals == {("user_limit", "gpt"): 2, ("model_not_covered", "mini"): 1,
                      ("sponsored_total_limit", "gpt"): 1}
    assert lab.balance("u-bob", allowance_name="lab").limits[0].reserved == 0


def test_a_repeated_admission_returns_the_first_and_holds_nothing_more(acct):
    """An admission retried after a COMMIT of unknown outcome finds its reservation id
    taken: it returns the first admission, and the hold its batch placed with the
    INSERT is taken back (the counter holds one estimate, not two)."""
    from openwebui_token_tracking.storage import ledger

    def reserve(s):
        return ledger.reserve(s, user_id="u-alice", provider="openai", model_id="gpt",
                              estimate=out(3), now=NOW, reservation_id="r-once")
    first = acct.run(reserve)
    again = acct.run(reserve)
    assert again.reservation_id == first.reservation_id == "r-once"
    assert again.estimate_micro == first.estimate_micro == 3_000_000
    state = acct.balance("u-alice").limits[0]
    assert (state.reserved, state.remaining) == (Decimal(3), Decimal(7))
    acct.settle("r-once", out(1))
    state = acct.balance("u-alice").limits[0]
    assert (state.spent, state.reserved) == (Decimal(1), 0)
