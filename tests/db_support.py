"""Helpers for tests that need Open WebUI's ``user`` table (a uniquely named module, so
it never clashes with the several ``conftest.py`` files)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from openwebui_token_tracking.storage.openwebui_tables import openwebui_metadata, user_table

USERS = [
    {"id": "u-alice", "name": "Alice", "email": "alice@example.edu", "role": "user"},
    {"id": "u-bob", "name": "Bob", "email": "bob@example.edu", "role": "user"},
    {"id": "u-admin", "name": "Ada Admin", "email": "admin@example.edu", "role": "admin"},
]


def create_openwebui_users(engine: Engine, users: list[dict[str, str]] = USERS) -> None:
    """A stand-in for Open WebUI's ``user`` table (tests only; we never create it)."""
    openwebui_metadata.create_all(engine, tables=[user_table])
    with engine.begin() as conn:
        conn.execute(sa.insert(user_table), users)
