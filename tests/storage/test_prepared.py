"""Hot-path reads on the driver's cursor (SQLite, PostgreSQL): same rows, same errors."""

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from openwebui_token_tracking.storage import migrate
from openwebui_token_tracking.storage.prepared import Prepared, as_uuid
from openwebui_token_tracking.storage.schema import BaseSetting

settings = BaseSetting.__table__


@pytest.fixture
def db(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(settings), [
            {"setting_key": "a", "setting_value": "1"},
            {"setting_key": "b", "setting_value": "2"}])
    return engine


def test_rows_match_sqlalchemys_and_listeners_still_see_the_statement(db):
    stmt = (sa.select(settings.c.setting_key, settings.c.setting_value)
            .where(settings.c.setting_key != sa.bindparam("skip", type_=sa.String),
                   settings.c.setting_value != "none")  # a literal: a bound value too
            .order_by(settings.c.setting_key))
    prepared = Prepared(stmt, db.dialect)
    with Session(db) as s:
        assert [tuple(r) for r in prepared.rows(s, {"skip": "b"})] == [("a", "1")]
        assert [tuple(r) for r in s.execute(stmt, {"skip": "b"})] == [("a", "1")]
    seen: list[str] = []
    sa.event.listen(db, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    with Session(db) as s:
        assert [tuple(r) for r in prepared.rows(s, {"skip": "a"})] == [("b", "2")]
    assert seen[-1] == prepared.sql  # (SQLite: after its BEGIN IMMEDIATE)


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(db):
    broken = Prepared(sa.select(sa.literal_column("x")).select_from(sa.table("tt_missing")),
                      db.dialect)
    with Session(db) as s, pytest.raises(sa.exc.DBAPIError) as raised:
        broken.rows(s, {})
    assert isinstance(raised.value.orig, db.dialect.loaded_dbapi.Error)
    assert "tt_missing" in str(raised.value.orig)
    assert not raised.value.connection_invalidated


def test_as_uuid_reads_either_backends_value():
    import uuid
    u = uuid.uuid4()
    assert as_uuid(u) is u and as_uuid(u.hex) == u and as_uuid(None) is None
