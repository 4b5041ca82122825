"""Test databases: every test gets its own SQLite file or PostgreSQL schema.

Backends come from ``TT_TEST_BACKENDS`` (default ``sqlite``, plus ``postgresql`` when
``TT_TEST_POSTGRES_URL`` is set, as ``.ci/run`` does). Each PostgreSQL test gets a fresh
schema that is dropped afterwards, so nothing is left behind.

A migrated database (``engine``) is made once per run and copied per test: SQLite copies
the migrated file; PostgreSQL replays, in one round trip, the statements the migration
sent to a template schema (rendered with their parameters). The migration itself runs
on fresh databases (``db_url`` alone) in test_migrations and elsewhere.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from db_support import (  # noqa: F401  (re-exported)
    BACKENDS,
    PG_URL,
    USERS,
    create_openwebui_users,
    pg_conninfo,
)
from openwebui_token_tracking.alerts.deliverer import stop_all as stop_alert_delivery
from openwebui_token_tracking.storage import migrate
from openwebui_token_tracking.storage.engine import dispose_engines, get_engine

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def _pg_admin() -> Engine:
    url = PG_URL
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend under test, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'webui.db'}"
        stop_alert_delivery()
        dispose_engines()
        return
    schema = f"tt_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield _pg_schema_url(schema)
    finally:
        stop_alert_delivery()
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _migrate_with_users(url: str) -> None:
    migrate.upgrade(get_engine(url))
    create_openwebui_users(get_engine(url))
    dispose_engines()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once per run."""
    template = tmp_path_factory.mktemp("template") / "webui.db"
    _migrate_with_users(f"sqlite:///{template}")
    return template


@pytest.fixture(scope="session")
def pg_template_script() -> str:
    """The SQL that migrating an empty schema (and adding the stand-in users) sends,
    recorded once from a template schema, parameters rendered in."""
    schema = f"tt_template_{uuid.uuid4().hex[:12]}"
    statements: list[str] = []

    def record(conn: sa.Connection, cursor: Any, statement: str, parameters: Any,
               context: Any, executemany: bool) -> None:
        render = psycopg.ClientCursor(conn.connection.driver_connection).mogrify
        for params in (parameters if executemany else [parameters]):
            sql = render(statement, params or None)
            if schema in sql and not sql.lstrip().upper().startswith("SELECT"):
                raise AssertionError(f"a migration names its schema, cannot replay: {sql}")
            statements.append(sql)

    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = _pg_schema_url(schema)
        sa.event.listen(get_engine(url), "before_cursor_execute", record)
        _migrate_with_users(url)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
    return ";\n".join(statements)


@pytest.fixture
def engine(db_url: str, backend: str, request: pytest.FixtureRequest) -> Engine:
    """A migrated database with Open WebUI's stand-in users, ready to charge (the
    templates are asked for here, so a run without PostgreSQL never makes its own)."""
    if backend == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"),
                    db_url.removeprefix("sqlite:///"))
    else:
        script = request.getfixturevalue("pg_template_script")
        with psycopg.connect(pg_conninfo(sa.make_url(db_url))) as conn:
            conn.execute(script.encode())  # one transaction
    return get_engine(db_url)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, as Open WebUI does."""
    return "asyncio"
