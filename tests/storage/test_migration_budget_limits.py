"""Migration 0010 (budget limits) from the previous schema with data, and back."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import command

from openwebui_token_tracking import Accountant
from openwebui_token_tracking.storage import caps, group_limits, migrate
from openwebui_token_tracking.storage.engine import get_engine
from openwebui_token_tracking.storage.schema import CreditGroup, CreditGroupUser

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BEFORE = "3c9d5e7f1a2b"  # 0008_refusal_count
GID = uuid.UUID(int=1)


def _to(engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn:
        (command.downgrade if down else command.upgrade)(migrate._config(conn), revision)


def _columns(engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def test_upgrade_keeps_groups_and_downgrade_restores_the_old_schema(db_url):
    engine = get_engine(db_url)
    _to(engine, BEFORE)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE \"user\" (id VARCHAR(255) PRIMARY KEY, name "
                             "VARCHAR(255), email VARCHAR(255), role VARCHAR(255))")
        conn.exec_driver_sql("INSERT INTO \"user\" VALUES ('u-alice', 'Alice', 'a@x', 'user')")
        conn.execute(sa.insert(CreditGroup.__table__).values(id=GID, name="Staff",
                                                              max_credit=100))
        conn.execute(sa.insert(CreditGroupUser.__table__).values(credit_group_id=GID,
                                                                  user_id="u-alice"))
    migrate.upgrade(engine)
    migrate.check(engine)
    assert {"openwebui_group_id", "requests_per_minute", "tokens_per_minute",
            "total_credit_limit"} <= _columns(engine, "token_tracking_credit_group")
    acct = Accountant(engine, clock=lambda: NOW)
    assert acct.balance("u-alice").limits[0].limit == Decimal(1100)  # default base 1000

    def limit(s):
        group_limits.set_group_limits(s, "Staff", requests_per_minute=5)
        caps.set_cap(s, kind="model", target="o1", credit_limit=3, group="Staff")
    acct.run(limit)

    _to(engine, BEFORE, down=True)
    tables = set(sa.inspect(engine).get_table_names())
    assert "token_tracking_spend_cap" not in tables
    assert "token_tracking_rate_counter" not in tables
    assert "openwebui_group_id" not in _columns(engine, "token_tracking_credit_group")
    assert "held_counters" not in _columns(engine, "token_tracking_reservation")
    with engine.connect() as conn:  # rows and the case-insensitive name index survive
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM token_tracking_credit_group_user").scalar() == 1
        if engine.dialect.name == "sqlite":
            indexes = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index'").scalars().all()
        else:
            indexes = conn.exec_driver_sql("SELECT indexname FROM pg_indexes").scalars().all()
        assert "idx_token_tracking_credit_group_name_lower" in indexes
    migrate.upgrade(engine)
    migrate.check(engine)
