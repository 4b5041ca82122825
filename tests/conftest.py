"""Test databases: every test gets its own SQLite file or PostgreSQL schema.

Backends come from ``TT_TEST_BACKENDS`` (default ``sqlite``, plus ``postgresql`` when
``TT_TEST_POSTGRES_URL`` is set, as ``.ci/run`` does). Each PostgreSQL test gets a fresh
schema that is dropped afterwards, so nothing is left behind.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from db_support import (  # noqa: F401  (re-exported)
    BACKENDS,
    PG_URL,
    USERS,
    create_openwebui_users,
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


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend under test, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'webui.db'}"
        stop_alert_delivery()
        dispose_engines()
        return
    schema = f"tt_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
                             if PG_URL.startswith("postgresql://") else PG_URL,
                             isolation_level="AUTOCOMMIT")
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


_sqlite_template: dict[str, Path] = {}


@pytest.fixture
def engine(db_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """A migrated database with Open WebUI's stand-in users, ready to charge."""
    if backend == "sqlite":
        # Migrating once and copying the file keeps the suite fast; the migration itself
        # is tested on a fresh database in test_migrations.
        template = _sqlite_template.get("t")
        if template is None:
            template = tmp_path_factory.mktemp("template") / "webui.db"
            eng = sa.create_engine(f"sqlite:///{template}")
            migrate.upgrade(get_engine(f"sqlite:///{template}"))
            create_openwebui_users(eng)
            eng.dispose()
            dispose_engines()
            _sqlite_template["t"] = template
        shutil.copy(template, db_url.removeprefix("sqlite:///"))
        return get_engine(db_url)
    eng = get_engine(db_url)
    migrate.upgrade(eng)
    create_openwebui_users(eng)
    return eng


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, as Open WebUI does."""
    return "asyncio"
