"""The first admissions of a window, side by side: the counter row does not exist yet,
so they race to create it. None may be refused while credit is left (a race found by
the fault tests: an UPDATE that could not see the row created by a concurrent admission,
then a read that could, used to refuse the request)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import DailyTokenLimitExceededError
from openwebui_token_tracking.storage import prices, settings_store
from openwebui_token_tracking.storage.prices import PriceInput

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ROUNDS, THREADS = 8, 6


def test_first_admissions_of_a_window_are_all_admitted(engine):
    setup = Accountant(engine, clock=lambda: NOW)
    setup.run(lambda s: (settings_store.ensure_defaults(s), prices.set_price(
        s, provider="openai", model_id="gpt", name="GPT",
        price=PriceInput(0, 1, 1000, 1_000_000), now=NOW)))
    refused: list[str] = []

    def admit(user: str, barrier: threading.Barrier) -> None:
        acct = Accountant(engine, clock=lambda: NOW)
        barrier.wait(timeout=30)
        try:
            acct.admit(user_id=user, provider="openai", model_id="gpt",
                       estimate=Usage(output_tokens=1000))
        except DailyTokenLimitExceededError as exc:
            refused.append(str(exc))

    for round_ in range(ROUNDS):  # each round a user whose window has no counter yet
        barrier = threading.Barrier(THREADS)
        threads = [threading.Thread(target=admit, args=(f"u-race-{round_}", barrier))
                   for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert refused == []
    for round_ in range(ROUNDS):
        [state] = setup.balance(f"u-race-{round_}").limits
        assert state.reserved == THREADS  # 1 credit each, every one of them held
