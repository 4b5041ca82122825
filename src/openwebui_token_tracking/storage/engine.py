"""Database URLs resolved as Open WebUI resolves them, and one engine per URL per process."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import ConfigurationError

logger = logging.getLogger(__name__)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()

SQLITE_BUSY_TIMEOUT_S = 30.0


def default_database_url(environ: Mapping[str, str] | None = None) -> str:
    """``DATABASE_URL`` if set, else Open WebUI's SQLite default ``DATA_DIR/webui.db``.

    ``DATA_DIR`` defaults to ``./data`` (Open WebUI's own default lies inside its
    installed package; set ``DATA_DIR`` or ``DATABASE_URL`` to share its database).
    """
    env = os.environ if environ is None else environ
    url = env.get("DATABASE_URL", "").strip()
    if url:
        return url
    data_dir = Path(env.get("DATA_DIR", "./data")).expanduser().resolve()
    return f"sqlite:///{data_dir / 'webui.db'}"


def normalize_url(url: str | URL) -> URL:
    """Parse a URL; accept ``postgres://`` and plain ``postgresql://`` (psycopg 3)."""
    if isinstance(url, URL):
        parsed = url
    else:
        text = url.strip()
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        try:
            parsed = make_url(text)
        except ArgumentError as exc:
            raise ConfigurationError(
                f"DATABASE_URL is not a database URL: {redact(text)!r}; "
                "expected e.g. sqlite:///path/webui.db or postgresql://user@host/db"
            ) from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"unsupported database {backend!r}: use SQLite or PostgreSQL, as Open WebUI does"
        )
    return parsed


def redact(url: str | URL) -> str:
    """The URL with its password masked, safe to log or print."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparseable url>"
    return parsed.render_as_string(hide_password=True)


def sqlite_wal_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Open WebUI's own switch ``DATABASE_ENABLE_SQLITE_WAL`` (default true since 0.6.x).

    Following it keeps our connections in the journal mode Open WebUI uses for the same
    file: WAL with ``synchronous=NORMAL``, where a commit needs no fsync.
    """
    env = os.environ if environ is None else environ
    return env.get("DATABASE_ENABLE_SQLITE_WAL", "true").strip().lower() == "true"


def _sqlite_connect_hook(wal: bool):  # type: ignore[no-untyped-def]
    def on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy (not the driver) open transactions, so that "begin" below can
        # emit BEGIN IMMEDIATE: a writer takes the write lock up front and waits for it
        # (busy_timeout) instead of failing with "database is locked" on upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        if wal:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()
    return on_connect


def read_only_options(engine: Engine) -> dict[str, str]:
    """Execution options for a read-only unit of work.

    SQLite: a deferred BEGIN (no write lock). PostgreSQL: autocommit, saving the COMMIT
    round trip; each read then sees the latest committed state.
    """
    if engine.dialect.name == "sqlite":
        return {"sqlite_begin": "BEGIN"}
    return {"isolation_level": "AUTOCOMMIT"}


def _on_sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN IMMEDIATE"))


def create_engine_for(url: str | URL) -> Engine:
    """A new engine (prefer :func:`get_engine`, which caches one per URL)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        )
        sa.event.listen(engine, "connect", _sqlite_connect_hook(sqlite_wal_enabled()))
        sa.event.listen(engine, "begin", _on_sqlite_begin)
    else:
        engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    return engine


def get_engine(url: str | URL | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: :func:`default_database_url`)."""
    parsed = normalize_url(default_database_url() if url is None else url)
    key = parsed.render_as_string(hide_password=False)
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_engine_for(parsed)
            _engines[key] = engine
            logger.debug("created engine for %s", redact(parsed))
    return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, and after fork in a worker process)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
