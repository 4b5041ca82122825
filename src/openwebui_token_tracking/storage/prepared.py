"""Hot-path reads compiled once per dialect and run as the driver's own SQL.

A check runs one statement; SQLAlchemy's per-execution work on it (compiled-cache
lookup, parameter and result processing, result metadata) costs more than SQLite's work
on the query. ``Prepared.rows`` runs a read on the session's connection, in its
transaction, with the driver's cursor, and keeps what matters: when something listens
for statements (``before_cursor_execute``, as tests and tracing do) the statement goes
through SQLAlchemy instead; a driver error is raised wrapped as SQLAlchemy wraps it
(and a dead connection invalidated), so retries and error translation are unchanged.
Rows hold the driver's raw values: a UUID column is a ``uuid.UUID`` on
PostgreSQL and 32 hex digits on SQLite (``as_uuid``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler


class Prepared:
    """A statement without expanding or literal parameters, compiled for one dialect."""

    def __init__(self, statement: sa.ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self._names = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._fixed = {k: v for k, v in compiled.params.items() if v is not None}
        """The statement's own values (``x == 'literal'`` becomes a bound parameter)."""

    def rows(self, session: Session, params: Mapping[str, Any]) -> list[Any]:
        """Every row of the read, run in the session's transaction; ``params`` by name."""
        values = {**self._fixed, **params}
        args: Any = (values if self._names is None
                     else tuple(values[name] for name in self._names))
        conn = session.connection()
        dispatch = conn.engine.dispatch
        if not (dispatch.before_cursor_execute or dispatch.after_cursor_execute):
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(self.sql, args)
                return list(cursor.fetchall())
            except conn.dialect.loaded_dbapi.Error as exc:
                raise self._wrapped(conn, cursor, exc, args) from exc
            finally:
                cursor.close()
        return list(conn.exec_driver_sql(self.sql, args).all())

    def _wrapped(self, conn: Connection, cursor: Any, exc: Exception, args: Any
                 ) -> sa.exc.DBAPIError:
        """The driver's error as SQLAlchemy raises it (retries and error translation
        read it); a dead connection is invalidated, as SQLAlchemy does."""
        dbapi = conn.connection.dbapi_connection
        dead = conn.dialect.is_disconnect(exc, dbapi, cursor)  # type: ignore[arg-type]
        if dead:
            conn.invalidate(exc)
        return cast(sa.exc.DBAPIError, sa.exc.DBAPIError.instance(
            self.sql, args, exc, conn.dialect.loaded_dbapi.Error,
            connection_invalidated=dead, dialect=conn.dialect))


def as_uuid(value: object) -> uuid.UUID | None:
    """A UUID column's raw value (``uuid.UUID``, or hex digits on SQLite) as a UUID."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))
