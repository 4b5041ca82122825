"""Migration 0012 (gateway): from the previous head with data, and back."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from openwebui_token_tracking.storage import migrate
from openwebui_token_tracking.storage.engine import get_engine

REV = "3ae9310c3fe9"


def _previous(revision: str) -> str:
    """The revision 0012 follows (the chain is re-ordered as branches land)."""
    cfg = migrate._config(None)  # type: ignore[arg-type]
    down = ScriptDirectory.from_config(cfg).get_revision(revision).down_revision
    assert isinstance(down, str)
    return down


BEFORE = _previous(REV)


def _to(engine, revision: str, down: bool = False) -> None:
    with migrate._quiet_reflection(), engine.begin() as conn:
        (command.downgrade if down else command.upgrade)(migrate._config(conn), revision)


def test_refusal_counts_and_usage_rows_survive_0012_and_back(db_url):
    engine = get_engine(db_url)
    _to(engine, BEFORE)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO token_tracking_refusal_count (day, reason, provider, model_id, count) "
            "VALUES (86400, 'user_limit', 'openai', 'gpt', 3)")
    _to(engine, REV)
    with engine.begin() as conn:
        row = conn.exec_driver_sql(
            "SELECT entry_point, count FROM token_tracking_refusal_count").one()
        assert tuple(row) == ("unknown", 3)
        conn.exec_driver_sql(
            "INSERT INTO token_tracking_refusal_count "
            "(day, reason, provider, model_id, entry_point, count) "
            "VALUES (86400, 'user_limit', 'openai', 'gpt', 'gateway', 2)")
        columns = {c["name"] for c in sa.inspect(conn).get_columns("token_tracking_usage_log")}
        assert {"api_key_id", "entry_point"} <= columns
    _to(engine, BEFORE, down=True)
    with engine.connect() as conn:
        assert conn.exec_driver_sql(
            "SELECT count FROM token_tracking_refusal_count").scalar() == 5  # summed back
        assert "token_tracking_key_budget" not in sa.inspect(conn).get_table_names()
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
    migrate.check(engine)
