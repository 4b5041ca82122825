"""The 0.1.10 schema with data, built from raw SQL as that release left databases.

Table definitions follow 0.1.10's migrations (no primary key on the usage log and the
membership tables, a foreign key to Open WebUI's ``user`` table, UUIDs as CHAR(32) hex on
SQLite and native on PostgreSQL, naive local ``log_date`` values). Version table
``token_tracking_alembic_version`` at 0.1.10's head ``a118dd7f6b7f``.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Engine

GROUP_ID = uuid.UUID("11111111-2222-3333-4444-555555555555")
LAB_ID = uuid.UUID("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")

DDL = {
    "sqlite": [
        """CREATE TABLE token_tracking_usage_log (log_date DATETIME, user_id VARCHAR(255),
            provider VARCHAR(255), model_id VARCHAR(255), prompt_tokens INTEGER,
            response_tokens INTEGER)""",
        """CREATE TABLE token_tracking_model_pricing (id VARCHAR(255) NOT NULL,
            provider VARCHAR(255), name VARCHAR(255), input_cost_credits INTEGER,
            per_input_tokens INTEGER, output_cost_credits INTEGER, per_output_tokens INTEGER,
            PRIMARY KEY (id))""",
        """CREATE TABLE token_tracking_credit_group (id CHAR(32) NOT NULL, name VARCHAR(255),
            max_credit INTEGER, description VARCHAR(255), PRIMARY KEY (id))""",
        """CREATE TABLE token_tracking_credit_group_user (credit_group_id CHAR(32),
            user_id VARCHAR(255),
            FOREIGN KEY(credit_group_id) REFERENCES token_tracking_credit_group (id),
            FOREIGN KEY(user_id) REFERENCES user (id))""",
        """CREATE UNIQUE INDEX idx_token_tracking_credit_group_name_lower
            ON token_tracking_credit_group (lower(name))""",
        """CREATE TABLE token_tracking_base_settings (setting_key VARCHAR(255) NOT NULL,
            setting_value VARCHAR(255), description VARCHAR(255), PRIMARY KEY (setting_key))""",
        """CREATE TABLE token_tracking_sponsored_allowance (id CHAR(32) NOT NULL,
            creation_date DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL, name VARCHAR(255),
            sponsor_id VARCHAR(255), total_credit_limit INTEGER NOT NULL,
            daily_credit_limit INTEGER, PRIMARY KEY (id))""",
        """CREATE TABLE token_tracking_sponsored_allowance_base_models (
            sponsored_allowance_id CHAR(32), base_model_id VARCHAR(255),
            FOREIGN KEY(sponsored_allowance_id) REFERENCES token_tracking_sponsored_allowance (id),
            FOREIGN KEY(base_model_id) REFERENCES token_tracking_model_pricing (id))""",
        """ALTER TABLE token_tracking_usage_log ADD COLUMN sponsored_allowance_id CHAR(32)""",
    ],
    "postgresql": [
        """CREATE TABLE token_tracking_usage_log (log_date TIMESTAMP WITH TIME ZONE,
            user_id VARCHAR(255), provider VARCHAR(255), model_id VARCHAR(255),
            prompt_tokens INTEGER, response_tokens INTEGER)""",
        """CREATE TABLE token_tracking_model_pricing (id VARCHAR(255) NOT NULL,
            provider VARCHAR(255), name VARCHAR(255), input_cost_credits INTEGER,
            per_input_tokens INTEGER, output_cost_credits INTEGER, per_output_tokens INTEGER,
            PRIMARY KEY (id))""",
        """CREATE TABLE token_tracking_credit_group (id UUID NOT NULL, name VARCHAR(255),
            max_credit INTEGER, description VARCHAR(255), PRIMARY KEY (id))""",
        """CREATE TABLE token_tracking_credit_group_user (credit_group_id UUID,
            user_id VARCHAR(255),
            FOREIGN KEY(credit_group_id) REFERENCES token_tracking_credit_group (id),
            FOREIGN KEY(user_id) REFERENCES "user" (id))""",
        """CREATE UNIQUE INDEX idx_token_tracking_credit_group_name_lower
            ON token_tracking_credit_group (lower(name))""",
        """CREATE TABLE token_tracking_base_settings (setting_key VARCHAR(255) NOT NULL,
            setting_value VARCHAR(255), description VARCHAR(255), PRIMARY KEY (setting_key))""",
        """CREATE TABLE token_tracking_sponsored_allowance (id UUID NOT NULL,
            creation_date TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
            name VARCHAR(255), sponsor_id VARCHAR(255), total_credit_limit INTEGER NOT NULL,
            daily_credit_limit INTEGER, PRIMARY KEY (id))""",
        """CREATE TABLE token_tracking_sponsored_allowance_base_models (
            sponsored_allowance_id UUID, base_model_id VARCHAR(255),
            FOREIGN KEY(sponsored_allowance_id) REFERENCES token_tracking_sponsored_allowance (id),
            FOREIGN KEY(base_model_id) REFERENCES token_tracking_model_pricing (id))""",
        """ALTER TABLE token_tracking_usage_log ADD COLUMN sponsored_allowance_id UUID
            CONSTRAINT fk_usage_log_sponsored_allowance
            REFERENCES token_tracking_sponsored_allowance (id)""",
    ],
}

VERSION_DDL = """CREATE TABLE token_tracking_alembic_version (version_num VARCHAR(32) NOT NULL,
    CONSTRAINT token_tracking_alembic_version_pkc PRIMARY KEY (version_num))"""

PRICES = [  # id, provider, name, in, per_in, out, per_out
    ("gpt-4o", "openai", "GPT-4o", 3750, 1_000_000, 15000, 1_000_000),
    ("claude-3-5-haiku", "anthropic", "Claude Haiku", 1000, 1_000_000, 5000, 1_000_000),
    ("local-llama", "ollama", "Llama (free)", 0, 1_000_000, 0, 1_000_000),
]

# log_date (naive, as 0.1.10 wrote datetime.now()), user, provider, model, prompt,
# response, sponsored allowance
USAGE = [
    ("2026-11-28 09:00:00.000000", "u-alice", "openai", "gpt-4o", 1000, 1000, None),
    ("2026-11-28 10:30:00.500000", "u-alice", "anthropic", "claude-3-5-haiku", 2000, 400, None),
    ("2026-11-27 23:59:59.000000", "u-alice", "openai", "gpt-4o", 100000, 0, None),
    ("2026-11-28 11:00:00.000000", "u-bob", "openai", "gpt-4o", 10, 10, None),
    ("2026-11-20 08:00:00.000000", "u-bob", "openai", "retired-model", 500, 500, None),
    ("2026-11-25 12:00:00.000000", "u-bob", "openai", "gpt-4o", 20000, 4000, LAB_ID),
    ("2026-11-28 11:30:00.000000", "u-alice", "openai", "gpt-4o", 4000, 2000, LAB_ID),
]


def _uuid(value: uuid.UUID, dialect: str) -> str:
    return value.hex if dialect == "sqlite" else str(value)


def build(engine: Engine) -> None:
    """Create the 0.1.10 schema in ``engine``'s database and fill it with data."""
    d = engine.dialect.name
    with engine.begin() as conn:
        for stmt in DDL[d]:
            conn.exec_driver_sql(stmt)
        conn.exec_driver_sql(VERSION_DDL)
        conn.execute(sa.text(
            "INSERT INTO token_tracking_alembic_version VALUES ('a118dd7f6b7f')"))
        for row in PRICES:
            conn.execute(sa.text(
                "INSERT INTO token_tracking_model_pricing (id, provider, name, "
                "input_cost_credits, per_input_tokens, output_cost_credits, per_output_tokens) "
                "VALUES (:i, :p, :n, :ic, :pi, :oc, :po)"),
                dict(zip(["i", "p", "n", "ic", "pi", "oc", "po"], row, strict=True)))
        conn.execute(sa.text(
            "INSERT INTO token_tracking_base_settings VALUES ('base_credit_allowance', '50', "
            "'Baseline credit allowance for all users.')"))
        conn.execute(sa.text(
            "INSERT INTO token_tracking_credit_group VALUES (:id, 'Staff', 100, 'All staff')"),
            {"id": _uuid(GROUP_ID, d)})
        for user in ["u-alice", "u-alice", "u-bob"]:  # 0.1.10 had no primary key here
            conn.execute(sa.text(
                "INSERT INTO token_tracking_credit_group_user VALUES (:g, :u)"),
                {"g": _uuid(GROUP_ID, d), "u": user})
        conn.execute(sa.text(
            "INSERT INTO token_tracking_sponsored_allowance (id, creation_date, name, "
            "sponsor_id, total_credit_limit, daily_credit_limit) "
            "VALUES (:id, :c, 'lab', 'dean', 1000, 100)"),
            {"id": _uuid(LAB_ID, d), "c": "2026-11-01 00:00:00"})
        conn.execute(sa.text(
            "INSERT INTO token_tracking_sponsored_allowance_base_models VALUES (:a, 'gpt-4o')"),
            {"a": _uuid(LAB_ID, d)})
        for log_date, user, provider, model, p, r, allowance in USAGE:
            conn.execute(sa.text(
                "INSERT INTO token_tracking_usage_log (log_date, user_id, provider, model_id, "
                "prompt_tokens, response_tokens, sponsored_allowance_id) "
                "VALUES (:d, :u, :pr, :m, :p, :r, :a)"),
                {"d": log_date if d == "sqlite" else log_date + "+00", "u": user, "pr": provider,
                 "m": model, "p": p, "r": r,
                 "a": None if allowance is None else _uuid(allowance, d)})
