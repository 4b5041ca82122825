"""Alembic environment: our own version table, only our own tables compared."""

from __future__ import annotations

from alembic import context

from openwebui_token_tracking.storage.migrate import VERSION_TABLE, include_object
from openwebui_token_tracking.storage.schema import Base

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # pragma: no cover - only via the Python API
        raise RuntimeError("run migrations through openwebui_token_tracking.storage.migrate")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        compare_type=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():  # pragma: no cover
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
