"""The credit balance action and the filter for native connections."""

from __future__ import annotations

import asyncio
import time

import pytest
from fakes import ALICE, EPOCH, ledger, messages, reservations, set_setting
from sqlalchemy.orm import Session

from openwebui_token_tracking.accountant import Accountant
from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.actions.credit_balance import CreditBalance
from openwebui_token_tracking.errors import DailyTokenLimitExceededError
from openwebui_token_tracking.filters.usage_filter import Filter, UsageFilter
from openwebui_token_tracking.storage.sponsors import create_allowance

pytestmark = pytest.mark.anyio


def spend(engine, output_tokens: int) -> None:
    """Charge Alice for output tokens of gpt-4o-mini (4000 credits per 1M)."""
    Accountant(engine).record(user_id="u-alice", provider="openai", model_id="gpt-4o-mini",
                              usage=Usage(output_tokens=output_tokens))


async def run_action(action, **kw):
    events = []

    async def emit(event):
        events.append(event)

    body = {"model": "tt.gpt-4o-mini", "messages": messages()}
    out = await action.action(body, __user__=ALICE, __event_emitter__=emit, **kw)
    assert out is body
    return events


async def test_action_shows_remaining_window_credits_and_reset_in_user_zone(priced, db_url):
    set_setting(priced, "base_credit_allowance", "10")
    spend(priced, 625)  # 625 x 4000 / 1M = 2.5 credits
    action = CreditBalance()
    action.valves = action.Valves(DATABASE_URL=db_url)
    events = await run_action(action)
    assert events[0]["data"] == {"description": "Getting credit balance...", "done": False}
    final = events[-1]["data"]
    assert final["done"] is True
    assert final["description"].startswith("Your credits: 7.50 of 10.00 credits left, "
                                           "resets ")
    assert "(Europe/Berlin)" in final["description"]


async def test_action_adds_the_sponsored_allowance_of_a_workspace_model(priced, db_url):
    with Session(priced, expire_on_commit=False) as s, s.begin():
        grant = create_allowance(s, name="Physics 101", sponsor_id="u-bob",
                                 models=["gpt-4o-mini"], total_credit_limit=50,
                                 daily_credit_limit=5, now=EPOCH)
    model = {"id": "physics", "info": {"id": "physics", "user_id": "u-admin",
                                       "base_model_id": "tt.gpt-4o-mini",
                                       "params": {"token_tracking_allowance": str(grant.id)}}}
    action = CreditBalance()
    action.valves = action.Valves(DATABASE_URL=db_url)
    events = await run_action(action, __model__=model)
    text = events[-1]["data"]["description"]
    assert "Sponsored allowance 'Physics 101' (all users): 50.00 of 50.00 credits left" in text
    assert "Sponsored allowance 'Physics 101': 5.00 of 5.00 credits left, resets" in text


async def test_action_does_not_block_the_loop(priced, db_url, monkeypatch):
    original = Accountant.balance

    def slow(self, *a, **kw):
        time.sleep(0.3)
        return original(self, *a, **kw)

    monkeypatch.setattr(Accountant, "balance", slow)
    action = CreditBalance()
    action.valves = action.Valves(DATABASE_URL=db_url)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await run_action(action)
    task.cancel()
    assert ticks >= 15  # ~30 ticks fit in the 0.3 s the balance took


async def test_filter_inlet_refuses_over_limit_and_passes_tasks(priced, db_url):
    set_setting(priced, "base_credit_allowance", "0")
    flt = Filter()
    flt.valves = flt.Valves(DATABASE_URL=db_url)
    body = {"model": "gpt-4o-mini", "messages": messages()}
    with pytest.raises(DailyTokenLimitExceededError, match="Credits left: 0.00 of 0.00"):
        await flt.inlet(body, __user__=ALICE)
    assert await flt.inlet(body, __user__=ALICE, __metadata__={"task": "title_generation"}) \
        is body
    assert reservations(priced) == 0 and ledger(priced) == []


async def test_filter_inlet_admits_without_holding_credit(priced, db_url):
    flt = UsageFilter()
    flt.valves = flt.Valves(DATABASE_URL=db_url)
    body = {"model": "gpt-4o-mini", "messages": messages()}
    assert await flt.inlet(body, __user__=ALICE) is body
    assert reservations(priced) == 0


async def test_filter_outlet_charges_reported_usage_once(priced, db_url):
    flt = UsageFilter()
    flt.valves = flt.Valves(DATABASE_URL=db_url)
    answer = {"id": "msg-1", "role": "assistant", "content": "Paris.",
              "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35,
                        "prompt_tokens_details": {"cached_tokens": 10}}}
    body = {"model": "gpt-4o-mini", "chat_id": "chat-1", "id": "msg-1",
            "messages": [*messages(), answer]}
    await flt.outlet(body, __user__=ALICE)
    await flt.outlet(body, __user__=ALICE)  # the same answer again: charged once
    [row] = ledger(priced)
    assert (row.input_tokens, row.cached_input_tokens, row.output_tokens) == (20, 10, 5)
    assert (row.status, row.chat_id, row.message_id) == ("completed", "chat-1", "msg-1")


async def test_filter_outlet_estimates_without_usage_and_never_raises(priced, db_url):
    flt = UsageFilter()
    flt.valves = flt.Valves(DATABASE_URL=db_url)
    answer = {"id": "m2", "role": "assistant", "content": "Paris is the capital."}
    await flt.outlet({"model": "gpt-4o-mini", "chat_id": "c", "messages": [
        *messages(), answer]}, __user__=ALICE)
    [row] = ledger(priced)
    assert row.status == "estimated" and row.output_tokens == 6
    # an unpriced model cannot be charged: logged, the chat is not broken
    out = await flt.outlet({"model": "unpriced", "messages": [answer]}, __user__=ALICE)
    assert out["model"] == "unpriced" and len(ledger(priced)) == 1


async def test_filter_outlet_reads_ollama_counters(priced, db_url):
    flt = UsageFilter()
    flt.valves = flt.Valves(DATABASE_URL=db_url)
    answer = {"id": "m3", "role": "assistant", "content": "Paris.",
              "usage": {"prompt_eval_count": 26, "eval_count": 3}}
    await flt.outlet({"model": "gpt-4o-mini", "chat_id": "c", "messages": [answer]},
                     __user__=ALICE)
    [row] = ledger(priced)
    assert (row.input_tokens, row.output_tokens) == (26, 3)


async def test_action_links_to_the_personal_usage_page(priced, db_url, monkeypatch):
    action = CreditBalance()
    action.valves = action.Valves(DATABASE_URL=db_url, DASHBOARD_URL="https://credits.example/")
    final = (await run_action(action))[-1]["data"]["description"]
    assert final.endswith("Usage details: https://credits.example/me")
    monkeypatch.setenv("TOKEN_TRACKING_DASHBOARD_URL", "https://env.example")
    action.valves = action.Valves(DATABASE_URL=db_url)
    final = (await run_action(action))[-1]["data"]["description"]
    assert final.endswith("Usage details: https://env.example/me")
