"""Budget limits seen from Open WebUI: the credit balance action and the filter."""

from __future__ import annotations

import pytest
from fakes import ALICE, messages, set_setting
from sqlalchemy.orm import Session

from openwebui_token_tracking.accountant import Accountant
from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.actions.credit_balance import CreditBalance
from openwebui_token_tracking.errors import RateLimitExceededError
from openwebui_token_tracking.filters.usage_filter import UsageFilter
from openwebui_token_tracking.storage import caps, group_limits, groups

pytestmark = pytest.mark.anyio


async def test_action_lists_caps_and_team_budgets(priced, db_url):
    set_setting(priced, "base_credit_allowance", "10")
    with Session(priced) as s, s.begin():
        caps.set_cap(s, kind="model", target="gpt-4o-mini", credit_limit=4)
        groups.create_group(s, "Team", 0)
        groups.add_member(s, "Team", ALICE["id"])
        group_limits.set_group_limits(s, "Team", total_credit_limit=8)
    Accountant(priced).record(user_id=ALICE["id"], provider="openai", model_id="gpt-4o-mini",
                              usage=Usage(output_tokens=250))  # 1 credit
    action = CreditBalance()
    action.valves = action.Valves(DATABASE_URL=db_url)
    text = await action.balance_text(ALICE, None)
    assert "Your credits: 9.00 of 10.00 credits left" in text
    assert "Team budget of Team: 7.00 of 8.00 credits left" in text
    assert "Cap on model gpt-4o-mini: 3.00 of 4.00 credits left" in text


async def test_filter_inlet_counts_requests_and_outlet_counts_tokens(priced, db_url):
    set_setting(priced, "requests_per_minute", "1000")
    set_setting(priced, "tokens_per_minute", "100000")
    flt = UsageFilter()
    flt.valves = flt.Valves(DATABASE_URL=db_url, DEFAULT_MAX_OUTPUT_TOKENS=100)
    body = {"model": "gpt-4o-mini", "messages": messages()}
    await flt.inlet(body, __user__=ALICE)
    acct = Accountant(priced)
    rate = acct.balance(ALICE["id"]).rate
    assert rate is not None and rate.tokens == 0  # the inlet's estimate is given back
    requests_after_inlet = rate.requests
    answer = {"id": "m1", "role": "assistant", "content": "Paris.",
              "usage": {"prompt_tokens": 30, "completion_tokens": 5}}
    await flt.outlet({**body, "chat_id": "c1", "id": "m1",
                      "messages": [*messages(), answer]}, __user__=ALICE)
    rate = acct.balance(ALICE["id"]).rate
    assert rate is not None
    # the outlet adds the reported tokens (alone, if a new minute began in between)
    assert (rate.tokens, rate.requests) in ((35, requests_after_inlet), (35, 0))
    set_setting(priced, "tokens_per_minute", "10")
    with pytest.raises(RateLimitExceededError, match="more than the limit of 10 tokens"):
        await flt.inlet(body, __user__=ALICE)
