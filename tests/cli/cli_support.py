"""Helpers for the CLI tests (a plain module: tests import it by name)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error(self) -> str:
        """The one error line on stderr (progress labels aside)."""
        lines = [line for line in self.err.splitlines() if line.startswith("Error")]
        assert len(lines) == 1, self.err
        return lines[0]


Run = Callable[..., Result]


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


def snapshot(engine: Engine) -> dict[str, int]:
    """Row counts of our writable tables: equal before and after a failed command."""
    tables = ["token_tracking_model_pricing", "token_tracking_price_history",
              "token_tracking_base_settings", "token_tracking_credit_group",
              "token_tracking_credit_group_user", "token_tracking_sponsored_allowance",
              "token_tracking_sponsored_allowance_base_models"]
    return {t: count(engine, t) for t in tables}
