"""Fixtures of the fault tests: a priced database, a local fake upstream, an outage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fault_support import (
    Answer,
    FakeUpstream,
    LockHolder,
    TcpProxy,
    price_model,
    proxied,
    short_lock_wait,
)
from sqlalchemy.engine import Engine

__all__ = ["short_lock_wait"]


@pytest.fixture
def priced(engine: Engine) -> Engine:
    price_model(engine)
    return engine


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream(Answer(chunks=10))
    yield server
    server.close()


@pytest.fixture
def slow_upstream() -> Iterator[FakeUpstream]:
    """Ten pieces, 50 ms apart: time to break things mid-stream."""
    server = FakeUpstream(Answer(chunks=10, interval_s=0.05))
    yield server
    server.close()


class Outage:
    """The database as the pipe sees it (``url``), and a way to take it down.

    PostgreSQL: a TCP proxy is cut (connections reset, new ones refused). SQLite: another
    connection holds the write lock longer than a request may wait (the file itself
    cannot vanish under an open connection).
    """

    def __init__(self, backend: str, url: str, proxy: TcpProxy | None) -> None:
        self.backend, self.url, self.proxy = backend, url, proxy
        self.holder = LockHolder(url) if proxy is None else None

    def down(self) -> None:
        if self.proxy is not None:
            self.proxy.cut()
        else:
            assert self.holder is not None
            self.holder.hold()

    def up(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        else:
            assert self.holder is not None
            self.holder.release()


@pytest.fixture
def outage(backend: str, db_url: str, priced: Engine, short_lock_wait: float
           ) -> Iterator[Outage]:
    with ExitStack() as stack:
        if backend == "postgresql":
            proxy, url = stack.enter_context(proxied(db_url))
            the_outage = Outage(backend, url, proxy)
        else:
            the_outage = Outage(backend, db_url, None)
        yield the_outage
        if the_outage.holder is not None:
            the_outage.holder.release()
