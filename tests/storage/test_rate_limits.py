"""Requests and tokens per minute, enforced at admission (SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import InvalidInputError, RateLimitExceededError
from openwebui_token_tracking.storage import (
    group_limits,
    groups,
    prices,
    refusals,
    settings_store,
    sponsors,
)
from openwebui_token_tracking.storage.prices import PriceInput
from openwebui_token_tracking.storage.schema import RateCounter

NOW = datetime(2026, 11, 28, 12, 0, 20, tzinfo=UTC)
NEXT_MINUTE = datetime(2026, 11, 28, 12, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def acct(engine, clock):
    a = Accountant(engine, clock=clock)

    def setup(s):
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", "1000")
        prices.set_price(s, provider="openai", model_id="gpt", name="GPT",
                         price=PriceInput(1, 1000, 1, 1000), now=NOW - timedelta(days=1))
        prices.set_price(s, provider="openai", model_id="free", name=None,
                         price=PriceInput(0, 1, 0, 1), now=NOW - timedelta(days=1))
    a.run(setup)
    return a


def setting(acct, key, value):
    acct.run(lambda s: settings_store.set_value(s, key, value))


def admit(acct, tokens=100, user="u-alice", model="gpt", **kw):
    return acct.admit(user_id=user, provider="openai", model_id=model,
                      estimate=Usage(input_tokens=tokens // 2, output_tokens=tokens - tokens // 2),
                      **kw)


def test_requests_per_minute_refuse_with_the_retry_instant_then_roll_over(acct, clock):
    setting(acct, "requests_per_minute", "2")
    admit(acct)
    admit(acct)
    with pytest.raises(RateLimitExceededError) as caught:
        admit(acct)
    exc = caught.value
    assert (exc.reason, exc.reset_at, exc.rate_limit, exc.rate_used) == \
        ("rate_limit_requests", NEXT_MINUTE, 2, 2)
    assert str(exc) == "rate limit reached: 2 of 2 requests this minute"
    admit(acct, user="u-bob")  # per user
    clock.now = NEXT_MINUTE + timedelta(seconds=5)
    admit(acct)
    rate = acct.balance("u-alice").rate
    assert rate is not None
    assert (rate.requests_per_minute, rate.tokens_per_minute, rate.requests, rate.reset_at) == \
        (2, None, 1, NEXT_MINUTE + timedelta(minutes=1))
    totals = {t.reason: t.count for t in acct.run(refusals.refusal_totals)}
    assert totals == {"rate_limit_requests": 1}
    # one row per user, whatever the number of minutes
    assert acct.run(lambda s: s.scalar(sa.select(sa.func.count()).select_from(RateCounter))) == 2


def test_tokens_per_minute_reserve_the_estimate_and_settle_to_actual(acct):
    setting(acct, "tokens_per_minute", "1000")
    a = admit(acct, 600)
    with pytest.raises(RateLimitExceededError) as caught:
        admit(acct, 500)
    assert caught.value.reason == "rate_limit_tokens"
    assert str(caught.value) == ("rate limit reached: 600 of 1000 tokens this minute, "
                                 "this request needs about 500")
    acct.settle(a.reservation_id, Usage(input_tokens=100, output_tokens=200))
    assert acct.balance("u-alice").rate.tokens == 300
    b = admit(acct, 500)
    acct.release(b.reservation_id)  # used nothing: its tokens are given back
    assert acct.balance("u-alice").rate.tokens == 300
    admit(acct, 700)
    with pytest.raises(RateLimitExceededError) as caught:
        admit(acct, 1)
    with pytest.raises(RateLimitExceededError, match="more than the limit of 1000 tokens"):
        admit(acct, 1001, user="u-bob")


def test_a_settlement_after_the_minute_changes_nothing(acct, clock):
    setting(acct, "tokens_per_minute", "1000")
    a = admit(acct, 900)
    clock.now = NEXT_MINUTE
    admit(acct, 900)
    acct.settle(a.reservation_id, Usage(output_tokens=5000))  # the old minute is gone
    assert acct.balance("u-alice").rate.tokens == 900


def test_group_overrides_take_the_most_generous(acct):
    setting(acct, "requests_per_minute", "1")

    def setup(s):
        for name, rpm in (("Slow", 2), ("Fast", 3)):
            groups.create_group(s, name, 0)
            group_limits.set_group_limits(s, name, requests_per_minute=rpm)
        groups.add_member(s, "Slow", "u-bob")
        groups.add_member(s, "Slow", "u-alice")
        groups.add_member(s, "Fast", "u-alice")
    acct.run(setup)
    for user, allowed in (("u-alice", 3), ("u-bob", 2), ("u-admin", 1)):
        for _ in range(allowed):
            admit(acct, user=user)
        with pytest.raises(RateLimitExceededError):
            admit(acct, user=user)


def test_a_group_override_applies_when_the_default_is_off(acct):
    def setup(s):
        groups.create_group(s, "Trial", 0)
        group_limits.set_group_limits(s, "Trial", tokens_per_minute=100)
        groups.add_member(s, "Trial", "u-bob")
    acct.run(setup)
    admit(acct, 5000)  # alice: no limit
    assert acct.balance("u-alice").rate is None
    with pytest.raises(RateLimitExceededError):
        admit(acct, 101, user="u-bob")


def test_background_tasks_free_models_and_sponsored_requests_are_exempt(acct):
    setting(acct, "requests_per_minute", "1")
    acct.run(lambda s: sponsors.create_allowance(
        s, name="lab", sponsor_id="u-admin", models=["gpt"], total_credit_limit=100,
        daily_credit_limit=None, now=NOW - timedelta(days=1)))
    for _ in range(3):
        admit(acct, enforce=False, task="title_generation")
        admit(acct, model="free")
        admit(acct, allowance_name="lab")
    admit(acct)
    with pytest.raises(RateLimitExceededError):
        admit(acct)


def test_unreserved_charges_count_their_tokens(acct):
    setting(acct, "tokens_per_minute", "1000")
    acct.record(user_id="u-alice", provider="openai", model_id="gpt",
                usage=Usage(input_tokens=400, output_tokens=400))
    with pytest.raises(RateLimitExceededError):
        admit(acct, 300)
    admit(acct, 200)


def test_rate_settings_are_validated(acct):
    for bad in ("-1", "1.5", "lots", "²"):
        with pytest.raises(InvalidInputError, match="tokens_per_minute must be a whole"):
            setting(acct, "tokens_per_minute", bad)
    setting(acct, "requests_per_minute", "007")
    assert acct.run(lambda s: settings_store.get_setting(s, "requests_per_minute")) == "7"
