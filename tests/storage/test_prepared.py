"""Hot-path statements on the driver's cursor (SQLite, PostgreSQL): same rows, same
types, same errors as through SQLAlchemy."""

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from db_support import BACKENDS
from openwebui_token_tracking.storage import migrate
from openwebui_token_tracking.storage.prepared import Prepared, as_uuid, fixed_values, run
from openwebui_token_tracking.storage.schema import BaseSetting, Reservation

settings = BaseSetting.__table__
reservations = Reservation.__table__
AT = datetime(2026, 12, 5, 3, 0, 0, 123456, tzinfo=UTC)
SPONSOR = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.fixture
def db(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(settings), [
            {"setting_key": "a", "setting_value": "1"},
            {"setting_key": "b", "setting_value": "2"}])
        conn.execute(sa.insert(reservations).values(
            id="r1", user_id="u", provider="p", model_id="m", estimate_micro=5,
            sponsored_allowance_id=SPONSOR, created_at=AT, expires_at=AT, window_start=0))
    return engine


def listen(engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    return seen


def test_rows_match_sqlalchemys_and_listeners_still_see_the_statement(db):
    stmt = (sa.select(settings.c.setting_key, settings.c.setting_value)
            .where(settings.c.setting_key != sa.bindparam("skip", type_=sa.String),
                   settings.c.setting_value != "none")  # a literal: a bound value too
            .order_by(settings.c.setting_key))
    prepared = Prepared(stmt, db.dialect)
    with Session(db) as s:
        assert [tuple(r) for r in prepared.run(s, {"skip": "b"}).rows] == [("a", "1")]
        assert [tuple(r) for r in s.execute(stmt, {"skip": "b"})] == [("a", "1")]
    seen = listen(db)
    with Session(db) as s:
        [row] = prepared.run(s, {"skip": "a"}).rows
    assert (row.setting_key, row.setting_value) == ("b", "2")
    assert seen[-1] == prepared.sql  # (SQLite: after its BEGIN IMMEDIATE)


@pytest.mark.parametrize("listened", [False, True])
def test_values_go_through_the_column_types_both_ways(db, listened):
    if listened:
        listen(db)
    at = sa.bindparam("at", type_=reservations.c.created_at.type)
    take = (sa.delete(reservations).where(reservations.c.created_at == at)
            .returning(reservations.c.id, reservations.c.created_at,
                       reservations.c.sponsored_allowance_id))
    with Session(db) as s:
        assert run(s, take, {"at": AT.replace(microsecond=0)}).rows == []
        done = run(s, take, {"at": AT})  # an aware instant finds the stored one
        s.commit()
    assert done.rowcount == 1
    [row] = done.rows
    assert row.id == "r1" and row.created_at == AT and row.created_at.tzinfo is not None
    assert row.sponsored_allowance_id == SPONSOR


def test_an_update_reports_the_rows_it_matched(db):
    bump = (sa.update(settings).where(settings.c.setting_key.in_(["a", "b"]))
            .values(setting_value=sa.bindparam("v", type_=sa.String)))
    with pytest.raises(TypeError, match="expanding"):
        Prepared(bump, db.dialect)
    bump = sa.update(settings).where(settings.c.setting_key != "zzz").values(
        setting_value=sa.bindparam("v", type_=sa.String))
    with Session(db) as s:
        assert run(s, bump, {"v": "x"}).rowcount == 2
        s.commit()
    with pytest.raises(TypeError, match="INSERT"):
        Prepared(sa.insert(settings), db.dialect)


def test_an_insert_with_every_value_given_runs_prepared(db):
    insert = fixed_values(sa.insert(reservations), reservations).returning(
        reservations.c.id, reservations.c.created_at)
    values = {c.name: None for c in reservations.columns}
    values.update(id="r2", user_id="u", provider="p", model_id="m", estimate_micro=7,
                  window_start=0, created_at=AT, expires_at=AT, estimate_input_tokens=1,
                  estimate_output_tokens=2, rate_tokens=0, sponsored_allowance_id=SPONSOR)
    with Session(db) as s:
        [row] = run(s, insert, values).rows
        s.commit()
    assert row.id == "r2" and row.created_at == AT
    with db.connect() as c:
        stored = c.execute(sa.select(reservations).where(reservations.c.id == "r2")).one()
    assert stored.sponsored_allowance_id == SPONSOR and stored.estimate_micro == 7
    with Session(db) as s, pytest.raises(KeyError):  # every value must be given
        run(s, insert, {"id": "r3"})
    defaults = sa.Table("tt_defaults", sa.MetaData(), sa.Column("a", sa.Integer),
                        sa.Column("b", sa.Integer, default=1))
    with pytest.raises(TypeError, match="Python defaults"):
        Prepared(sa.insert(defaults).values(a=sa.bindparam("a")), db.dialect)


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(db):
    broken = Prepared(sa.select(sa.literal_column("x")).select_from(sa.table("tt_missing")),
                      db.dialect)
    with Session(db) as s, pytest.raises(sa.exc.DBAPIError) as raised:
        broken.run(s, {})
    assert isinstance(raised.value.orig, db.dialect.loaded_dbapi.Error)
    assert "tt_missing" in str(raised.value.orig)
    assert not raised.value.connection_invalidated


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_long_statement_is_not_parsed_per_execution_on_postgresql(db, monkeypatch):
    """psycopg re-parses a ``%(name)s`` query on every execution past 4 KiB or 50
    parameters (its cache stops there), as the check and admission statements are: they
    run with ``$n`` placeholders on a raw cursor, which psycopg sends as they are."""
    import psycopg._queries

    wide = sa.union_all(*[
        sa.select(settings.c.setting_key, sa.literal_column(f"'{i}%'").label("pct"))
        .where(settings.c.setting_key == sa.bindparam(f"key{i}", type_=sa.String),
               settings.c.setting_value.like("%"))  # a literal percent sign survives
        for i in range(60)])
    prepared = Prepared(wide, db.dialect)
    assert len(prepared.sql) > 4096 and "$60" in prepared.driver_sql

    def parsed(*_args, **_kw):
        raise AssertionError("psycopg parsed the statement")

    monkeypatch.setattr(psycopg._queries, "_query2pg_nocache", parsed)
    params = {f"key{i}": "ab"[i % 2] for i in range(60)}
    with Session(db) as s:
        rows = prepared.run(s, params).rows
    assert sorted(tuple(r) for r in rows) == sorted(
        [("a", f"{i}%") for i in range(0, 60, 2)] + [("b", f"{i}%") for i in range(1, 60, 2)])


def test_as_uuid_reads_either_backends_value():
    u = uuid.uuid4()
    assert as_uuid(u) is u and as_uuid(u.hex) == u and as_uuid(None) is None
