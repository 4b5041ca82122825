"""Concurrent clients at the limit, per-key budgets, workspace models, the model list."""

from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime

import httpx
import openai
import pytest
import sqlalchemy as sa
from gw_support import (
    ALICE_KEY,
    KEYS,
    add_workspace_model,
    jwt_for,
    ledger,
    messages,
    reservations,
)
from sqlalchemy.orm import Session

from openwebui_token_tracking import Accountant
from openwebui_token_tracking.storage import settings_store, sponsors
from openwebui_token_tracking.storage.key_budgets import key_id
from openwebui_token_tracking.storage.prices import PriceInput, set_price
from openwebui_token_tracking.storage.schema import BudgetCounter

NOW_PRICE = PriceInput(0, 1_000_000, 1, 1000)  # input free, 1 credit per 1000 output tokens


def _ten_credits_per_window(engine) -> None:
    from gw_support import EPOCH
    with Session(engine) as s, s.begin():
        settings_store.set_value(s, "base_credit_allowance", "10")
        set_price(s, provider="openai", model_id="gpt-4o-mini", name="GPT-4o mini",
                  price=NOW_PRICE, now=EPOCH, effective_from=EPOCH)


def test_eight_concurrent_clients_at_the_limit(gateway_url, gw_engine, upstream):
    """As tests/storage/test_concurrency.py: 10 credits, each request reserves 5 (5000
    output tokens), so exactly two are admitted however the eight race; the charge is
    what the provider reported (12 output tokens each), never more than the limit."""
    _ten_credits_per_window(gw_engine)
    upstream[0].script.first_delay = 0.5  # keep the admitted ones in flight
    barrier = threading.Barrier(8)
    results: list[int] = []

    def one() -> None:
        with httpx.Client(timeout=60) as c:
            barrier.wait(timeout=30)
            r = c.post(f"{gateway_url}/v1/chat/completions",
                       headers={"Authorization": f"Bearer {ALICE_KEY}"},
                       json={"model": "gpt-4o-mini", "messages": messages(),
                             "max_tokens": 5000, "stream": True})
            results.append(r.status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [200] * 2 + [429] * 6
    rows = ledger(gw_engine)
    assert len(rows) == 2 and all(r.status == "completed" for r in rows)
    charged = sum(r.charged_micro for r in rows)
    assert charged == 2 * 12 * 1000  # 12 output tokens at 1 credit per 1000
    assert charged <= 10 * 1_000_000
    assert reservations(gw_engine) == 0
    state = Accountant(gw_engine).balance("u-alice").limits[0]
    assert state.reserved == 0 and state.spent == Decimal("0.024")


def _keys(url: str, token: str) -> list[dict]:
    r = httpx.get(f"{url}/api/v1/keys", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def _set_budget(url: str, token: str, kid: str, limit: str) -> httpx.Response:
    return httpx.put(f"{url}/api/v1/keys/{kid}/budget", json={"limit": limit},
                     headers={"Authorization": f"Bearer {token}"})


def test_rate_limit_refusal_says_when_to_retry(gateway_url, gw_engine):
    """Requests per minute at the gateway: the second request of the minute is a 429
    rate-limit error with Retry-After at the next minute (clients wait and retry), not
    a credit refusal."""
    _ten_credits_per_window(gw_engine)
    with Session(gw_engine) as s, s.begin():
        settings_store.set_value(s, "requests_per_minute", "1")
    body = {"model": "gpt-4o-mini", "messages": messages(), "max_tokens": 10}
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {ALICE_KEY}"}) as c:
        assert c.post(f"{gateway_url}/v1/chat/completions", json=body).status_code == 200
        refused = c.post(f"{gateway_url}/v1/chat/completions", json=body)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["code"], error["reason"]) == ("rate_limit_exceeded", "rate_limit_requests")
    assert "too much too fast" in error["message"]
    retry_at = parsedate_to_datetime(refused.headers["retry-after"])
    assert retry_at == datetime.fromisoformat(error["reset_at"])
    assert retry_at.second == 0 and "x-should-retry" not in refused.headers


def test_per_key_budget_caps_a_key_below_its_owner(oai, gateway_url, gw_engine):
    kid = key_id(ALICE_KEY)
    [mine] = _keys(gateway_url, ALICE_KEY)
    assert mine["key_id"] == kid and mine["current"] and mine["limit"] is None
    assert ALICE_KEY not in str(mine)
    # the owner may set a budget, then only lower it; an admin may raise it
    assert _set_budget(gateway_url, ALICE_KEY, kid, "1").status_code == 200
    r = _set_budget(gateway_url, ALICE_KEY, kid, "5")
    assert r.status_code == 422 and "only lower" in r.json()["detail"]
    assert _set_budget(gateway_url, jwt_for("u-bob"), kid, "0.5").status_code == 403
    assert _set_budget(gateway_url, "static-admin", kid, "5").status_code == 200
    assert _set_budget(gateway_url, ALICE_KEY, kid, "0.000001").status_code == 200
    # the capped key is refused; the owner's session token still works
    with pytest.raises(openai.RateLimitError) as info:
        oai().chat.completions.create(model="gpt-4o-mini", messages=messages())
    assert "this API key's budget is used up" in info.value.body["message"]
    assert info.value.body["reason"] == "api_key_limit"
    oai(jwt_for("u-alice")).chat.completions.create(model="gpt-4o-mini", messages=messages())
    assert _set_budget(gateway_url, "static-admin", kid, "5").status_code == 200
    oai().chat.completions.create(model="gpt-4o-mini", messages=messages())
    rows = ledger(gw_engine)
    assert [r.api_key_id for r in rows] == [None, kid]
    [mine] = _keys(gateway_url, ALICE_KEY)
    assert mine["requests"] == 1 and Decimal(mine["spent"]) == Decimal(rows[1].charged_micro) \
        / 1_000_000
    assert Decimal(mine["remaining"]) == Decimal(5) - Decimal(mine["spent"])
    with Session(gw_engine) as s:  # the key's counter was reserved and settled
        counter = s.scalar(sa.select(BudgetCounter).where(BudgetCounter.scope == "api_key"))
        assert counter.spent_micro == rows[1].charged_micro and counter.reserved_micro == 0
    # the personal page shows the key and its spend, never the key itself
    page = httpx.get(f"{gateway_url}/me", headers={"Authorization": f"Bearer {ALICE_KEY}"})
    assert kid in page.text and "(current)" in page.text and ALICE_KEY not in page.text
    # only an admin removes a budget
    r = httpx.delete(f"{gateway_url}/api/v1/keys/{kid}/budget",
                     headers={"Authorization": f"Bearer {ALICE_KEY}"})
    assert r.status_code == 403
    r = httpx.delete(f"{gateway_url}/api/v1/keys/{kid}/budget",
                     headers={"Authorization": "Bearer static-admin"})
    assert r.status_code == 204
    assert _keys(gateway_url, ALICE_KEY)[0]["limit"] is None
    everyone = _keys(gateway_url, "static-admin")
    assert {k["user_id"] for k in everyone} == set(KEYS)


def _allowance(engine, name: str, sponsor: str, models: list[str]) -> None:
    from datetime import UTC, datetime
    with Session(engine) as s, s.begin():
        sponsors.create_allowance(s, name=name, sponsor_id=sponsor, models=models,
                                  total_credit_limit=100, daily_credit_limit=None,
                                  now=datetime(2026, 1, 1, tzinfo=UTC))


def test_models_lists_priced_and_usable_workspace_models(oai, gw_engine):
    _allowance(gw_engine, "Course", "u-bob", ["gpt-4o-mini"])
    add_workspace_model(gw_engine, "course-gpt", "u-admin", "tt_openai.gpt-4o-mini",
                        "Course", public=True)
    add_workspace_model(gw_engine, "bobs-gpt", "u-bob", "gpt-4o-mini", "Course")  # sponsor
    add_workspace_model(gw_engine, "forged", "u-alice", "gpt-4o-mini", "Course", public=True)
    add_workspace_model(gw_engine, "plain", "u-admin", "gpt-4o-mini", None, public=True)
    add_workspace_model(gw_engine, "uncovered", "u-admin", "claude-sonnet-4", "Course",
                        public=True)
    alice = [m.id for m in oai().models.list()]
    assert alice == ["course-gpt", "claude-sonnet-4", "gemini-2.5-flash", "gpt-4o-mini",
                     "llama-free", "mistral-small-latest"]
    bob = [m.id for m in oai(KEYS["u-bob"]).models.list()]
    assert "bobs-gpt" in bob and "course-gpt" in bob and "forged" not in bob
    admin = [m.id for m in oai(KEYS["u-admin"]).models.list()]
    assert "bobs-gpt" in admin and "unserved-model" not in admin
    # the allowance pays for its workspace model; a forged binding is refused
    oai().chat.completions.create(model="course-gpt", messages=messages())
    [row] = ledger(gw_engine)
    assert row.model_id == "gpt-4o-mini" and row.sponsored_allowance_id is not None
    with pytest.raises(openai.PermissionDeniedError):
        oai().chat.completions.create(model="bobs-gpt", messages=messages())
    with pytest.raises(openai.BadRequestError, match="only a model created by an admin"):
        oai().chat.completions.create(model="forged", messages=messages())
    assert len(ledger(gw_engine)) == 1
