"""Gateway test support (a uniquely named module): priced models, Open WebUI's API keys
and workspace models, the gateway served on the fake upstreams."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from openwebui_token_tracking.gateway.config import PROTOCOLS, Upstream
from openwebui_token_tracking.providers.protocol import Connection
from openwebui_token_tracking.service.auth import encode_openwebui_jwt
from openwebui_token_tracking.storage import settings_store
from openwebui_token_tracking.storage.openwebui_access import (
    access_grant_table,
    access_metadata,
    api_key_table,
    model_table,
)
from openwebui_token_tracking.storage.prices import PriceInput, set_price
from openwebui_token_tracking.storage.schema import Reservation, TokenUsageLog

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIXTURES = Path(__file__).parents[1] / "fixtures"
SECRET = "webui-secret-for-gateway-tests"
KEYS = {"u-alice": "sk-alice0000000000000000000000001", "u-bob": "sk-bob00000000000000000000000002",
        "u-admin": "sk-admin000000000000000000000003"}
ALICE_KEY = KEYS["u-alice"]
PAID = PriceInput(input_cost_credits=1000, per_input_tokens=1_000_000,
                  output_cost_credits=4000, per_output_tokens=1_000_000,
                  cached_input_cost_credits=500, per_cached_input_tokens=1_000_000,
                  cache_write_cost_credits=1250, per_cache_write_tokens=1_000_000)
FREE = PriceInput(0, 1_000_000, 0, 1_000_000)
MODELS = [("openai", "gpt-4o-mini", "GPT-4o mini", PAID),
          ("openai", "llama-free", "Llama (free)", FREE),
          ("anthropic", "claude-sonnet-4", "Claude Sonnet 4", PAID),
          ("google_genai", "gemini-2.5-flash", "Gemini 2.5 Flash", PAID),
          ("mistral", "mistral-small-latest", "Mistral Small", PAID),
          ("openrouter", "unserved-model", "No upstream", PAID)]
PROVIDER_PROTOCOL = {"openai": "openai", "anthropic": "anthropic", "google_genai": "gemini",
                     "mistral": "mistral"}
MODEL_OF = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4",
            "google_genai": "gemini-2.5-flash", "mistral": "mistral-small-latest"}


def upstreams(base: str) -> list[Upstream]:
    out = []
    for provider, name in PROVIDER_PROTOCOL.items():
        protocol = PROTOCOLS[name]
        path = "v1beta" if name == "gemini" else "v1"
        out.append(Upstream(provider, protocol,
                            Connection(base_url=f"{base}/{name}/{path}",
                                       api_key=f"upstream-secret-{name}")))
    return out


def prepare(engine: Engine, allowance: str = "100") -> None:
    """Prices, the user's allowance, and Open WebUI's api_key/model tables."""
    access_metadata.create_all(engine)
    now = int(time.time())
    with Session(engine) as s, s.begin():
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", allowance)
        for provider, model_id, name, price in MODELS:
            set_price(s, provider=provider, model_id=model_id, name=name, price=price,
                      now=EPOCH, effective_from=EPOCH)
        s.execute(sa.insert(api_key_table), [
            {"id": f"key_{u}", "user_id": u, "key": k, "created_at": now, "updated_at": now}
            for u, k in KEYS.items()])


def add_workspace_model(engine: Engine, model_id: str, owner: str, base: str,
                        allowance: str | None, public: bool = False) -> None:
    params: dict[str, Any] = {} if allowance is None else {"token_tracking_allowance": allowance}
    with Session(engine) as s, s.begin():
        s.execute(sa.insert(model_table).values(
            id=model_id, user_id=owner, base_model_id=base, name=model_id.title(),
            params=params, meta={}, is_active=True))
        if public:
            s.execute(sa.insert(access_grant_table).values(
                id=f"g-{model_id}", resource_type="model", resource_id=model_id,
                principal_type="user", principal_id="*", permission="read", created_at=0))


def jwt_for(user_id: str, **claims: object) -> str:
    return encode_openwebui_jwt({"id": user_id, **claims}, SECRET)


def ledger(engine: Engine, timeout: float = 10.0) -> list[TokenUsageLog]:
    """The ledger's rows once no reservation is pending (or ``timeout`` passed): the
    gateway writes a stream's charge just after the client has its last byte."""
    deadline = time.monotonic() + timeout
    while reservations(engine) and time.monotonic() < deadline:
        time.sleep(0.01)
    with Session(engine, expire_on_commit=False) as s:
        return list(s.scalars(sa.select(TokenUsageLog).order_by(TokenUsageLog.id)))


def reservations(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(Reservation)) or 0)


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def messages(text: str = "What is the capital of France?") -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": text}]
