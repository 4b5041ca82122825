"""Admission of dated model ids priced through genai-prices' matching.

On a fresh database priced as ``init`` prices it (genai-prices' current chat models),
times ``Accountant.admit`` (each admission released again, untimed) and prints p50/p95
in milliseconds:

- canonical: ``gpt-4o``, which has its own price row
- alias: ``gpt-4o-2024-08-06``, after its first request recorded it as an alias row;
  this should cost the same as the canonical id (one price lookup). The two are timed
  interleaved, so both see the same load on a shared machine
- first resolution: the first request for a dated id (match, record the alias row and
  its history, then admit); each run deletes the alias again (untimed). ``via db``
  matches a model priced here (``gpt-4o-2024-08-06``), ``via genai-prices`` one that is
  not (``gemini-2.0-flash-001``, a deprecated model init leaves out)
- miss, remembered: an id nothing matches, refused again within a minute (the
  in-process memory of refusals); ``miss, not remembered`` with that memory cleared
  before each request, i.e. the cost of every refusal without it

and then the number of SQL statements one admission of each kind sends.

Usage::

    python bench/alias_bench.py --backend sqlite --backend postgresql \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from bench_support import DEFAULT_POSTGRES_URL, p50_p95, scratch_database, timed

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import UnknownModelError
from openwebui_token_tracking.price_data import default_catalogue
from openwebui_token_tracking.storage import aliases, migrate, prices, settings_store
from openwebui_token_tracking.storage.engine import get_engine
from openwebui_token_tracking.storage.schema import ModelPricing, PriceHistory

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
EST = Usage(input_tokens=1000, output_tokens=500)


def prepare(url: str) -> Accountant:
    engine = get_engine(url)
    migrate.upgrade(engine)
    acct = Accountant(engine, clock=lambda: NOW)

    def setup(s):
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", "1000000000")
        at = NOW - timedelta(days=60)
        for e in default_catalogue(credits_per_usd=settings_store.credits_per_usd(s), at=at):
            prices.set_price(s, provider=e.provider, model_id=e.model_id, name=e.name,
                             price=e.price, now=at, source="genai-prices")
    acct.run(setup)
    return acct


def admission(acct: Accountant, provider: str, model_id: str) -> float:
    """One timed admission (ms), released again untimed."""
    t0 = time.perf_counter_ns()
    admitted = acct.admit(user_id="u-1", provider=provider, model_id=model_id, estimate=EST)
    elapsed = (time.perf_counter_ns() - t0) / 1e6
    acct.release(admitted.reservation_id)
    return elapsed


def paired(acct: Accountant, ids: list[str], n: int) -> list[list[float]]:
    """``n`` admissions of each id, interleaved so they share the machine's load."""
    out: list[list[float]] = [[] for _ in ids]
    for _ in range(n):
        for times, model_id in zip(out, ids, strict=True):
            times.append(admission(acct, "openai", model_id))
    return out


def forget(acct: Accountant, provider: str, model_id: str) -> None:
    """Delete a recorded alias and its history, so the next request resolves it afresh."""
    def work(s):
        s.execute(sa.delete(ModelPricing).where(ModelPricing.provider == provider,
                                                ModelPricing.id == model_id))
        s.execute(sa.delete(PriceHistory).where(PriceHistory.provider == provider,
                                                PriceHistory.model_id == model_id))
    acct.run(work)


def first_resolution(acct: Accountant, provider: str, model_id: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        forget(acct, provider, model_id)
        out += timed(lambda: acct.admit(user_id="u-1", provider=provider, model_id=model_id,
                                        estimate=EST), 1)
    return out


def refused(acct: Accountant, model_id: str, *, remembered: bool) -> Callable[[], None]:
    def run() -> None:
        if not remembered:
            aliases.misses.clear()
        try:
            acct.admit(user_id="u-1", provider="openai", model_id=model_id, estimate=EST)
        except UnknownModelError:
            return
        raise AssertionError(f"{model_id} was admitted")
    return run


def run(url: str, n: int) -> list[tuple[str, float, float]]:
    acct = prepare(url)
    steady = ["gpt-4o", "gpt-4o-2024-08-06"]
    paired(acct, steady, 50)  # warm-up; the alias's first request records it
    canonical, alias = paired(acct, steady, n)
    results = [
        ("canonical", *p50_p95(canonical)),
        ("alias", *p50_p95(alias)),
        ("first resolution via db",
         *p50_p95(first_resolution(acct, "openai", "gpt-4o-2024-08-06", max(n // 10, 20)))),
        ("first resolution via genai-prices",
         *p50_p95(first_resolution(acct, "google_genai", "gemini-2.0-flash-001",
                                  max(n // 10, 20)))),
        ("miss, remembered", *p50_p95(timed(refused(acct, "nope-1", remembered=True), n))),
        ("miss, not remembered",
         *p50_p95(timed(refused(acct, "nope-2", remembered=False), max(n // 10, 20)))),
    ]
    return results


def statements(acct: Accountant, work: Callable[[], object]) -> int:
    """How many SQL statements ``work`` sends (round trips, whatever the timing noise)."""
    sent: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)
    sa.event.listen(acct.engine, "before_cursor_execute", count)
    try:
        work()
    finally:
        sa.event.remove(acct.engine, "before_cursor_execute", count)
    return len(sent)


def statement_counts(acct: Accountant) -> list[tuple[str, int]]:
    def admit(provider: str, model_id: str) -> Callable[[], object]:
        return lambda: acct.admit(user_id="u-1", provider=provider, model_id=model_id,
                                  estimate=EST)
    forget(acct, "openai", "gpt-4o-2024-11-20")
    admit("openai", "gpt-4o")()  # the first admission of a process also sweeps
    refused(acct, "nope-1", remembered=True)()
    return [
        ("canonical", statements(acct, admit("openai", "gpt-4o"))),
        ("alias", statements(acct, admit("openai", "gpt-4o-2024-08-06"))),
        ("first resolution", statements(acct, admit("openai", "gpt-4o-2024-11-20"))),
        ("miss, remembered", statements(acct, refused(acct, "nope-1", remembered=True))),
        ("miss, not remembered", statements(acct, refused(acct, "nope-3", remembered=False))),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    ap.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    ap.add_argument("--iterations", type=int, default=2000)
    args = ap.parse_args()
    print(f"{'backend':<11} {'operation':<34} {'p50 ms':>8} {'p95 ms':>8}")
    for backend in args.backend or ["sqlite"]:
        with scratch_database(backend, args.postgres_url) as url:
            for op, p50, p95 in run(url, args.iterations):
                print(f"{backend:<11} {op:<34} {p50:>8.3f} {p95:>8.3f}", flush=True)
            counts = statement_counts(Accountant(get_engine(url), clock=lambda: NOW))
            print(f"{backend:<11} SQL statements per admission: "
                  + ", ".join(f"{op} {k}" for op, k in counts), flush=True)


if __name__ == "__main__":
    main()
