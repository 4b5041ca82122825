"""Open WebUI 0.12's API keys and workspace models, read (never written) for the gateway.

Open WebUI 0.12 stores each user's API key (``sk-...``) in its ``api_key`` table
(``user_id``, ``key``, ``expires_at`` in epoch seconds) and resolves a key with a join
on ``user``; whether keys are accepted at all is the ``auth.enable_api_keys`` row of its
per-key ``config`` table. Workspace models are rows of ``model`` with a
``base_model_id``; who may use one is ``access_grant`` (``resource_type='model'``,
principals ``user``, ``group`` via ``group_member``, or ``anyone``).

These tables are declared in their own ``MetaData`` (like ``openwebui_tables``) so our
migrations never touch them; tests create stand-ins from here. Functions take a
``Session``; a missing table raises the driver's error, which callers treat as "this
Open WebUI does not have it".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .engine import read_only_options
from .openwebui_tables import user_table

T = TypeVar("T")

access_metadata = sa.MetaData()

api_key_table = sa.Table(
    "api_key", access_metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("expires_at", sa.BigInteger),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

config_table = sa.Table(
    "config", access_metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.BigInteger),
)

model_table = sa.Table(
    "model", access_metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text),
    sa.Column("base_model_id", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("params", sa.JSON),
    sa.Column("meta", sa.JSON),
    sa.Column("is_active", sa.Boolean),
)

access_grant_table = sa.Table(
    "access_grant", access_metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("resource_type", sa.Text, nullable=False),
    sa.Column("resource_id", sa.Text, nullable=False),
    sa.Column("principal_type", sa.Text, nullable=False),
    sa.Column("principal_id", sa.Text, nullable=False),
    sa.Column("permission", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

group_member_table = sa.Table(
    "group_member", access_metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("group_id", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
)


def optional_read(session: Session, work: Callable[[Session], T]) -> T | None:
    """``work`` on Open WebUI's tables in a read-only session of its own; None when the
    tables are not there (a failed statement must not abort the caller's transaction,
    and a read must not wait for the caller's SQLite write lock)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    try:
        with Session(engine) as own:
            own.connection(execution_options=read_only_options(engine))
            return work(own)
    except sa.exc.SQLAlchemyError:
        return None


@dataclass(frozen=True)
class KeyOwner:
    """The user an API key belongs to, as Open WebUI's tables say."""

    user_id: str
    name: str
    role: str | None
    timezone: str | None
    expired: bool


_BY_KEY = (
    sa.select(user_table.c.id, user_table.c.name, user_table.c.role, user_table.c.timezone,
              api_key_table.c.expires_at)
    .join(api_key_table, api_key_table.c.user_id == user_table.c.id)
    .where(api_key_table.c.key == sa.bindparam("key"))
)


def key_owner(session: Session, api_key: str, now: datetime) -> KeyOwner | None:
    """The owner of ``api_key``, None if Open WebUI has no such key."""
    row = session.execute(_BY_KEY, {"key": api_key}).first()
    if row is None:
        return None
    expired = row.expires_at is not None and now.timestamp() >= row.expires_at
    return KeyOwner(str(row.id), str(row.name or row.id), row.role, row.timezone, expired)


def api_keys_enabled(session: Session) -> bool:
    """False only when Open WebUI's stored config turns API keys off."""
    value = session.execute(sa.select(config_table.c.value)
                            .where(config_table.c.key == "auth.enable_api_keys")).scalar()
    return value is not False and str(value).lower() != "false"


def user_timezone_name(session: Session, user_id: str) -> str | None:
    return session.execute(sa.select(user_table.c.timezone)
                           .where(user_table.c.id == user_id)).scalar()


@dataclass(frozen=True)
class WorkspaceModel:
    id: str
    name: str
    owner_id: str | None
    base_model_id: str
    params: Any
    meta: Any


def _workspace(row: sa.Row[Any]) -> WorkspaceModel:
    return WorkspaceModel(str(row.id), str(row.name or row.id), row.user_id,
                          str(row.base_model_id), row.params, row.meta)


_ACTIVE = sa.and_(model_table.c.base_model_id.is_not(None),
                  sa.func.coalesce(model_table.c.is_active, sa.true()))


def workspace_models(session: Session) -> list[WorkspaceModel]:
    """Every active workspace model (a model row with a base model)."""
    rows = session.execute(sa.select(model_table).where(_ACTIVE).order_by(model_table.c.id))
    return [_workspace(r) for r in rows]


def readable_models(session: Session, user_id: str, model_ids: list[str]) -> set[str]:
    """Which of ``model_ids`` an access grant lets ``user_id`` read (directly, through
    a group it is a member of, or granted to anyone). Owners and admins are the
    caller's check; inherited (parent) groups are not followed."""
    if not model_ids:
        return set()
    g = access_grant_table.c
    groups = sa.select(group_member_table.c.group_id).where(
        group_member_table.c.user_id == user_id)
    who = sa.or_(
        g.principal_type == "anyone",
        sa.and_(g.principal_type == "user", g.principal_id.in_([user_id, "*"])),
        sa.and_(g.principal_type == "group", g.principal_id.in_(groups)),
    )
    rows = session.execute(sa.select(g.resource_id).where(
        g.resource_type == "model", g.resource_id.in_(model_ids),
        g.permission.in_(["read", "write"]), who))
    return {str(r[0]) for r in rows}
