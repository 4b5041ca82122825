"""A demo data set, so a newcomer sees real pages at once (``serve --demo``).

Stand-in Open WebUI users are created only when there is no ``user`` table at all (a
fresh embedded database); an existing Open WebUI table is never altered, its first
users are used instead. Nothing is loaded into a ledger that already has rows, so the
demo never mixes with real usage. Usage is charged through ``ledger.record_usage`` with
past instants, exactly as the pipes charge it.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..accounting.usage import Usage
from ..errors import ConfigurationError
from ..storage import groups, ledger, prices, settings_store, sponsors
from ..storage.openwebui_tables import openwebui_metadata, user_table
from ..storage.schema import TokenUsageLog

logger = logging.getLogger(__name__)

DAYS = 30
DEMO_USERS = [
    {"id": "demo-admin", "name": "Ada Admin", "email": "ada@example.edu", "role": "admin"},
    {"id": "demo-alice", "name": "Alice Liddell", "email": "alice@example.edu", "role": "user"},
    {"id": "demo-bob", "name": "Bob Builder", "email": "bob@example.edu", "role": "user"},
    {"id": "demo-carol", "name": "Carol Danvers", "email": "carol@example.edu", "role": "user"},
    {"id": "demo-dan", "name": "Dan Brown", "email": "dan@example.edu", "role": "user"},
    {"id": "demo-erin", "name": "Erin Hunter", "email": "erin@example.edu", "role": "user"},
]
PRICES = [  # provider, model, name, credits per 1M input, per 1M output
    ("openai", "gpt-4o", "GPT-4o", 2500, 10000),
    ("openai", "gpt-4o-mini", "GPT-4o mini", 150, 600),
    ("anthropic", "claude-sonnet-4", "Claude Sonnet 4", 3000, 15000),
    ("mistral", "mistral-small", "Mistral Small", 100, 300),
]
ALLOWANCE = "CS101 course"


def _users(engine: Engine) -> list[str]:
    """Ids of the users to charge: stand-ins on a fresh database, else existing ones."""
    if not sa.inspect(engine).has_table("user"):
        openwebui_metadata.create_all(engine, tables=[user_table])
        with engine.begin() as conn:
            conn.execute(sa.insert(user_table), DEMO_USERS)
        logger.info("created a stand-in Open WebUI user table with %d demo users",
                    len(DEMO_USERS))
        return [u["id"] for u in DEMO_USERS]
    with engine.connect() as conn:
        ids = list(conn.scalars(sa.select(user_table.c.id).order_by(user_table.c.id).limit(6)))
    if not ids:
        raise ConfigurationError("Open WebUI's user table is empty: sign up in Open WebUI "
                                 "first, or run the demo on a fresh database")
    return ids


def _usage(rng: random.Random, big: bool) -> Usage:
    scale = 4 if big else 1
    return Usage(input_tokens=rng.randint(300, 6000) * scale,
                 cached_input_tokens=rng.choice([0, 0, 512, 1024]),
                 output_tokens=rng.randint(100, 1500) * scale)


def _configure(s: Session, users: list[str], now: datetime) -> None:
    settings_store.ensure_defaults(s)
    start = now - timedelta(days=DAYS + 1)
    for provider, model, name, inp, out in PRICES:
        prices.set_price(s, provider=provider, model_id=model, name=name, now=start,
                         price=prices.PriceInput(inp, 1_000_000, out, 1_000_000))
    research = groups.find_group(s, "Research") or groups.create_group(
        s, "Research", 2000, "Thesis students")
    teaching = groups.find_group(s, "Teaching") or groups.create_group(
        s, "Teaching", 500, "Teaching assistants")
    for uid in users[2:4]:
        groups.add_member(s, research.name, uid)
    for uid in users[4:5]:
        groups.add_member(s, teaching.name, uid)
    if sponsors.find_allowance(s, name=ALLOWANCE) is None:
        sponsors.create_allowance(s, name=ALLOWANCE, sponsor_id=users[0],
                                  models=["gpt-4o-mini"], total_credit_limit=400,
                                  daily_credit_limit=50, now=start)


def _charge_history(s: Session, users: list[str], now: datetime, seed: int) -> int:
    rng = random.Random(seed)
    allowance = sponsors.get_allowance(s, name=ALLOWANCE)
    models = [(p, m) for p, m, *_ in PRICES]
    rows = 0
    for back in range(DAYS, -1, -1):
        day = (now - timedelta(days=back)).date()
        for k, uid in enumerate(users):
            heavy = k == 1  # one user spends a lot: shows "near the limit"
            for _ in range(rng.randint(1, 6) + (4 if heavy else 0)):
                at = datetime.combine(day, time(rng.randint(7, 20), rng.randint(0, 59)),
                                      now.tzinfo)
                if at >= now:
                    continue
                sponsored = k >= 2 and rng.random() < 0.3
                provider, model = ("openai", "gpt-4o-mini") if sponsored else rng.choice(models)
                ledger.record_usage(s, user_id=uid, provider=provider, model_id=model,
                                    usage=_usage(rng, heavy), now=at,
                                    allowance=allowance if sponsored else None)
                rows += 1
    for hours_ago in (3, 2, 1):  # the heavy user is over the limit today
        ledger.record_usage(s, user_id=users[min(1, len(users) - 1)], provider="openai",
                            model_id="gpt-4o", now=now - timedelta(hours=hours_ago),
                            usage=Usage(input_tokens=60_000, output_tokens=20_000))
        rows += 1
    return rows


def load_demo(engine: Engine, now: datetime, seed: int = 5) -> bool:
    """Load the demo into an empty ledger (one transaction); False if it has rows."""
    with Session(engine) as s, s.begin():
        if s.scalar(sa.select(sa.func.count()).select_from(TokenUsageLog)):
            logger.info("the ledger already has usage; demo data not loaded")
            return False
    users = _users(engine)
    with Session(engine) as s, s.begin():
        _configure(s, users, now)
        rows = _charge_history(s, users, now, seed)
    logger.info("loaded demo data: %d users, %d ledger rows", len(users), rows)
    return True
