"""Migrations from an empty database and from 0.1.10's schema with data."""

from datetime import UTC, datetime
from decimal import Decimal

import legacy_0_1_10 as legacy
import pytest
import sqlalchemy as sa

from db_support import create_openwebui_users
from openwebui_token_tracking import Accountant
from openwebui_token_tracking.storage import migrate
from openwebui_token_tracking.storage.engine import (
    default_database_url,
    get_engine,
    normalize_url,
    redact,
)
from openwebui_token_tracking.storage.schema import (
    BaseSetting,
    CreditGroupUser,
    ModelPricing,
    PriceHistory,
    SponsoredAllowance,
    TokenUsageLog,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_empty_database_migrates_idempotently_without_drift(db_url):
    engine = get_engine(db_url)
    before, after = migrate.upgrade(engine)
    assert (before, after) == (None, migrate.head_revision())
    assert "alembic_version" not in _tables(engine)  # Open WebUI's own table untouched
    assert "token_tracking_alembic_version" in _tables(engine)
    assert migrate.upgrade(engine) == (after, after)
    migrate.check(engine)  # raises on any drift between models and migrations


def test_upgrade_never_restamps_or_touches_open_webui_tables(db_url):
    engine = get_engine(db_url)
    create_openwebui_users(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('owui_head')")
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO token_tracking_base_settings VALUES ('budget_period', 'week', 'x')")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() \
            == "owui_head"
        assert conn.exec_driver_sql(
            "SELECT setting_value FROM token_tracking_base_settings").scalar() == "week"
        assert conn.exec_driver_sql('SELECT count(*) FROM "user"').scalar() == 3


@pytest.fixture
def legacy_engine(db_url):
    engine = get_engine(db_url)
    create_openwebui_users(engine)
    legacy.build(engine)
    return engine


def test_0_1_10_database_keeps_every_row(legacy_engine):
    assert migrate.current_revision(legacy_engine) == "a118dd7f6b7f"
    migrate.upgrade(legacy_engine)
    assert migrate.current_revision(legacy_engine) == migrate.head_revision()
    migrate.check(legacy_engine)
    acct = Accountant(legacy_engine, clock=lambda: NOW)

    def read(s):
        return {
            "usage": list(s.scalars(sa.select(TokenUsageLog).order_by(TokenUsageLog.id))),
            "prices": {(p.provider, p.id): p for p in s.scalars(sa.select(ModelPricing))},
            "history": s.scalar(sa.select(sa.func.count()).select_from(PriceHistory)),
            "settings": {b.setting_key: b.setting_value for b in s.scalars(sa.select(BaseSetting))},
            "members": sorted(m.user_id for m in s.scalars(sa.select(CreditGroupUser))),
            "allowances": list(s.scalars(sa.select(SponsoredAllowance))),
        }
    data = acct.run(read)
    assert len(data["usage"]) == len(legacy.USAGE)
    first = data["usage"][0]
    assert (first.user_id, first.model_id, first.input_tokens, first.output_tokens) == \
        ("u-alice", "gpt-4o", 1000, 1000)
    assert first.created_at == datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    assert first.charged_micro == 18_750_000  # 3.75 + 15 credits, exact
    retired = next(u for u in data["usage"] if u.model_id == "retired-model")
    assert (retired.charged_micro, retired.status) == (0, "estimated")
    assert set(data["prices"]) == {(p[1], p[0]) for p in legacy.PRICES}
    assert data["prices"][("openai", "gpt-4o")].output_cost_credits == 15000
    assert data["history"] == len(legacy.PRICES)
    assert data["settings"] == {"base_credit_allowance": "50"}
    assert data["members"] == ["u-alice", "u-bob"]  # the duplicate row is dropped
    [lab] = data["allowances"]
    assert (lab.id, lab.name, lab.total_credit_limit, lab.daily_credit_limit) == \
        (legacy.LAB_ID, "lab", 1000, 100)
    assert [m.base_model_id for m in acct.run(lambda s: s.get(
        SponsoredAllowance, legacy.LAB_ID).base_models)] == ["gpt-4o"]


def test_old_usage_keeps_counting_against_todays_balance(legacy_engine):
    migrate.upgrade(legacy_engine)
    acct = Accountant(legacy_engine, clock=lambda: NOW)
    alice = acct.balance("u-alice").limits[0]
    # base 50 + Staff 100; today: 18.75 (gpt-4o) + 4 (haiku: 2 + 2); yesterday's row excluded
    assert alice.limit == Decimal(150)
    assert alice.spent == Decimal("22.75")
    lab = {s.scope: s for s in acct.balance("u-alice", allowance_name="lab").limits}
    # all of the allowance's usage since creation: bob 75 + 60 (Nov 25) and alice 15 + 30
    assert lab["sponsor_total"].spent == Decimal("180")
    assert lab["sponsor_user"].spent == Decimal("45")


def test_no_foreign_key_blocks_open_webui_deleting_a_user(legacy_engine):
    migrate.upgrade(legacy_engine)
    for table in sa.inspect(legacy_engine).get_table_names():
        for fk in sa.inspect(legacy_engine).get_foreign_keys(table):
            assert fk["referred_table"] != "user", (table, fk)
    with legacy_engine.begin() as conn:
        conn.exec_driver_sql("""DELETE FROM "user" WHERE id = 'u-alice'""")


def test_database_url_resolution(tmp_path):
    assert default_database_url({"DATABASE_URL": "postgres://u:pw@h/db"}) == \
        "postgres://u:pw@h/db"
    assert default_database_url({"DATA_DIR": str(tmp_path)}) == \
        f"sqlite:///{tmp_path / 'webui.db'}"
    assert normalize_url("postgres://u:pw@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"
    assert "pw" not in redact("postgresql://u:pw@h/db")


def test_bad_database_url_is_a_clear_error():
    from openwebui_token_tracking.errors import ConfigurationError
    with pytest.raises(ConfigurationError, match="not a database URL"):
        normalize_url("not a url")
    with pytest.raises(ConfigurationError, match="unsupported database"):
        normalize_url("mysql://u@h/db")
