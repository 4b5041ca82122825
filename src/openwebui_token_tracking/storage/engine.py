"""Database URLs resolved as Open WebUI resolves them, and one engine per URL per process."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import ConfigurationError

logger = logging.getLogger(__name__)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()

LOCK_WAIT_S = 5.0
"""How long one statement waits for a lock another connection holds (SQLite's
``busy_timeout``, PostgreSQL's ``lock_timeout``) before failing as transient.

Open WebUI's own writes hold SQLite's write lock for milliseconds; a lock held longer
is a migration, a VACUUM or a stuck writer. A request that waited this long fails
closed (admission) or is retried with backoff (settlement, see ``storage.retry``)
instead of holding a worker thread for the old 30 s. Migrations wait longer
(``MIGRATION_LOCK_WAIT_S``)."""

MIGRATION_LOCK_WAIT_S = 60.0
CONNECT_TIMEOUT_S = 5
"""PostgreSQL connect timeout unless the URL sets ``connect_timeout`` (libpq's default
waits for the operating system, minutes on a dropped network)."""

PING_AFTER_IDLE_S = 10.0
"""A pooled connection idle longer than this is pinged before use. Busier connections
are not (a ping is a round trip per request); if one was dropped meanwhile, the first
statement fails as a disconnect and ``Accountant.run`` retries the unit of work once
on a fresh connection (see ``storage.retry``)."""


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
        cur.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        if wal:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()
    return on_connect


def read_only_options(engine: Engine) -> dict[str, str]:
    """Execution options for a read-only unit of work: each statement reads the latest
    committed state on its own, without a transaction around them.

    SQLite: no BEGIN at all (no write lock, and no BEGIN/COMMIT to pay). PostgreSQL:
    autocommit, saving the COMMIT round trip.
    """
    if engine.dialect.name == "sqlite":
        return {"sqlite_begin": ""}
    return {"isolation_level": "AUTOCOMMIT"}


def _on_sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    begin = conn.get_execution_options().get("sqlite_begin", "BEGIN IMMEDIATE")
    if begin:
        conn.exec_driver_sql(begin)


_write_gates: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


def write_gate(engine: Engine) -> threading.RLock | None:
    """The lock a process's SQLite writers queue on (None for PostgreSQL).

    SQLite runs one write transaction at a time. Threads that find the file locked wait
    in SQLite's busy handler, which sleeps in growing steps (up to 100 ms) between tries,
    so under load a write can wait far longer than the writes ahead of it take. Writers
    of one process wait here instead and start the moment the lock is free; the busy
    handler is left for other processes (Open WebUI itself).
    """
    if engine.dialect.name != "sqlite":
        return None
    with _lock:
        gate = _write_gates.get(engine)
        if gate is None:
            gate = _write_gates[engine] = threading.RLock()
    return gate


def _pg_connect_hook(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    """Bound lock waits on our connections (see ``LOCK_WAIT_S``)."""
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    with dbapi_conn.cursor() as cur:
        cur.execute(f"SET lock_timeout = {int(LOCK_WAIT_S * 1000)}")
    dbapi_conn.autocommit = autocommit


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection only when it sat idle (``PING_AFTER_IDLE_S``).

    A dead connection found here is replaced by the pool before anyone uses it.
    """
    def on_checkout(dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        idle_since = record.info.get("tt_checked_in")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError(f"idle connection is gone: {exc}") from exc
        if not alive:
            raise sa.exc.DisconnectionError("idle connection is gone")

    def on_checkin(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        if record is not None:
            record.info["tt_checked_in"] = time.monotonic()

    sa.event.listen(engine, "checkout", on_checkout)
    sa.event.listen(engine, "checkin", on_checkin)


def create_engine_for(url: str | URL) -> Engine:
    """A new engine (prefer :func:`get_engine`, which caches one per URL)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"timeout": LOCK_WAIT_S, "check_same_thread": False}
        )
        sa.event.listen(engine, "connect", _sqlite_connect_hook(sqlite_wal_enabled()))
        sa.event.listen(engine, "begin", _on_sqlite_begin)
    else:
        connect_args = ({} if "connect_timeout" in parsed.query
                        else {"connect_timeout": CONNECT_TIMEOUT_S})
        engine = sa.create_engine(parsed, pool_size=5, max_overflow=10,
                                  connect_args=connect_args)
        sa.event.listen(engine, "connect", _pg_connect_hook)
    _ping_idle_connections(engine)
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
