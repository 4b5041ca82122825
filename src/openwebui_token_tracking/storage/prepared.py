"""Hot-path statements compiled once per dialect and run on the driver's cursor.

Every request runs a handful of statements (the check one; admission and settlement a
few each) whose database work is smaller than SQLAlchemy's per-execution work on them
(compiled-cache lookup, execution context, result metadata). ``run`` executes such a
statement on the session's connection, in its transaction, with the driver's cursor,
and keeps what matters:

- parameters and results go through the columns' types as SQLAlchemy would send and
  read them (``UTCDateTime``, ``Uuid`` on SQLite);
- when something listens for statements (``before_cursor_execute``, as tests and
  tracing do), the statement goes through SQLAlchemy instead;
- a driver error is raised wrapped as SQLAlchemy wraps it (a dead connection is
  invalidated), so retries and error translation are unchanged.

An INSERT only with every value given (``fixed_values``): otherwise its compiled form and
Python-side defaults depend on the values given, which SQLAlchemy handles at execution.
"""

from __future__ import annotations

import uuid
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class Ran:
    """What a statement returned: its rows (attribute access by column key) and count."""

    rows: list[Any]
    rowcount: int

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise sa.exc.NoResultFound("expected one row") if not self.rows else \
                sa.exc.MultipleResultsFound("expected one row")
        return self.rows[0]


class Prepared:
    """One statement (no expanding or literal-execute parameters) for one dialect."""

    def __init__(self, statement: sa.ClauseElement, dialect: Dialect) -> None:
        if isinstance(statement, sa.Insert):
            _check_fixed_insert(statement)
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise TypeError("a statement with expanding parameters cannot be prepared")
        self.sql = compiled.string
        self._names = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._fixed = {k: v for k, v in compiled.params.items() if v is not None}
        """The statement's own values (``x == 'literal'`` becomes a bound parameter)."""
        self._bind: dict[str, Processor] = {}
        for bind, name in compiled.bind_names.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self._bind[name] = process
        columns = list(getattr(statement, "exported_columns", ()))
        self._result: list[tuple[int, Processor]] = []
        for i, column in enumerate(columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                self._result.append((i, process))
        self._row = namedtuple("Row", [str(c.key) for c in columns], rename=True)  # type: ignore[misc]
        self._returns_rows = bool(columns)
        """Known here: asking the cursor (``description``) builds column objects."""

    def args(self, params: Mapping[str, Any]) -> Any:
        values = {**self._fixed, **params}
        for name, process in self._bind.items():
            values[name] = process(values[name])
        return values if self._names is None else tuple(values[n] for n in self._names)

    def run(self, session: Session, params: Mapping[str, Any]) -> Ran:
        """Execute in the session's transaction; ``params`` by bind name."""
        args = self.args(params)
        conn = session.connection()
        dispatch = conn.engine.dispatch
        if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
            result = conn.exec_driver_sql(self.sql, args)
            raw: list[Any] = [tuple(r) for r in result.all()] if result.returns_rows else []
            return Ran(self.rows(raw), len(raw) if raw else result.rowcount)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, args)
            raw = list(cursor.fetchall()) if self._returns_rows else []
            return Ran(self.rows(raw), len(raw) if raw else cursor.rowcount)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(conn, cursor, exc, args) from exc
        finally:
            cursor.close()

    def rows(self, raw: list[Any]) -> list[Any]:
        """The driver's raw rows as this statement's rows (result types applied)."""
        if not self._result:
            return [self._row(*r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, process in self._result:
                values[i] = process(values[i])
            out.append(self._row(*values))
        return out

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


InsertT = TypeVar("InsertT", bound=sa.Insert)


def fixed_values(insert: InsertT, table: sa.Table) -> InsertT:
    """``insert`` with a bound parameter for every column of ``table`` (the
    auto-incremented key excepted), named as the column: a fixed shape that can be
    prepared; each execution must give every value."""
    auto = table.autoincrement_column
    return insert.values({c.name: sa.bindparam(c.name, type_=c.type)
                          for c in table.columns if c is not auto})


def _check_fixed_insert(statement: sa.Insert) -> None:
    values = getattr(statement, "_values", None)
    if not values:
        raise TypeError("an INSERT without explicit values depends on the values given: "
                        "build it with fixed_values() or execute it normally")
    given = {getattr(c, "key", c) for c in values}
    table = cast(sa.Table, statement.table)
    missing = [c.name for c in table.columns
               if c.key not in given and (c.default is not None or c.onupdate is not None)]
    if missing:
        raise TypeError(f"an INSERT leaving out columns with Python defaults ({missing}) "
                        "cannot be prepared")


_prepared: dict[tuple[int, str], tuple[sa.ClauseElement, Prepared]] = {}


def prepared(session: Session, statement: sa.ClauseElement) -> Prepared:
    """``statement`` compiled for the session's dialect, once (a module-level statement:
    the cache holds it, so its id stays its own)."""
    return prepared_for(session.get_bind().dialect, statement)


def prepared_for(dialect: Dialect, statement: sa.ClauseElement) -> Prepared:
    """``prepared`` for a dialect (a statement run through another driver)."""
    key = (id(statement), dialect.name)
    hit = _prepared.get(key)
    if hit is None:
        hit = _prepared[key] = (statement, Prepared(statement, dialect))
    return hit[1]


def run(session: Session, statement: sa.ClauseElement, params: Mapping[str, Any]) -> Ran:
    """Execute a module-level statement of the hot path (see the module's doc)."""
    return prepared(session, statement).run(session, params)


def as_uuid(value: object) -> uuid.UUID | None:
    """A UUID column's raw value (``uuid.UUID``, or hex digits on SQLite) as a UUID."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))
