"""The backends under test, and helpers for tests that need Open WebUI's ``user``,
``group`` and ``group_member`` tables (a uniquely named module, so it never clashes with
the several ``conftest.py`` files)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from openwebui_token_tracking.storage.openwebui_groups import forget_probes
from openwebui_token_tracking.storage.openwebui_tables import (
    group_member_table,
    group_table,
    openwebui_metadata,
    user_table,
)

PG_URL = os.environ.get("TT_TEST_POSTGRES_URL", "")


def _backends() -> list[str]:
    configured = os.environ.get("TT_TEST_BACKENDS")
    if configured:
        names = [b.strip() for b in configured.split(",") if b.strip()]
    else:
        names = ["sqlite"] + (["postgresql"] if PG_URL else [])
    if "postgresql" in names and not PG_URL:
        raise pytest.UsageError("TT_TEST_BACKENDS asks for postgresql: set TT_TEST_POSTGRES_URL")
    return names


BACKENDS = _backends()
"""The backends under test (``conftest.py``'s doc)."""

USERS = [
    {"id": "u-alice", "name": "Alice", "email": "alice@example.edu", "role": "user"},
    {"id": "u-bob", "name": "Bob", "email": "bob@example.edu", "role": "user"},
    {"id": "u-admin", "name": "Ada Admin", "email": "admin@example.edu", "role": "admin"},
]


def pg_conninfo(url: sa.URL) -> str:
    """A libpq URL for psycopg from a SQLAlchemy URL (options such as search_path kept)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def create_openwebui_users(engine: Engine, users: list[dict[str, str]] = USERS) -> None:
    """A stand-in for Open WebUI's ``user`` table (tests only; we never create it)."""
    openwebui_metadata.create_all(engine, tables=[user_table])
    with engine.begin() as conn:
        conn.execute(sa.insert(user_table), users)


def create_openwebui_groups(engine: Engine, groups: dict[str, str | None],
                            members: dict[str, list[str]], *, nested: bool = True) -> None:
    """Stand-ins for Open WebUI's ``group`` and ``group_member`` tables (tests only).

    ``groups`` maps a group id to its parent's id (None: top level), its name is the id
    capitalised; ``members`` maps a group id to user ids. ``nested=False`` builds
    Open WebUI 0.6-0.11's ``group`` table, which has no ``parent_group_id``.
    """
    if nested:
        openwebui_metadata.create_all(engine, tables=[group_table, group_member_table])
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql('CREATE TABLE "group" (id TEXT PRIMARY KEY, user_id TEXT, '
                                 'name TEXT, description TEXT, created_at BIGINT, '
                                 'updated_at BIGINT)')
        openwebui_metadata.create_all(engine, tables=[group_member_table])
    with engine.begin() as conn:
        for gid, parent in groups.items():
            row = {"id": gid, "user_id": "u-admin", "name": gid.capitalize(),
                   "description": "", "created_at": 0, "updated_at": 0}
            if nested:
                row["parent_group_id"] = parent
            conn.execute(sa.text(f'INSERT INTO "group" ({", ".join(row)}) '
                                 f'VALUES ({", ".join(":" + k for k in row)})'), row)
        for gid, users in members.items():
            for user_id in users:
                conn.execute(sa.insert(group_member_table).values(
                    id=f"{gid}-{user_id}", group_id=gid, user_id=user_id, created_at=0,
                    updated_at=0))
    forget_probes()
