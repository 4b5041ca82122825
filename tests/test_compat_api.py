"""0.1.10's public Python API: signatures, return shapes, and its defects fixed."""

import inspect
from decimal import Decimal

import pytest
import sqlalchemy as sa

from openwebui_token_tracking import TokenTracker, credit_groups, model_pricing, sponsored
from openwebui_token_tracking import settings as tt_settings
from openwebui_token_tracking import user as tt_user
from openwebui_token_tracking.db import TokenUsageLog, init_db, migrate_database
from openwebui_token_tracking.errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    UnknownModelError,
    UnknownUserError,
)
from openwebui_token_tracking.models import ModelPricingSchema
from openwebui_token_tracking.storage import engine as engine_module
from openwebui_token_tracking.tracking import (
    DailyTokenLimitExceededError,
    TokenLimitExceededError,
    TotalTokenLimitExceededError,
)

ALICE = {"id": "u-alice", "name": "Alice", "email": "alice@example.edu"}
GPT = ModelPricingSchema(provider="openai", id="gpt-4o", name="GPT-4o",
                         input_cost_credits=3750, per_input_tokens=1_000_000,
                         output_cost_credits=15000, per_output_tokens=1_000_000)
FREE = ModelPricingSchema(provider="ollama", id="llama", name="Llama", input_cost_credits=0,
                          per_input_tokens=1, output_cost_credits=0, per_output_tokens=1)


@pytest.fixture
def url(engine):
    u = engine.url.render_as_string(hide_password=False)
    tt_settings.init_base_settings(u)
    model_pricing.add_model_pricing(u, [GPT, FREE])
    return u


def test_signatures_match_0_1_10():
    def params(fn):
        return list(inspect.signature(fn).parameters)
    assert params(TokenTracker.get_models)[:3] == ["self", "provider", "id"]
    assert params(TokenTracker.max_credits)[:4] == [
        "self", "user", "sponsored_allowance_name", "sponsored_allowance_id"]
    assert params(TokenTracker.log_token_usage)[:7] == [
        "self", "provider", "model_id", "user", "prompt_tokens", "response_tokens",
        "sponsored_allowance_name"]
    assert params(credit_groups.create_credit_group) == [
        "credit_group_name", "credit_allowance", "description", "database_url"]
    assert params(sponsored.create_sponsored_allowance)[:6] == [
        "database_url", "sponsor_id", "name", "models", "total_credit_limit",
        "daily_credit_limit"]
    assert params(model_pricing.upsert_model_pricing)[:8] == [
        "database_url", "provider", "model_id", "name", "input_cost_credits",
        "per_input_tokens", "output_cost_credits", "per_output_tokens"]
    assert issubclass(DailyTokenLimitExceededError, TokenLimitExceededError)
    assert issubclass(TotalTokenLimitExceededError, TokenLimitExceededError)


def test_token_tracker_charges_exactly_and_limits(url):
    tracker = TokenTracker(url)
    assert [m.id for m in tracker.get_models(provider="openai")] == ["gpt-4o"]
    assert tracker.is_paid("gpt-4o") and not tracker.is_paid("llama")
    with pytest.raises(UnknownModelError):
        tracker.is_paid("nope")
    assert tracker.max_credits(ALICE) == Decimal(1000)
    for _ in range(3):  # 0.3 + 0.3 credits each: never truncated to 0
        tracker.log_token_usage("openai", "gpt-4o", ALICE, prompt_tokens=80,
                                response_tokens=20)
    remaining, sponsored_left = tracker.remaining_credits(ALICE)
    assert remaining == Decimal("998.2")
    assert sponsored_left is None


def test_log_token_usage_splits_cached_and_reasoning(url):
    tracker = TokenTracker(url)
    tracker.log_token_usage("openai", "gpt-4o", ALICE, prompt_tokens=1000, response_tokens=500,
                            cached_input_tokens=800, reasoning_tokens=300, chat_id="c",
                            message_id="m")
    with init_db(url).connect() as conn:
        row = conn.execute(sa.select(TokenUsageLog.__table__)).one()
    assert (row.input_tokens, row.cached_input_tokens, row.output_tokens,
            row.reasoning_tokens) == (200, 800, 200, 300)
    with pytest.raises(InvalidInputError):
        tracker.log_token_usage("openai", "gpt-4o", ALICE, 10, 10, cached_input_tokens=11)


def test_credit_groups_round_trip(url):
    credit_groups.create_credit_group("Staff", 200, "Staff members", database_url=url)
    with pytest.raises(AlreadyExistsError):
        credit_groups.create_credit_group("staff", 10, "dup", database_url=url)
    with pytest.raises(KeyError):  # 0.1.10 raised KeyError; ours is a NotFoundError
        credit_groups.get_credit_group("nope", database_url=url)
    with pytest.raises(InvalidInputError):
        credit_groups.create_credit_group("Neg", -5, "", database_url=url)
    credit_groups.add_user("u-alice", "Staff", database_url=url)
    with pytest.raises(UnknownUserError):
        credit_groups.add_user("ghost", "Staff", database_url=url)
    assert credit_groups.get_credit_group("Staff", database_url=url)["max_credit"] == 200
    [listed] = credit_groups.list_credit_groups(database_url=url)
    assert (listed["name"], listed["user_count"]) == ("Staff", 1)
    [member] = credit_groups.list_users("Staff", database_url=url)
    assert member["id"] == "u-alice" and member["credit_groups"][0]["name"] == "Staff"
    assert TokenTracker(url).max_credits(ALICE) == Decimal(1200)
    assert credit_groups.upsert_credit_group("Staff", 300, "More", database_url=url) is False
    with pytest.raises(ValueError):  # has members
        credit_groups.delete_credit_group("Staff", database_url=url)
    credit_groups.delete_credit_group("Staff", database_url=url, force=True)
    assert credit_groups.list_credit_groups(database_url=url) == []


def test_sponsored_allowance_round_trip_and_limits(url):
    sponsored.create_sponsored_allowance(url, "dean", "lab", ["gpt-4o"], 10, 4)
    got = sponsored.get_sponsored_allowance(url, name="lab")
    assert (got["total_credit_limit"], got["daily_credit_limit"]) == (10, 4)
    assert got["base_models"] == ["gpt-4o"]
    assert got["base_models"][0].base_model_id == "gpt-4o"
    with pytest.raises(AlreadyExistsError):
        sponsored.create_sponsored_allowance(url, "dean", "lab", ["gpt-4o"], 10, 4)
    with pytest.raises(InvalidInputError):
        sponsored.create_sponsored_allowance(url, "dean", "bad", ["gpt-4o"], -1, 4)
    tracker = TokenTracker(url)
    assert tracker.max_credits(ALICE, sponsored_allowance_name="lab") == Decimal(4)
    tracker.log_token_usage("openai", "gpt-4o", ALICE, 0, 200, sponsored_allowance_name="lab")
    assert tracker.remaining_credits(ALICE, sponsored_allowance_name="lab") == \
        (Decimal(1), Decimal(7))
    assert tracker.remaining_credits(ALICE)[0] == Decimal(1000)  # not the user's allowance
    sponsored.update_sponsored_allowance(url, name="lab", total_credit_limit=20)
    assert sponsored.get_sponsored_allowances(url)[0]["total_credit_limit"] == 20
    with pytest.raises(ValueError):  # 0.1.10 raised ValueError for a missing allowance here
        sponsored.delete_sponsored_allowance(url, name="nope")
    sponsored.delete_sponsored_allowance(url, name="lab")
    with pytest.raises(NotFoundError):
        sponsored.get_sponsored_allowance(url, name="lab")


def test_model_pricing_functions(url):
    assert model_pricing.get_model_pricing(url, model_id="gpt-4o")[0]["output_cost_credits"] \
        == 15000
    assert model_pricing.update_model_pricing(url, "gpt-4o", "openai",
                                              {"output_cost_credits": 16000})
    assert not model_pricing.update_model_pricing(url, "gpt-4o", "azure", {"name": "x"})
    assert model_pricing.upsert_model_pricing(url, "azure", "gpt-4o", "GPT-4o (Azure)",
                                              1, 1000, 2, 1000)
    # delete honours the provider (0.1.10 deleted every provider's model of that id)
    assert model_pricing.delete_model_pricing(url, "gpt-4o", provider="azure")
    assert [m["provider"] for m in model_pricing.list_model_pricing(url)] == ["ollama", "openai"]
    with pytest.raises(AlreadyExistsError):
        model_pricing.add_model_pricing(url, [FREE])


def test_find_user_and_settings_never_overwritten(url):
    found = tt_user.find_user(url, email="alice@example.edu")
    assert found is not None and found.id == "u-alice"
    assert tt_user.find_user(url) is None
    assert tt_user.serialize_user(found, url)["credit_groups"] == []
    tt_settings.init_base_settings(url, [{"setting_key": "base_credit_allowance",
                                          "setting_value": "25"}])
    tt_settings.init_base_settings(url)  # defaults must not reset the admin's value
    assert TokenTracker(url).max_credits(ALICE) == Decimal(25)
    with pytest.raises(InvalidInputError):
        tt_settings.init_base_settings(url, [{"setting_key": "base_credit_allowance",
                                              "setting_value": "lots"}])


def test_one_engine_per_url_however_often_called(url):
    engine_module.dispose_engines()
    for _ in range(5):
        init_db(url)
        TokenTracker(url).remaining_credits(ALICE)
        credit_groups.list_credit_groups(database_url=url)
        sponsored.get_sponsored_allowances(url)
        migrate_database(url)
    assert len(engine_module._engines) == 1
    assert init_db(url) is TokenTracker(url).db_engine


def test_database_url_falls_back_to_environment(url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", url)
    credit_groups.create_credit_group("EnvGroup", 5, "via DATABASE_URL")
    assert credit_groups.get_credit_group("EnvGroup", database_url=url)["max_credit"] == 5


def test_group_names_are_unique_ignoring_unicode_case(url):
    credit_groups.create_credit_group("École", 5, "", database_url=url)
    with pytest.raises(AlreadyExistsError):
        credit_groups.create_credit_group("ÉCOLE", 5, "", database_url=url)
    assert credit_groups.get_credit_group("école", database_url=url)["name"] == "École"


def test_a_value_the_database_refuses_is_an_input_error(url):
    """PostgreSQL refuses NUL bytes in text; SQLite stores them. Neither is a crash."""
    try:
        credit_groups.create_credit_group("nul\x00name", 5, "", database_url=url)
    except InvalidInputError as exc:
        assert "refused a value" in str(exc)
    else:
        assert credit_groups.get_credit_group("nul\x00name", database_url=url)["max_credit"] == 5


def test_a_failing_call_writes_nothing(url):
    new = GPT.model_copy(update={"id": "gpt-5", "name": "GPT-5"})
    with pytest.raises(AlreadyExistsError):
        model_pricing.add_model_pricing(url, [new, FREE])  # the second is a duplicate
    assert model_pricing.get_model_pricing(url, model_id="gpt-5") == []
    with pytest.raises(InvalidInputError):
        sponsored.create_sponsored_allowance(url, "dean", "lab", [], 10, 4)  # no models
    assert sponsored.get_sponsored_allowances(url) == []
