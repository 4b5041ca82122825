"""Real faults for the fault tests: a TCP proxy that cuts PostgreSQL off, a second
connection that holds the write lock (as Open WebUI's own writes do), the local fake
upstream (``bench/sse_upstream.py``) and readers of the ledger."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from db_support import pg_conninfo
from openwebui_token_tracking.openwebui.pipe import TrackedPipe
from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe
from openwebui_token_tracking.storage import engine as engine_module
from openwebui_token_tracking.storage.engine import dispose_engines, read_only_options
from openwebui_token_tracking.storage.prices import PriceInput, set_price
from openwebui_token_tracking.storage.schema import BudgetCounter, Reservation, TokenUsageLog

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from sse_upstream import Answer, FakeUpstream  # noqa: E402

__all__ = ["Answer", "FakeUpstream"]

MODEL = "fake-gpt"
PRICE = PriceInput(input_cost_credits=1000, per_input_tokens=1_000_000,
                   output_cost_credits=4000, per_output_tokens=1_000_000)
"""1 credit per 1k input tokens, 4 per 1k output tokens: 1000 / 4000 micro per token."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ALICE = {"id": "u-alice", "name": "Alice", "email": "alice@example.edu", "role": "user"}
SHORT_LOCK_WAIT_S = 0.4


def price_model(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        set_price(s, provider="openai", model_id=MODEL, name="Fake GPT", price=PRICE,
                  now=EPOCH, effective_from=EPOCH)


def micro(input_tokens: int, output_tokens: int) -> int:
    return input_tokens * 1000 + output_tokens * 4000


@asynccontextmanager
async def open_pipe(db_url: str, upstream_url: str, **valves: Any
                    ) -> AsyncIterator[TrackedPipe]:
    """The OpenAI pipe as an admin configures it, against the local fake upstream."""
    pipe = OpenAITrackedPipe()
    pipe.valves = pipe.Valves(DATABASE_URL=db_url, API_KEY="sk-fake",
                              API_BASE_URL=upstream_url, **valves)
    try:
        yield pipe
    finally:
        if pipe._client is not None:
            await pipe._client.aclose()


def request(text: str = "What is the capital of France?", stream: bool = True,
            **extra: Any) -> dict[str, Any]:
    return {"model": f"tt_openai.{MODEL}", "stream": stream,
            "messages": [{"role": "user", "content": text}], **extra}


async def drain(gen: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in gen]


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A session that only reads (no write lock on SQLite, so it works during a lock)."""
    with Session(engine, expire_on_commit=False) as s:
        s.connection(execution_options=read_only_options(engine))
        yield s


def ledger(engine: Engine) -> list[TokenUsageLog]:
    with reading(engine) as s:
        return list(s.scalars(sa.select(TokenUsageLog).order_by(TokenUsageLog.id)))


def reservations(engine: Engine) -> list[Reservation]:
    with reading(engine) as s:
        return list(s.scalars(sa.select(Reservation)))


def counters(engine: Engine) -> dict[str, tuple[int, int]]:
    with reading(engine) as s:
        return {f"{c.scope}:{c.subject}": (c.spent_micro, c.reserved_micro)
                for c in s.scalars(sa.select(BudgetCounter))}


@pytest.fixture
def short_lock_wait(monkeypatch: pytest.MonkeyPatch) -> float:
    """Lock waits of ``SHORT_LOCK_WAIT_S`` on connections made from now on."""
    monkeypatch.setattr(engine_module, "LOCK_WAIT_S", SHORT_LOCK_WAIT_S)
    for cached in list(engine_module._engines.values()):
        cached.dispose()  # pooled connections keep the old wait; new ones get the short one
    return SHORT_LOCK_WAIT_S


class LockHolder:
    """Another connection holding the write lock, as a long Open WebUI write would.

    SQLite: ``BEGIN IMMEDIATE`` plus a write to Open WebUI's ``user`` table (readers go
    on, writers wait). PostgreSQL: our ledger tables locked ``IN EXCLUSIVE MODE``
    (reads go on, writes wait).
    """

    def __init__(self, db_url: str) -> None:
        self.url = make_url(db_url)
        self._release = threading.Event()
        self._held = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, seconds: float | None = None) -> LockHolder:
        self._release.clear()
        self._held.clear()
        self._thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self._thread.start()
        assert self._held.wait(10), "could not take the lock"
        return self

    def release(self) -> None:
        self._release.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self, seconds: float | None) -> None:
        if self.url.get_backend_name() == "sqlite":
            conn = sqlite3.connect(self.url.database or "", isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE user SET name = name WHERE id = 'u-admin'")
            self._held.set()
            self._release.wait(seconds)
            conn.execute("COMMIT")
            conn.close()
            return
        with psycopg.connect(pg_conninfo(self.url)) as conn:
            conn.execute("LOCK TABLE token_tracking_budget_counter, token_tracking_reservation,"
                         " token_tracking_usage_log IN EXCLUSIVE MODE")
            self._held.set()
            self._release.wait(seconds)


class TcpProxy:
    """127.0.0.1:port -> PostgreSQL, which a test can cut off and restore.

    ``cut`` closes every open connection and refuses new ones (the server is gone);
    ``drop_after_commit`` forwards the next COMMIT (or the next message holding
    ``marker``), lets the server run it, and then drops the connection before its
    answer comes back: the client cannot know whether its transaction committed.
    """

    COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._drop_next_commit = False
        self._marker = self.COMMIT
        self.commits_dropped = 0
        self.port = 0
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)  # shutdown wakes the accepting thread; close alone may not
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            _close(s)

    def drop_after_commit(self, marker: bytes | None = None) -> None:
        self._marker = marker or self.COMMIT
        self._drop_next_commit = True

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._socks |= {client, server}
            muted = threading.Event()  # set: the server's answers are no longer passed on
            threading.Thread(target=self._pump, args=(client, server, muted, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, muted, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, muted: threading.Event,
              from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client and self._drop_next_commit and self._marker in data:
                    self._drop_next_commit = False
                    self.commits_dropped += 1
                    muted.set()
                    dst.sendall(data)
                    time.sleep(0.2)  # the server commits; its answer never comes back
                    return
                if muted.is_set():
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


@contextmanager
def proxied(db_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of the PostgreSQL of ``db_url``, and the URL through it."""
    url = make_url(db_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False)
    finally:
        dispose_engines()
        proxy.close()


async def max_tick_gap(work: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``work`` while a 5 ms ticker runs: the ticker's longest gap, and the result."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        result = await work()
    finally:
        stop.set()
        await task
    return max(gaps), result
