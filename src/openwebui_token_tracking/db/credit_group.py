"""0.1.10 import path."""

from ..storage.schema import CreditGroup, CreditGroupUser

__all__ = ["CreditGroup", "CreditGroupUser"]
