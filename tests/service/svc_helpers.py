"""Shared constants and seed data of the service tests (imported by conftest and tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.service.auth import encode_openwebui_jwt
from openwebui_token_tracking.storage import groups, ledger, prices, settings_store, sponsors

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # as tests/conftest.py
ADMIN_TOKEN = "static-admin-token-for-tests"
SECRET = "webui-secret-for-tests"
PRICE = prices.PriceInput(1000, 1_000_000, 2000, 1_000_000)  # 1000/2000 credits per 1M


def jwt_for(user_id: str, **claims: object) -> str:
    return encode_openwebui_jwt({"id": user_id, **claims}, SECRET)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ALICE, BOB, ADMIN = bearer(jwt_for("u-alice")), bearer(jwt_for("u-bob")), bearer(ADMIN_TOKEN)
OWUI_ADMIN = bearer(jwt_for("u-admin"))


def seed(engine: Engine) -> None:
    """Two models, a group, an allowance; alice 3 rows, bob 2 rows (one sponsored)."""
    start = NOW - timedelta(days=40)
    with Session(engine) as s, s.begin():
        settings_store.ensure_defaults(s)
        prices.set_price(s, provider="openai", model_id="gpt-4o", name="GPT-4o", price=PRICE,
                         now=start)
        prices.set_price(s, provider="openrouter", model_id="meta/llama-3", name=None,
                         price=PRICE, now=start)
        groups.create_group(s, "Research", 500, "thesis")
        groups.add_member(s, "Research", "u-bob")
        allowance = sponsors.create_allowance(
            s, name="Course", sponsor_id="u-admin", models=["gpt-4o"],
            total_credit_limit=100, daily_credit_limit=10, now=start)
        big = Usage(input_tokens=100_000, output_tokens=50_000)  # 100 + 100 = 200 credits
        small = Usage(input_tokens=10_000, output_tokens=5_000)  # 20 credits
        for days_ago, user, provider, model, usage, sponsored in [
            (5, "u-alice", "openai", "gpt-4o", big, False),
            (2, "u-alice", "openrouter", "meta/llama-3", small, False),
            (0, "u-alice", "openai", "gpt-4o", small, False),
            (3, "u-bob", "openai", "gpt-4o", big, False),
            (1, "u-bob", "openai", "gpt-4o", small, True),
        ]:
            ledger.record_usage(s, user_id=user, provider=provider, model_id=model, usage=usage,
                                now=NOW - timedelta(days=days_ago, hours=1),
                                allowance=allowance if sponsored else None)


