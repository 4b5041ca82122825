"""Members of two groups with team budgets admitted concurrently: never over a team
budget, and no deadlock between members locking the shared counters (PostgreSQL)."""

import threading
from datetime import UTC, datetime, timedelta

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import TokenLimitExceededError
from openwebui_token_tracking.storage import (
    caps,
    group_limits,
    groups,
    prices,
    settings_store,
)
from openwebui_token_tracking.storage.prices import PriceInput

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FIVE_CREDITS = Usage(output_tokens=5000)  # at 1 credit per 1000 output tokens


def test_eight_threads_of_two_members_at_two_team_budgets(engine):
    acct = Accountant(engine, clock=lambda: NOW)

    def setup(s):
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", "1000")
        prices.set_price(s, provider="openai", model_id="gpt", name="GPT",
                         price=PriceInput(0, 1, 1000, 1_000_000), now=NOW - timedelta(days=1))
        for name, budget in (("A", 20), ("B", 30)):
            groups.create_group(s, name, 0)
            group_limits.set_group_limits(s, name, total_credit_limit=budget)
            for user in ("u-alice", "u-bob"):
                groups.add_member(s, name, user)
        caps.set_cap(s, kind="model", target="gpt", credit_limit=1000)
    acct.run(setup)
    url = engine.url.render_as_string(hide_password=False)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def one(user: str) -> None:
        a = Accountant(url, clock=lambda: NOW)
        barrier.wait(timeout=60)
        try:
            adm = a.admit(user_id=user, provider="openai", model_id="gpt",
                          estimate=FIVE_CREDITS)
        except TokenLimitExceededError as exc:
            results.append(exc.reason or "")
            return
        a.settle(adm.reservation_id, FIVE_CREDITS)
        results.append("admitted")

    threads = [threading.Thread(target=one, args=(("u-alice", "u-bob")[i % 2],))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # team budget A (20 credits) binds: four 5-credit requests, whoever sends them
    assert sorted(results) == ["admitted"] * 4 + ["group_budget"] * 4
    totals = {s.target: s.spent for s in acct.balance("u-alice").limits
              if s.scope == "group_total"}
    assert totals == {"A": 20, "B": 20}
