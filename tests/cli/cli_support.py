"""Helpers for the CLI tests (a plain module: tests import it by name).

There is deliberately no ``tests/cli/conftest.py``: without ``__init__`` files every
``conftest`` is imported under the same module name, which breaks ``from conftest import``
elsewhere. Test modules import the ``run`` fixture from here instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from openwebui_token_tracking.cli import main


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


@pytest.fixture(name="run")
def run_fixture(db_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    """``run("pricing", "list")`` runs ``main(["--database-url", db_url, ...])``."""

    def _run(*args: str, url: str | None = db_url) -> Result:
        capsys.readouterr()
        argv = ["--database-url", url, *args] if url is not None else list(args)
        code = main(argv)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return _run
