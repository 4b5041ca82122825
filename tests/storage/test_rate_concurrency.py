"""Concurrent requests at a rate limit: 8 threads and 4 processes, SQLite and PostgreSQL.

Every request starts in the same minute (a fixed clock); never more than the limit may
be admitted, whatever the interleaving.
"""

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import RateLimitExceededError
from openwebui_token_tracking.storage import prices, settings_store
from openwebui_token_tracking.storage.prices import PriceInput

NOW = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
ESTIMATE = Usage(input_tokens=1000, output_tokens=4000)  # 5000 tokens


def _setup(engine, key: str, value: str) -> str:
    acct = Accountant(engine, clock=lambda: NOW)

    def work(s):
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", "1000000")
        settings_store.set_value(s, key, value)
        prices.set_price(s, provider="openai", model_id="gpt", name="GPT",
                         price=PriceInput(1, 1000, 1, 1000), now=NOW - timedelta(days=1))
    acct.run(work)
    return engine.url.render_as_string(hide_password=False)


def one_request(url: str, barrier) -> str:
    """Admit, then settle at the estimate; 'admitted' or 'refused'."""
    acct = Accountant(url, clock=lambda: NOW)
    barrier.wait(timeout=60)
    try:
        adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt",
                         estimate=ESTIMATE)
    except RateLimitExceededError:
        return "refused"
    acct.settle(adm.reservation_id, ESTIMATE)
    return "admitted"


def _child(url: str, barrier, queue) -> None:
    queue.put(one_request(url, barrier))


def _threads(url: str, n: int) -> list[str]:
    barrier = threading.Barrier(n)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(one_request(url, barrier)))
               for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _processes(url: str, n: int) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(url, barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("requests_per_minute", "3", 3),
    ("tokens_per_minute", "12000", 2),  # 5000-token estimates: two fit, a third does not
])
def test_eight_threads_at_the_rate_limit(engine, key, value, allowed):
    results = _threads(_setup(engine, key, value), 8)
    assert sorted(results) == ["admitted"] * allowed + ["refused"] * (8 - allowed)


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("requests_per_minute", "2", 2),
    ("tokens_per_minute", "10000", 2),
])
def test_four_processes_at_the_rate_limit(engine, key, value, allowed):
    results = _processes(_setup(engine, key, value), 4)
    assert sorted(results) == ["admitted"] * allowed + ["refused"] * (4 - allowed)
