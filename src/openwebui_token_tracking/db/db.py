"""0.1.10 import path."""

from ..storage.schema import Base
from . import init_db, migrate_database

__all__ = ["Base", "init_db", "migrate_database"]
