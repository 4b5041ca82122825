"""0.1.10 import path."""

from ..storage.schema import Base

__all__ = ["Base"]
