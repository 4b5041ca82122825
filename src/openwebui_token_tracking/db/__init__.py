"""0.1.10's ``db`` module: engine, migration and the table classes.

``init_db`` returns the process-wide engine for the URL (one per URL per process, not a
new one per call); ``migrate_database`` upgrades without re-stamping.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ..storage import migrate
from ..storage.engine import get_engine
from ..storage.openwebui_tables import User
from ..storage.schema import (
    BaseSetting,
    BudgetCounter,
    CreditGroup,
    CreditGroupUser,
    ModelPricing,
    PriceHistory,
    Reservation,
    SponsoredAllowance,
    SponsoredAllowanceBaseModels,
    TokenUsageLog,
)


def init_db(database_url: str | None = None) -> Engine:
    """The cached engine for ``database_url`` (default ``DATABASE_URL``)."""
    return get_engine(database_url)


def migrate_database(database_url: str | None = None) -> None:
    """Create or upgrade the token tracking tables; a no-op when already current."""
    migrate.upgrade(get_engine(database_url))


__all__ = [
    "BaseSetting",
    "BudgetCounter",
    "CreditGroup",
    "CreditGroupUser",
    "ModelPricing",
    "PriceHistory",
    "Reservation",
    "SponsoredAllowance",
    "SponsoredAllowanceBaseModels",
    "TokenUsageLog",
    "User",
    "init_db",
    "migrate_database",
]
