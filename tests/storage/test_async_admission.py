"""PostgreSQL: the event loop's admissions (``storage.async_admission``) read a user's
terms once, then admit in one statement that holds only while those terms are unchanged
(``at_once.guarded_statement``): a change made anywhere (our settings, Open WebUI's
group tables, the price list) binds the very next admission."""

import asyncio
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
import sqlalchemy as sa
from storage_support import priced_accountant, state, warm

from db_support import BACKENDS
from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.storage import (
    group_links,
    groups,
    prices,
    settings_store,
)
from openwebui_token_tracking.storage.async_admission import AsyncAdmissions
from openwebui_token_tracking.storage.openwebui_access import group_member_table
from openwebui_token_tracking.storage.openwebui_groups import forget_probes
from openwebui_token_tracking.storage.openwebui_tables import group_table, openwebui_metadata
from openwebui_token_tracking.storage.prices import PriceInput

pytestmark = pytest.mark.parametrize(
    "backend", [b for b in BACKENDS if b == "postgresql"], indirect=True)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ONE = Usage(output_tokens=1000)  # 1 credit at 1 credit per 1000 output tokens


@pytest.fixture
def acct(engine):
    a = priced_accountant(engine, NOW)
    warm(a)  # later admissions can run on the loop
    return a


@pytest.fixture
def statements(monkeypatch) -> list[str]:
    """The SQL of every statement the async admissions send."""
    sent: list[str] = []
    execute = psycopg.AsyncCursor.execute

    async def counting(self, query, params=None, **kw):  # type: ignore[no-untyped-def]
        sent.append(str(query))
        return await execute(self, query, params, **kw)
    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counting)
    return sent


async def admit(admissions: AsyncAdmissions):  # type: ignore[no-untyped-def]
    """Alice asks for 1 credit of gpt, as the gateway would."""
    return await admissions.admit(user_id="u-alice", provider="openai", model_id="gpt",
                                  estimate=ONE, now=NOW, reservation_id=str(uuid.uuid4()))


def on_loop(engine, steps):  # type: ignore[no-untyped-def]
    """``steps(admissions)`` on one event loop with one ``AsyncAdmissions``."""
    async def main():  # type: ignore[no-untyped-def]
        admissions = AsyncAdmissions(engine)
        try:
            return await steps(admissions)
        finally:
            await admissions.aclose()
    return asyncio.run(main())


def held(acct: Accountant) -> tuple[int, int]:
    """(credits reserved on Alice's counter, reservations)."""
    reserved, reservations = state(acct)
    return reserved // 1_000_000, reservations


def test_after_the_first_admission_each_is_one_statement(acct, engine, statements):
    async def three(admissions):  # type: ignore[no-untyped-def]
        return [await admit(admissions) for _ in range(3)]
    admitted = on_loop(engine, three)
    assert all(a is not None for a in admitted)
    # terms (with their digest) + hold, then one guarded hold each
    assert len([s for s in statements if not s.startswith("SET")]) == 4
    assert held(acct) == (3, 3)


def test_a_limit_lowered_after_the_terms_were_read_binds_the_next_admission(acct, engine):
    async def steps(admissions):  # type: ignore[no-untyped-def]
        first = await admit(admissions)
        acct.run(lambda s: settings_store.set_value(s, "base_credit_allowance", "1"))
        return first, await admit(admissions)
    first, second = on_loop(engine, steps)
    assert first is not None
    assert second is None  # 1 credit held of 1: the worker thread words the refusal
    assert held(acct) == (1, 1)


def test_an_open_webui_group_joined_later_counts_at_the_next_admission(acct, engine):
    openwebui_metadata.create_all(engine, tables=[group_table, group_member_table])
    forget_probes()

    def staff_budget(s):
        groups.create_group(s, "Staff budget", 50)
        group_links.link_group(s, "Staff budget", "staff")
    with engine.begin() as conn:
        conn.execute(sa.insert(group_table).values(id="staff", name="Staff", user_id="u-bob"))
    acct.run(staff_budget)
    acct.run(lambda s: settings_store.set_value(s, "base_credit_allowance", "1"))

    async def steps(admissions):  # type: ignore[no-untyped-def]
        results = [await admit(admissions), await admit(admissions)]  # 2nd: no room
        with engine.begin() as conn:  # Open WebUI adds her to its group
            conn.execute(sa.insert(group_member_table).values(
                id="m1", group_id="staff", user_id="u-alice"))
        return [*results, await admit(admissions)]
    first, refused, after_joining = on_loop(engine, steps)
    assert first is not None and refused is None
    assert after_joining is not None
    assert held(acct) == (2, 2)


def test_a_new_price_in_force_is_the_next_admissions_price(acct, engine):
    async def steps(admissions):  # type: ignore[no-untyped-def]
        before = await admit(admissions)
        acct.run(lambda s: prices.set_price(s, provider="openai", model_id="gpt", name="GPT",
                                            price=PriceInput(0, 1, 2000, 1_000_000), now=NOW))
        return before, await admit(admissions)
    before, after = on_loop(engine, steps)
    assert before is not None and after is not None
    assert before.estimate_micro == 1_000_000
    assert after.estimate_micro == 2_000_000
    assert after.price != before.price
    assert held(acct) == (3, 2)
