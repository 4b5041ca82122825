"""``/metrics`` counts charges and refusals per entry point: pipe, filter, gateway."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from gw_support import FIXTURES, ledger, messages
from sqlalchemy.orm import Session

from openwebui_token_tracking.filters.usage_filter import UsageFilter
from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe
from openwebui_token_tracking.storage import settings_store

USER = {"id": "u-bob", "name": "Bob", "role": "user"}


def _pipe_and_filter(db_url: str) -> None:
    async def run() -> None:
        pipe = OpenAITrackedPipe()
        pipe.valves = pipe.Valves(DATABASE_URL=db_url, API_KEY="sk-test")
        completion = json.loads((FIXTURES / "openai" / "completion_reasoning.json").read_text())
        pipe.transport = httpx.MockTransport(lambda request: httpx.Response(200,
                                                                           json=completion))
        await pipe.pipe({"model": "tt.gpt-4o-mini", "messages": messages()}, __user__=USER)
        flt = UsageFilter()
        flt.valves = flt.Valves(DATABASE_URL=db_url)
        answer = {"id": "m1", "role": "assistant", "content": "Paris.",
                  "usage": {"prompt_tokens": 30, "completion_tokens": 5}}
        await flt.outlet({"model": "gpt-4o-mini", "chat_id": "c1",
                          "messages": [*messages(), answer]}, __user__=USER)
        await pipe._client.aclose()  # type: ignore[union-attr]
    asyncio.run(run())


def test_metrics_label_charges_and_refusals_by_entry_point(oai, gateway_url, gw_engine,
                                                           db_url):
    oai().chat.completions.create(model="gpt-4o-mini", messages=messages())
    _pipe_and_filter(db_url)
    assert sorted(r.entry_point for r in ledger(gw_engine)) == ["filter", "gateway", "pipe"]
    with Session(gw_engine) as s, s.begin():
        settings_store.set_value(s, "base_credit_allowance", "0")
    with pytest.raises(openai.RateLimitError):
        oai().chat.completions.create(model="gpt-4o-mini", messages=messages())

    async def refused_in_filter() -> None:
        flt = UsageFilter()
        flt.valves = flt.Valves(DATABASE_URL=db_url)
        await flt.inlet({"model": "gpt-4o-mini", "messages": messages()},
                        __user__={"id": "u-alice"})
    with pytest.raises(Exception, match="credit allowance is used up"):
        asyncio.run(refused_in_filter())

    text = httpx.get(f"{gateway_url}/metrics",
                     headers={"Authorization": "Bearer static-admin"}).text
    for entry in ("pipe", "filter", "gateway"):
        assert (f'tt_requests_charged_total{{provider="openai",model="gpt-4o-mini",'
                f'entry_point="{entry}"}} 1') in text
    assert ('tt_requests_refused_total{reason="user_limit",provider="openai",'
            'model="gpt-4o-mini",entry_point="gateway"} 1') in text
    assert ('tt_requests_refused_total{reason="user_limit",provider="openai",'
            'model="gpt-4o-mini",entry_point="filter"} 1') in text
