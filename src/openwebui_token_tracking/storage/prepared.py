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

On psycopg the statement is also compiled with ``$n`` placeholders and run on a raw
cursor (``driver_sql``, ``driver_args``, ``cursor``): psycopg parses a ``%(name)s``
query on every execution when it is longer than 4 KiB or has more than 50 parameters
(its cache stops there), which the check and admission statements are; profiled, that
parsing was about a third of an admission's CPU in the gateway.
"""

from __future__ import annotations

import copy
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
        self.raw = dialect.driver == "psycopg"
        self.driver_sql, self._driver_names = self.sql, self._names
        if self.raw:
            numbered = copy.copy(dialect)
            numbered.paramstyle, numbered.positional = "numeric_dollar", True
            numbered.identifier_preparer = numbered.preparer(numbered)  # no '%%' escaping
            again = cast(SQLCompiler, statement.compile(dialect=numbered))
            self.driver_sql, self._driver_names = again.string, tuple(again.positiontup or ())

    def args(self, params: Mapping[str, Any]) -> Any:
        """The parameters of ``sql`` (SQLAlchemy's form, for ``exec_driver_sql``)."""
        return self._ordered(params, self._names)

    def driver_args(self, params: Mapping[str, Any]) -> Any:
        """The parameters of ``driver_sql``, run on ``cursor(...)``."""
        return self._ordered(params, self._driver_names)

    def _ordered(self, params: Mapping[str, Any], names: tuple[str, ...] | None) -> Any:
        values = {**self._fixed, **params}
        for name, process in self._bind.items():
            values[name] = process(values[name])
        return values if names is None else tuple(values[n] for n in names)

    def cursor(self, dbapi_connection: Any) -> Any:
        """A cursor of the driver's connection (sync or async) for ``driver_sql``."""
        if not self.raw:
            return dbapi_connection.cursor()
        import psycopg

        if isinstance(dbapi_connection, psycopg.AsyncConnection):
            return psycopg.AsyncRawCursor(dbapi_connection)
        return psycopg.RawCursor(dbapi_connection)

    def run(self, session: Session, params: Mapping[str, Any]) -> Ran:
        """Execute in the session's transaction; ``params`` by bind name."""
        conn = session.connection()
        dispatch = conn.engine.dispatch
        if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
            result = conn.exec_driver_sql(self.sql, self.args(params))
            raw: list[Any] = [tuple(r) for r in result.all()] if result.returns_rows else []
            return Ran(self.rows(raw), len(raw) if raw else result.rowcount)
        args = self.driver_args(params)
        cursor = self.cursor(conn.connection.dbapi_connection)
        try:
            cursor.execute(self.driver_sql, args)
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
            self.driver_sql, args, exc, conn.dialect.loaded_dbapi.Error,
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
