"""What the benchmark scripts share: a scratch database per run, timing and percentiles."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from openwebui_token_tracking.storage.engine import dispose_engines

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def scratch_database(backend: str, postgres_url: str = DEFAULT_POSTGRES_URL, *,
                     application_name: str | None = None) -> Iterator[str]:
    """An empty SQLite file or PostgreSQL schema, removed afterwards (engines disposed).

    ``application_name`` labels the PostgreSQL connections, so that a benchmark can count
    its own in ``pg_stat_activity``."""
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "sqlite":
            try:
                yield f"sqlite:///{Path(tmp) / 'webui.db'}"
            finally:
                dispose_engines()
            return
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1),
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
        if application_name:
            url += f"&application_name={application_name}"
        try:
            yield url
        finally:
            dispose_engines()
            with admin.connect() as c:
                c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()


def timed(fn: Callable[[], object], n: int, warmup: int = 0) -> list[float]:
    """Milliseconds of each of ``n`` calls (after ``warmup`` untimed ones)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (1..99); the value itself for fewer than two."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def p50_p95(values: list[float]) -> tuple[float, float]:
    return pct(values, 50), pct(values, 95)
