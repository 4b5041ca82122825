"""The situation of openwebui-token-tracking 0.1.10's own test suite, after ``init``.

0.1.10's ``test/`` folder (``test_tracking.py``, ``test_credit_groups.py`` and their
fixtures) runs against the database in ``DATABASE_URL``: a user upserted through
``db.User``, the credit group "test credit group" (2000 credits on top of the base
1000), the sponsored allowance "test sponsored allowance" of sponsor ``f12345`` on
``mistral-small-2409`` and ``claude-3-5-haiku-20241022`` (500 per user per window,
10000 in total), and the dated model ``gpt-4o-2024-08-06`` of ``openai``. Here that
situation is built on a fresh database prepared only by ``owui-token-tracking init``,
through the same 0.1.10 functions, and the suite's checks hold. ``mistral-small-2409``
is unknown to genai-prices, so, as in a 0.1.10 deployment, an admin prices it.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from openwebui_token_tracking import TokenTracker
from openwebui_token_tracking.cli import main
from openwebui_token_tracking.credit_groups import add_user, create_credit_group
from openwebui_token_tracking.db import User, init_db
from openwebui_token_tracking.errors import ModelNotCoveredError, UnknownModelError
from openwebui_token_tracking.model_pricing import upsert_model_pricing
from openwebui_token_tracking.sponsored import create_sponsored_allowance

BASE_ALLOWANCE = 1000
GROUP, GROUP_LIMIT = "test credit group", 2000
ALLOWANCE = "test sponsored allowance"
ALLOWANCE_MODELS = ["mistral-small-2409", "claude-3-5-haiku-20241022"]
ALLOWANCE_PER_USER, ALLOWANCE_TOTAL = 500, 10000
MODEL = {"id": "gpt-4o-2024-08-06", "provider": "openai"}
USER = {"id": "a80b7cc8-c8ab-48e2-ba74-f56086d83644", "name": "Test user",
        "email": "ai.integration@dartmouth.edu"}


@pytest.fixture
def database(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database after ``owui-token-tracking init``, as ``DATABASE_URL``."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["init"]) == 0
    return db_url


@pytest.fixture
def user(database: str) -> dict[str, str]:
    engine = init_db(os.environ["DATABASE_URL"])
    User.__table__.create(bind=engine, checkfirst=True)
    with Session(engine) as session:
        session.merge(User(**USER))
        session.commit()
    return USER


@pytest.fixture
def with_credit_group(user: dict[str, str]) -> None:
    create_credit_group(database_url=os.environ["DATABASE_URL"], credit_group_name=GROUP,
                        credit_allowance=GROUP_LIMIT,
                        description="Credit group for testing purposes.")
    add_user(credit_group_name=GROUP, user_id=user["id"])


@pytest.fixture
def with_sponsored_allowance(database: str) -> None:
    create_sponsored_allowance(database_url=os.environ["DATABASE_URL"], sponsor_id="f12345",
                               name=ALLOWANCE, models=ALLOWANCE_MODELS,
                               total_credit_limit=ALLOWANCE_TOTAL,
                               daily_credit_limit=ALLOWANCE_PER_USER)


@pytest.fixture
def tracker(database: str) -> TokenTracker:
    return TokenTracker(db_url=os.environ["DATABASE_URL"])


def test_max_credits(tracker, user, with_credit_group, with_sponsored_allowance):
    assert tracker.max_credits(user) == GROUP_LIMIT + BASE_ALLOWANCE
    assert tracker.max_credits(user, sponsored_allowance_name=ALLOWANCE) == ALLOWANCE_PER_USER


def test_remaining_credits(tracker, user, with_sponsored_allowance):
    own, sponsored_total = tracker.remaining_credits(user)
    assert own > 0 and sponsored_total is None
    assert tracker.remaining_credits(user, ALLOWANCE) == (ALLOWANCE_PER_USER, ALLOWANCE_TOTAL)


def test_log_token_usage_of_dated_models(tracker, user, with_sponsored_allowance):
    tracker.log_token_usage(model_id=MODEL["id"], provider=MODEL["provider"], user=user,
                            prompt_tokens=1, response_tokens=1)
    tracker.log_token_usage(model_id="claude-3-5-haiku-20241022", provider="anthropic",
                            user=user, prompt_tokens=10, response_tokens=10,
                            sponsored_allowance_name=ALLOWANCE)
    with pytest.raises(UnknownModelError, match="nearest priced ids: mistral-small-"):
        tracker.log_token_usage(model_id="mistral-small-2409", provider="mistral", user=user,
                                prompt_tokens=10, response_tokens=10,
                                sponsored_allowance_name=ALLOWANCE)
    upsert_model_pricing(os.environ["DATABASE_URL"], "mistral", "mistral-small-2409",
                         "Mistral Small (Cloud, Paid) 2024-09-01", 200, 1_000_000,
                         600, 1_000_000)
    tracker.log_token_usage(model_id="mistral-small-2409", provider="mistral", user=user,
                            prompt_tokens=10, response_tokens=10,
                            sponsored_allowance_name=ALLOWANCE)
    own, _ = tracker.remaining_credits(user)
    # 1 input token at 2,500 and 1 output token at 10,000 credits per 1M (gpt-4o's price)
    assert own == BASE_ALLOWANCE - Decimal("0.0125")
    per_user, total = tracker.remaining_credits(user, ALLOWANCE)
    spent = Decimal("0.048") + Decimal("0.008")  # haiku 800/4000 and mistral 200/600 per 1M
    assert (per_user, total) == (ALLOWANCE_PER_USER - spent, ALLOWANCE_TOTAL - spent)
    with pytest.raises(ModelNotCoveredError):  # the allowance pays for its models only
        tracker.log_token_usage(model_id=MODEL["id"], provider=MODEL["provider"], user=user,
                                prompt_tokens=10, response_tokens=10,
                                sponsored_allowance_name=ALLOWANCE)


def test_is_paid(tracker):
    assert tracker.is_paid(MODEL["id"])
    assert [m.id for m in tracker.get_models(id="claude-3-5-haiku-20241022")] == [
        "claude-3-5-haiku-20241022"]


def test_create_credit_group(database):
    assert create_credit_group(credit_group_name="test_credit_group", credit_allowance=0,
                               description="Delete me") is None
    with pytest.raises(KeyError):
        create_credit_group(credit_group_name="test_credit_group", credit_allowance=1000,
                            description="Delete me")


def test_add_user(user):
    create_credit_group(credit_group_name="test_credit_group", credit_allowance=0,
                        description="Delete me")
    assert add_user(user_id=user["id"], credit_group_name="test_credit_group") is None
    with pytest.raises(KeyError):
        add_user(credit_group_name="does not exist", user_id=user["id"])
