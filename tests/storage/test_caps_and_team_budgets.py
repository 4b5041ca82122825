"""Spend caps per model/provider and team budgets per credit group (SQLite, PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from db_support import create_openwebui_groups
from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import (
    GroupBudgetExceededError,
    InvalidInputError,
    NotFoundError,
    SpendCapExceededError,
)
from openwebui_token_tracking.storage import (
    caps,
    group_limits,
    group_links,
    groups,
    ledger,
    prices,
    refusals,
    settings_store,
    sponsors,
)
from openwebui_token_tracking.storage.prices import PriceInput

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PER_1K_OUT = PriceInput(0, 1, 1000, 1_000_000)  # 1 credit per 1000 output tokens


@pytest.fixture
def acct(engine):
    a = Accountant(engine, clock=lambda: NOW)

    def setup(s):
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", "20")
        for provider, model in (("openai", "o1"), ("openai", "gpt"), ("azure", "o1"),
                                ("anthropic", "claude")):
            prices.set_price(s, provider=provider, model_id=model, name=None,
                             price=PER_1K_OUT, now=NOW - timedelta(days=1))
        prices.set_price(s, provider="openai", model_id="free", name=None,
                         price=PriceInput(0, 1, 0, 1), now=NOW - timedelta(days=1))
    a.run(setup)
    return a


def credits(n: float) -> Usage:
    return Usage(output_tokens=int(n * 1000))


def admit(acct, model="o1", n=1.0, user="u-alice", provider="openai", **kw):
    return acct.admit(user_id=user, provider=provider, model_id=model, estimate=credits(n),
                      **kw)


def spend(acct, model="o1", n=1.0, user="u-alice", provider="openai"):
    adm = admit(acct, model, n, user, provider)
    acct.settle(adm.reservation_id, credits(n), price=adm.price)


def cap_states(acct, user="u-alice"):
    return {(s.scope, s.target): s for s in acct.balance(user).limits
            if s.scope in ("model_cap", "provider_cap")}


def test_base_model_cap_refuses_over_the_cap_and_only_that_model(acct):
    acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=3))
    spend(acct, "o1", 2)
    with pytest.raises(SpendCapExceededError) as caught:
        admit(acct, "o1", 1.5)
    exc = caught.value
    assert (exc.reason, exc.remaining, exc.limit) == ("model_cap", Decimal(1), Decimal(3))
    assert "spend cap on model 'o1' reached" in str(exc)
    assert exc.reset_at == datetime(2026, 11, 29, tzinfo=UTC)
    admit(acct, "o1", 1, provider="azure")  # a model cap matches the id under any provider
    spend(acct, "gpt", 10)  # other models are not capped
    state = cap_states(acct)[("model_cap", "o1")]
    assert (state.limit, state.spent, state.reserved, state.remaining) == \
        (Decimal(3), Decimal(2), Decimal(1), Decimal(0))
    report = acct.balance("u-alice")
    assert report.remaining == Decimal(20 - 12 - 1)  # a cap does not bind other models
    totals = {(t.reason, t.model_id): t.count for t in acct.run(refusals.refusal_totals)}
    assert totals == {("model_cap", "o1"): 1}


def test_provider_cap(acct):
    acct.run(lambda s: caps.set_cap(s, kind="provider", target="anthropic", credit_limit=2))
    spend(acct, "claude", 2, provider="anthropic")
    with pytest.raises(SpendCapExceededError, match="spend cap on provider 'anthropic'"):
        admit(acct, "claude", 0.5, provider="anthropic")
    spend(acct, "o1", 2)


def test_group_cap_replaces_the_base_cap_and_the_largest_group_cap_wins(acct):
    def setup(s):
        caps.set_cap(s, kind="model", target="o1", credit_limit=5)
        groups.create_group(s, "Lab", 0)
        groups.create_group(s, "Course", 0)
        groups.add_member(s, "Lab", "u-alice")
        groups.add_member(s, "Course", "u-alice")
        groups.add_member(s, "Course", "u-bob")
        caps.set_cap(s, kind="model", target="o1", credit_limit=2, group="Course")
    acct.run(setup)
    # bob: Course's 2 replaces the base 5 (lower); alice: Course 2 only, so 2
    assert cap_states(acct, "u-bob")[("model_cap", "o1")].limit == 2
    assert cap_states(acct, "u-alice")[("model_cap", "o1")].limit == 2
    acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=8, group="Lab"))
    assert cap_states(acct, "u-alice")[("model_cap", "o1")].limit == 8  # largest group cap
    assert cap_states(acct, "u-admin")[("model_cap", "o1")].limit == 5  # the base cap
    spend(acct, "o1", 2, user="u-bob")
    with pytest.raises(SpendCapExceededError):
        admit(acct, "o1", 0.1, user="u-bob")
    spend(acct, "o1", 7)
    assert [(c.group, c.kind, c.target, c.credit_limit) for c in acct.run(caps.list_caps)] \
        == [(None, "model", "o1", 5), ("Course", "model", "o1", 2), ("Lab", "model", "o1", 8)]


def test_a_cap_created_mid_window_counts_what_was_already_spent(acct):
    spend(acct, "o1", 4)
    acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=5))
    assert cap_states(acct)[("model_cap", "o1")].spent == 4  # from the ledger
    with pytest.raises(SpendCapExceededError):
        admit(acct, "o1", 2)
    spend(acct, "o1", 1)
    assert cap_states(acct)[("model_cap", "o1")].remaining == 0


def test_caps_bound_only_the_own_allowance(acct):
    def setup(s):
        caps.set_cap(s, kind="model", target="o1", credit_limit=1)
        caps.set_cap(s, kind="model", target="free", credit_limit=0)
        sponsors.create_allowance(s, name="lab", sponsor_id="u-admin", models=["o1"],
                                  total_credit_limit=100, daily_credit_limit=None,
                                  now=NOW - timedelta(days=1))
    acct.run(setup)
    adm = admit(acct, "o1", 5, allowance_name="lab")
    acct.settle(adm.reservation_id, credits(5))
    admit(acct, "free", 5)  # free models are exempt
    assert cap_states(acct)[("model_cap", "o1")].spent == 0


def test_unreserved_charges_and_expired_reservations_count_in_caps(acct):
    acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=10))
    acct.record(user_id="u-alice", provider="openai", model_id="o1", usage=credits(3))
    adm = admit(acct, "o1", 2)
    later = NOW + timedelta(hours=2)  # past the reservation's lifetime
    assert acct.run(lambda s: ledger.settle_expired(s, later)) == 1
    state = cap_states(acct)[("model_cap", "o1")]
    assert (state.spent, state.reserved) == (Decimal(5), 0)
    assert adm.reservation_id
    adm = admit(acct, "o1", 1)
    assert acct.release(adm.reservation_id)
    assert cap_states(acct)[("model_cap", "o1")].reserved == 0


def test_cap_validation_and_removal(acct):
    with pytest.raises(InvalidInputError, match="a model or a provider"):
        acct.run(lambda s: caps.set_cap(s, kind="region", target="eu", credit_limit=1))
    with pytest.raises(InvalidInputError, match="whole number"):
        acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=1.5))
    with pytest.raises(InvalidInputError, match="from 0 to 10"):
        acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=-1))
    with pytest.raises(InvalidInputError, match="model id or provider"):
        acct.run(lambda s: caps.set_cap(s, kind="model", target=" ", credit_limit=1))
    with pytest.raises(NotFoundError, match="credit group"):
        acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=1,
                                        group="nope"))
    acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=1))
    acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=4))  # update
    assert [c.credit_limit for c in acct.run(caps.list_caps)] == [4]
    acct.run(lambda s: caps.remove_cap(s, kind="model", target="o1"))
    with pytest.raises(NotFoundError, match="the base allowance has no cap on model 'o1'"):
        acct.run(lambda s: caps.remove_cap(s, kind="model", target="o1"))
    acct.run(lambda s: groups.create_group(s, "Lab", 0))
    acct.run(lambda s: caps.set_cap(s, kind="model", target="o1", credit_limit=1,
                                    group="Lab"))
    acct.run(lambda s: groups.delete_group(s, "Lab"))  # its caps go with it
    assert acct.run(caps.list_caps) == []


# -- team budgets -----------------------------------------------------------------------

@pytest.fixture
def team(acct):
    def setup(s):
        groups.create_group(s, "Team", 10)
        groups.add_member(s, "Team", "u-alice")
        groups.add_member(s, "Team", "u-bob")
    acct.run(setup)
    return acct


def test_team_budget_counts_all_members_together(team):
    spend(team, "gpt", 6)  # before the budget exists: counted from the ledger
    team.run(lambda s: group_limits.set_group_limits(s, "Team", total_credit_limit=10))
    spend(team, "gpt", 3, user="u-bob")
    with pytest.raises(GroupBudgetExceededError) as caught:
        admit(team, "gpt", 2, user="u-bob")
    assert caught.value.reason == "group_budget"
    assert "team budget of credit group 'Team' reached" in str(caught.value)
    assert caught.value.remaining == 1
    spend(team, "gpt", 5, user="u-admin")  # not a member
    total = next(s for s in team.balance("u-alice").limits if s.scope == "group_total")
    assert (total.target, total.limit, total.spent) == ("Team", 10, 9)
    assert team.balance("u-alice").remaining == 1  # the team budget binds
    team.run(lambda s: group_limits.set_group_limits(s, "Team", total_credit_limit=None))
    admit(team, "gpt", 2, user="u-bob")


def test_team_budget_of_a_linked_group_counts_openwebui_members(engine, acct):
    create_openwebui_groups(engine, {"staff": None, "research": "staff"},
                            {"staff": ["u-alice"], "research": ["u-bob"]})
    spend(acct, "gpt", 4, user="u-bob")  # before the link: counted from the ledger

    def setup(s):
        groups.create_group(s, "Staff", 0)
        group_links.link_group(s, "Staff", "staff")
        group_limits.set_group_limits(s, "Staff", total_credit_limit=6)
    acct.run(setup)
    with pytest.raises(GroupBudgetExceededError):
        admit(acct, "gpt", 3)
    spend(acct, "gpt", 2)


def test_group_limit_validation(team):
    with pytest.raises(InvalidInputError, match="at least one"):
        team.run(lambda s: group_limits.set_group_limits(s, "Team"))
    with pytest.raises(InvalidInputError, match="from 1 to 10"):
        team.run(lambda s: group_limits.set_group_limits(s, "Team", requests_per_minute=0))
    with pytest.raises(InvalidInputError, match="total budget must be from 0"):
        team.run(lambda s: group_limits.set_group_limits(s, "Team", total_credit_limit=-3))
    g = team.run(lambda s: group_limits.set_group_limits(
        s, "Team", requests_per_minute=5, tokens_per_minute=900))
    assert (g.requests_per_minute, g.tokens_per_minute, g.total_credit_limit) == (5, 900, None)


def test_the_price_and_a_capped_keys_cap_come_with_the_users_terms(acct, engine):
    import sqlalchemy as sa

    from openwebui_token_tracking.errors import TokenLimitExceededError
    from openwebui_token_tracking.storage import key_budgets
    kid = key_budgets.key_id("sk-test-key")
    acct.run(lambda s: key_budgets.set_budget(s, api_key_id=kid, owner_id="u-alice",
                                              limit_micro=1_500_000, by="admin",
                                              by_admin=True, now=NOW))
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda _c, _cur, sql, *_: statements.append(sql))
    admit(acct, "gpt", 1.0, api_key_id=kid)
    # No statement of its own for the key's cap or the price: both come with the
    # user's terms, in one read.
    [read] = [s for s in statements if "token_tracking_price_history" in s]
    assert "token_tracking_key_budget" in read and "token_tracking_credit_group" in read
    assert sum("token_tracking_key_budget" in s for s in statements) == 1
    with pytest.raises(TokenLimitExceededError) as refused:
        admit(acct, "gpt", 1.0, api_key_id=kid)  # 1 + 1 > 1.5 credits on this key
    assert refusals.reason_of(refused.value) == "api_key_limit"
    admit(acct, "gpt", 1.0)  # the owner without that key is still under 20 credits
