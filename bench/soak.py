"""Load and soak: many concurrent streams through the real pipe against a local upstream.

For each backend: a fresh database, the local fake upstream (``sse_upstream.py``, a
real HTTP server in its own process), then

1. direct: ``--concurrency`` clients stream from the upstream itself (httpx, the same
   SSE reading and JSON decoding a client does) for ``--direct`` seconds;
2. pipe: the same number of clients stream through ``OpenAITrackedPipe`` (admission,
   streaming, settlement in ``finally``) for ``--duration`` seconds.

It prints time to first token (p50/p95) and per-stream throughput of both, the
overhead, the ledger against the usage the upstream reported (they must be equal), and
what is left at the end: reservations, queued settlements, connections checked out,
and the growth of memory, open files and database connections over the run.

Usage::

    python bench/soak.py --backend sqlite --backend postgresql --duration 600 \\
        --concurrency 200

Targets (issue 9): TTFT overhead p50 <= 3 ms, throughput >= 95 % of direct.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from bench_support import DEFAULT_POSTGRES_URL, pct, scratch_database
from sqlalchemy.orm import Session

from openwebui_token_tracking.accountant import Accountant
from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe
from openwebui_token_tracking.providers.sse import aiter_lines, aiter_sse
from openwebui_token_tracking.storage import migrate, settings_store
from openwebui_token_tracking.storage.engine import (
    get_engine,
    read_only_options,
)
from openwebui_token_tracking.storage.openwebui_tables import openwebui_metadata, user_table
from openwebui_token_tracking.storage.prices import PriceInput, set_price
from openwebui_token_tracking.storage.schema import Reservation, TokenUsageLog

MODEL = "fake-gpt"
PRICE = PriceInput(input_cost_credits=1000, per_input_tokens=1_000_000,
                   output_cost_credits=4000, per_output_tokens=1_000_000)
IN_MICRO, OUT_MICRO = 1000, 4000  # micro-credits per input / output token at PRICE
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PROMPT = "Summarise the plot of Hamlet in two sentences, please."


# -- setup ---------------------------------------------------------------------------------

def prepare(url: str, users: int) -> None:
    engine = get_engine(url)
    migrate.upgrade(engine)
    openwebui_metadata.create_all(engine, tables=[user_table])
    with engine.begin() as conn:
        conn.execute(sa.insert(user_table), [
            {"id": f"user-{i}", "name": f"User {i}", "email": f"u{i}@example.edu",
             "role": "user"} for i in range(users)])
    with Session(engine) as s, s.begin():
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", "1000000000")
        set_price(s, provider="openai", model_id=MODEL, name="Fake GPT", price=PRICE,
                  now=EPOCH, effective_from=EPOCH)


@dataclass
class Upstream:
    base_url: str
    stats: Callable[[], dict[str, Any]]
    close: Callable[[], None]


def start_upstream(chunks: int, interval: float, first_delay: float) -> Upstream:
    """The fake upstream in its own process (it must not share the pipe's CPU time)."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("sse_upstream.py")),
         "--chunks", str(chunks), "--interval", str(interval),
         "--first-delay", str(first_delay)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()

    def stats() -> dict[str, Any]:
        return dict(httpx.get(base_url.removesuffix("/v1") + "/stats", timeout=10).json())

    def close() -> None:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    return Upstream(base_url, stats, close)


# -- measuring -------------------------------------------------------------------------------

@dataclass
class Streams:
    """What the clients of one phase saw."""

    ttft_ms: list[float] = field(default_factory=list)
    chunks_per_s: list[float] = field(default_factory=list)
    chunks: int = 0
    completed: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    measure_from: float = 0.0
    """Requests started earlier (while clients ramp up) count, but are not timed."""

    def add(self, started: float, first: float | None, end: float, pieces: int) -> None:
        self.completed += 1
        self.chunks += pieces
        if first is not None and started >= self.measure_from:
            self.ttft_ms.append((first - started) * 1000)
            if pieces > 1 and end > first:
                self.chunks_per_s.append((pieces - 1) / (end - first))

    def fail(self, exc: BaseException) -> None:
        self.failed += 1
        key = f"{type(exc).__name__}: {str(exc)[:80]}"
        self.errors[key] = self.errors.get(key, 0) + 1


RAMP_S = 10.0
"""Clients start spread over this time, and only requests started after it are timed: a
synchronised first wave would time the queue of 200 simultaneous starts, not the pipe."""


async def run_clients(concurrency: int, seconds: float,
                      one: Callable[[int, int], Awaitable[None]], out: Streams) -> float:
    started = time.perf_counter()
    deadline = started + seconds
    ramp = min(RAMP_S, seconds / 4)
    out.measure_from = started + ramp

    async def client(worker: int) -> None:
        await asyncio.sleep(ramp * worker / concurrency)
        n = 0
        while time.perf_counter() < deadline:
            await one(worker, n)
            n += 1
    await asyncio.gather(*(client(w) for w in range(concurrency)))
    return time.perf_counter() - started


async def direct_phase(upstream: Upstream, concurrency: int, seconds: float) -> Streams:
    out = Streams()
    limits = httpx.Limits(max_connections=concurrency + 10,
                          max_keepalive_connections=concurrency + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def one(worker: int, n: int) -> None:
            body = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": PROMPT}]}
            started = time.perf_counter()
            first: float | None = None
            pieces = 0
            try:
                async with client.stream("POST", upstream.base_url + "/chat/completions",
                                         json=body) as response:
                    async for event in aiter_sse(aiter_lines(response.aiter_bytes(), "direct")):
                        if event.data == "[DONE]":
                            break
                        chunk = json.loads(event.data)
                        for choice in chunk.get("choices") or []:
                            if (choice.get("delta") or {}).get("content"):
                                pieces += 1
                                if first is None:
                                    first = time.perf_counter()
                out.add(started, first, time.perf_counter(), pieces)
            except (httpx.HTTPError, ValueError) as exc:
                out.fail(exc)
        out.seconds = await run_clients(concurrency, seconds, one, out)
    return out


@dataclass
class Resources:
    rss_mb: float
    open_fds: int
    checked_out: int
    db_connections: int
    reservations: int


def resources(url: str, acct: Accountant, app_name: str | None) -> Resources:
    with open("/proc/self/statm") as f:
        rss_mb = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    engine = acct.engine
    with Session(engine) as s:
        s.connection(execution_options=read_only_options(engine))
        held = int(s.scalar(sa.select(sa.func.count()).select_from(Reservation)) or 0)
        backends = 0
        if app_name is not None:
            backends = int(s.scalar(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": app_name}) or 0)
    pool = engine.pool
    checked_out = pool.checkedout() if hasattr(pool, "checkedout") else 0
    return Resources(round(rss_mb, 1), len(os.listdir("/proc/self/fd")), checked_out,
                     backends, held)


async def pipe_phase(url: str, upstream: Upstream, concurrency: int, seconds: float,
                     users: int, app_name: str | None, sample_every: float
                     ) -> tuple[Streams, list[Resources], OpenAITrackedPipe]:
    out = Streams()
    pipe = OpenAITrackedPipe()
    pipe.valves = pipe.Valves(DATABASE_URL=url, API_KEY="sk-fake",
                              API_BASE_URL=upstream.base_url)
    run_id = uuid.uuid4().hex[:8]
    samples: list[Resources] = []
    done = asyncio.Event()

    async def one(worker: int, n: int) -> None:
        user = {"id": f"user-{(worker * 7919 + n) % users}", "role": "user"}
        body = {"model": f"tt_openai.{MODEL}", "stream": True,
                "messages": [{"role": "user", "content": PROMPT}]}
        started = time.perf_counter()
        first: float | None = None
        pieces = 0
        try:
            answer = await pipe.pipe(body, __user__=user, __chat_id__=f"{run_id}-{worker}",
                                     __message_id__=str(n))
            assert not isinstance(answer, str | dict)
            async for item in answer:
                if isinstance(item, str) and item:
                    pieces += 1
                    if first is None:
                        first = time.perf_counter()
            out.add(started, first, time.perf_counter(), pieces)
        except Exception as exc:  # counted and reported, never hidden
            out.fail(exc)

    async def sampler() -> None:
        acct = await pipe.accountant(pipe.settings())
        while not done.is_set():
            samples.append(await asyncio.to_thread(resources, url, acct, app_name))
            try:
                await asyncio.wait_for(done.wait(), sample_every)
            except TimeoutError:
                pass

    sampling = asyncio.create_task(sampler())
    out.seconds = await run_clients(concurrency, seconds, one, out)
    done.set()
    await sampling
    return out, samples, pipe


# -- one backend -------------------------------------------------------------------------------

@dataclass
class Report:
    backend: str
    direct: Streams
    piped: Streams
    samples: list[Resources]
    end: Resources
    ledger_rows: int
    ledger_input: int
    ledger_output: int
    ledger_micro: int
    upstream_requests: int
    upstream_input: int
    upstream_output: int
    pending: int

    @property
    def expected_micro(self) -> int:
        return self.upstream_input * IN_MICRO + self.upstream_output * OUT_MICRO

    @property
    def exact(self) -> bool:
        return (self.ledger_rows, self.ledger_input, self.ledger_output, self.ledger_micro) == (
            self.upstream_requests, self.upstream_input, self.upstream_output,
            self.expected_micro)


def ledger_totals(url: str) -> tuple[int, int, int, int]:
    u = TokenUsageLog
    with Session(get_engine(url)) as s:
        row = s.execute(sa.select(sa.func.count(), sa.func.sum(u.input_tokens),
                                  sa.func.sum(u.output_tokens),
                                  sa.func.sum(u.charged_micro))).one()
    return tuple(int(v or 0) for v in row)  # type: ignore[return-value]


async def soak(url: str, upstream: Upstream, *, concurrency: int, duration: float,
               direct: float, users: int, backend: str, app_name: str | None = None,
               sample_every: float = 10.0) -> Report:
    """Both phases against a prepared database; the report of what they did."""
    direct_streams = (await direct_phase(upstream, concurrency, direct) if direct > 0
                      else Streams())
    before = upstream.stats()
    piped, samples, pipe = await pipe_phase(url, upstream, concurrency, duration, users,
                                            app_name, sample_every)
    acct = await pipe.accountant(pipe.settings())
    await asyncio.to_thread(acct.pending.wait_empty, 60)
    if pipe._client is not None:
        await pipe._client.aclose()
    after = upstream.stats()
    rows, tokens_in, tokens_out, charged = ledger_totals(url)
    end = resources(url, acct, app_name)
    return Report(backend, direct_streams, piped, samples, end, rows, tokens_in, tokens_out,
                  charged, after["completed"] - before["completed"],
                  after["prompt_tokens"] - before["prompt_tokens"],
                  after["completion_tokens"] - before["completion_tokens"], len(acct.pending))


def print_report(r: Report) -> None:
    d, p = r.direct, r.piped
    print(f"\n== {r.backend}: {p.completed} streams through the pipe in {p.seconds:.0f} s "
          f"({p.completed / max(p.seconds, 1e-9):.0f}/s), {p.failed} failed; "
          f"{d.completed} direct in {d.seconds:.0f} s")
    for key, count in sorted(p.errors.items()):
        print(f"   failure x{count}: {key}")
    print(f"   TTFT ms        direct p50 {pct(d.ttft_ms, 50):7.2f} p95 {pct(d.ttft_ms, 95):7.2f}"
          f" | pipe p50 {pct(p.ttft_ms, 50):7.2f} p95 {pct(p.ttft_ms, 95):7.2f}"
          f" | overhead p50 {pct(p.ttft_ms, 50) - pct(d.ttft_ms, 50):6.2f}")
    dt, pt = pct(d.chunks_per_s, 50), pct(p.chunks_per_s, 50)
    print(f"   chunks/s/stream direct p50 {dt:7.1f} | pipe p50 {pt:7.1f} | "
          f"{100 * pt / dt if dt else float('nan'):5.1f} % of direct")
    print(f"   ledger {r.ledger_rows} rows, {r.ledger_input} in + {r.ledger_output} out tokens, "
          f"{r.ledger_micro} micro-credits; upstream reported {r.upstream_requests} answers, "
          f"{r.upstream_input} + {r.upstream_output} tokens = {r.expected_micro} micro: "
          f"{'EXACT' if r.exact else 'MISMATCH'}")
    first = r.samples[min(1, len(r.samples) - 1)] if r.samples else r.end
    last = r.samples[-1] if r.samples else r.end
    print(f"   resources (after warm-up -> last sample under load -> end): RSS MB "
          f"{first.rss_mb} -> {last.rss_mb} -> {r.end.rss_mb}; open files {first.open_fds} -> "
          f"{last.open_fds} -> {r.end.open_fds}; db connections {first.db_connections} -> "
          f"{last.db_connections} -> {r.end.db_connections}; checked out at end "
          f"{r.end.checked_out}; reservations at end {r.end.reservations}; queued "
          f"settlements {r.pending}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    ap.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    ap.add_argument("--duration", type=float, default=600.0, help="pipe phase, seconds")
    ap.add_argument("--direct", type=float, default=60.0, help="direct phase, seconds")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--chunks", type=int, default=40, help="pieces per answer")
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between pieces")
    ap.add_argument("--first-delay", type=float, default=0.2,
                    help="upstream's time to its first piece, seconds")
    ap.add_argument("--sample-every", type=float, default=30.0)
    ap.add_argument("--switch-interval", type=float, default=0.0,
                    help="sys.setswitchinterval for this process (default: leave CPython's "
                    "5 ms)")
    args = ap.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]} (switch interval {sys.getswitchinterval() * 1000:g} ms), "
          f"load {os.getloadavg()[0]:.1f}; {args.concurrency} concurrent streams, "
          f"{args.chunks} pieces {args.interval * 1000:.0f} ms apart after "
          f"{args.first_delay * 1000:.0f} ms")
    for backend in args.backend or ["sqlite"]:
        upstream = start_upstream(args.chunks, args.interval, args.first_delay)
        app_name = f"tt_soak_{uuid.uuid4().hex[:10]}" if backend == "postgresql" else None
        try:
            with scratch_database(backend, args.postgres_url, application_name=app_name) as url:
                prepare(url, args.users)
                report = asyncio.run(soak(
                    url, upstream, concurrency=args.concurrency, duration=args.duration,
                    direct=args.direct, users=args.users, backend=backend, app_name=app_name,
                    sample_every=args.sample_every))
                print_report(report)
        finally:
            upstream.close()


if __name__ == "__main__":
    main()
