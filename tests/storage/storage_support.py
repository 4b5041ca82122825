"""An accountant on a test database with an allowance and one priced model, and what
Alice holds on it (a plain module with a unique name: test modules import it)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.storage import prices, settings_store
from openwebui_token_tracking.storage.prices import PriceInput
from openwebui_token_tracking.storage.schema import BudgetCounter, Reservation

ONE_CREDIT_PER_1K_OUT = PriceInput(0, 1, 1000, 1_000_000)


def priced_accountant(engine: Engine, now: datetime, priced_since: datetime | None = None,
                      allowance: str = "10") -> Accountant:
    """An accountant at ``now``: ``allowance`` credits, model ``openai/gpt`` at 1 credit
    per 1000 output tokens since ``priced_since`` (default ``now``)."""
    acct = Accountant(engine, clock=lambda: now)

    def setup(s):  # type: ignore[no-untyped-def]
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", allowance)
        prices.set_price(s, provider="openai", model_id="gpt", name="GPT",
                         price=ONE_CREDIT_PER_1K_OUT, now=priced_since or now)
    acct.run(setup)
    return acct


def warm(acct: Accountant) -> None:
    """Alice's window counter exists (the first admission of a window creates it)."""
    acct.settle(acct.admit(user_id="u-alice", provider="openai", model_id="gpt",
                           estimate=Usage(output_tokens=1)).reservation_id, Usage())


def state(acct: Accountant) -> tuple[int, int]:
    """(micro-credits reserved on Alice's counter, reservations)."""
    def read(s):  # type: ignore[no-untyped-def]
        reserved = s.scalar(sa.select(BudgetCounter.reserved_micro)
                            .where(BudgetCounter.subject == "u-alice"))
        return int(reserved or 0), s.scalar(sa.select(sa.func.count()).select_from(Reservation))
    return acct.run(read)
